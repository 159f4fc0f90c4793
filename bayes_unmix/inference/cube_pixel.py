"""The pixel-by-pixel baseline: every pixel fitted alone (no spatial prior), vmapped over pixel blocks.

This is the "classic 1-D fit per pixel" SUSHI is compared with, done properly:

* **MAP** per pixel: the best of ``grid`` candidate latents (each with Poisson-EM amplitudes), refined by
  damped Newton steps on all of the pixel's unknowns (exact Hessians of a handful of parameters), in an
  unconstrained reparametrisation, so every estimate stays inside the components' ``theta_bounds``.
  Barycentric (IAE) latents stay on the simplex of the anchors unless the model says
  ``latent_region="box"``: the ``theta_bounds`` box of an IAE holds weights off the sum-one plane and far
  from the training manifold, where decoded spectra and the parameter polynomial are extrapolations
  (kT ~ 1e4 keV);
* **NUTS** per pixel (BlackJAX): window adaptation then a ``lax.scan`` of NUTS steps, chains started
  around the pixel's MAP point, for per-pixel credible intervals.

Pixels are processed in blocks of ``block_size`` (memory stays bounded for any cube size); a block is one
compiled ``vmap`` call whose pixel axis is sharded over all JAX devices when there are several (set
``XLA_FLAGS=--xla_force_host_platform_device_count=N`` for CPU cores, or run on GPUs). The last block is
padded, so one compilation serves the whole cube.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr
from jax.flatten_util import ravel_pytree
from numpyro.distributions import biject_to
from numpyro.infer.util import initialize_model, log_density
from tqdm.auto import tqdm

from bayes_unmix.inference._util import shard
from bayes_unmix.inference.checks import convergence_report
from bayes_unmix.inference.cube import _inside, _supports, sample_sites
from bayes_unmix.inference.cube_convert import to_cube_datatree
from bayes_unmix.inference.map import damped_newton
from bayes_unmix.inference.mcmc import blackjax_chain
from bayes_unmix.models.cube import CubeModel, make_pixel_model, point_log_jacobian

__all__ = ["PixelConfig", "pixel_draws", "pixel_fit", "pixel_map_point"]


@dataclasses.dataclass(frozen=True)
class PixelConfig:
    """Settings of the per-pixel fits.

    MAP: ``grid`` candidate latents (the components' neutral point, then draws from ``grid_seed``:
    uniform in the ``theta_bounds`` box, or flat-Dirichlet weights for latents on the simplex),
    ``em_iterations`` amplitude updates per candidate, ``newton_iterations`` damped Newton steps. NUTS:
    ``num_warmup``, ``num_samples``, ``num_chains``, ``max_tree_depth``, ``target_accept``.
    ``block_size``: pixels per compiled call. Where latents live is the model's ``latent_region``.
    """

    grid: int = 64
    grid_seed: int = 0
    em_iterations: int = 50
    newton_iterations: int = 25
    num_warmup: int = 300
    num_samples: int = 400
    num_chains: int = 2
    max_tree_depth: int = 8
    target_accept: float = 0.85
    block_size: int = 1024


def _candidates(model: CubeModel, config: PixelConfig) -> dict[str, jax.Array]:
    rng = np.random.default_rng(config.grid_seed)
    out = {}
    for c in model.components:
        low, high = (np.asarray(b, dtype=np.float64) for b in c.theta_bounds)
        centre = np.asarray(c.initial_theta(), np.float64)
        if model.on_simplex(c):
            # barycentric latents (IAE): convex combinations of the anchors; the box of ``theta_bounds``
            # is much wider and mostly holds extrapolated spectra and parameters
            draws = rng.dirichlet(np.ones(c.n_latent), size=config.grid - 1)
        else:
            draws = low + (high - low) * rng.uniform(size=(config.grid - 1, c.n_latent))
        out[c.name] = jnp.asarray(np.vstack([centre[None], np.clip(draws, low, high)]))
    return out


def _em(templates: jax.Array, x: jax.Array, bkg: jax.Array, iterations: int) -> tuple[jax.Array, jax.Array]:
    """Poisson EM amplitudes for unit-sum templates ``(C, E)`` over a fixed background, and the log-likelihood."""
    a0 = jnp.full(templates.shape[0], jnp.maximum(x.sum(), 1.0) / templates.shape[0])

    def step(a, _):
        rate = jnp.maximum(a @ templates + bkg, 1e-30)
        return a * (templates @ (x / rate)), None

    a, _ = jax.lax.scan(step, a0, None, length=iterations)
    rate = jnp.maximum(a @ templates + bkg, 1e-30)
    return a, jnp.sum(x * jnp.log(rate) - rate)


@functools.lru_cache(maxsize=8)
def _map_solver(model: CubeModel, config: PixelConfig):
    program = make_pixel_model(model)
    bijections = {k: biject_to(s) for k, s in _supports(model).items()}  # simplex: stick-breaking
    candidates = _candidates(model, config)
    templates = jnp.stack([c.spectra(candidates[c.name]) for c in model.components], axis=1)  # (G, C, E)

    def solve(x, bkg):
        a, loglik = jax.vmap(lambda t: _em(t, x, bkg, config.em_iterations))(templates)
        best = jnp.argmax(loglik)
        start = {"amplitude": jnp.maximum(a[best], 1e-4 * jnp.maximum(x.sum(), 1.0) / len(model.components))}
        for c in model.components:
            if model.on_simplex(c):
                w = jnp.maximum(candidates[c.name][best], 1e-6)
                start[f"theta_{c.name}"] = w / w.sum()
            else:
                low, high = (jnp.asarray(b, dtype=jnp.float64) for b in c.theta_bounds)
                margin = 1e-6 * (high - low)
                start[f"theta_{c.name}"] = jnp.clip(candidates[c.name][best], low + margin, high - margin)
        flat0, unravel = ravel_pytree({k: bijections[k].inv(v) for k, v in start.items()})
        constrain = lambda f: {k: bijections[k](v) for k, v in unravel(f).items()}

        def objective(flat):
            point = constrain(flat)
            return -log_density(program, (x, bkg), {}, point)[0] - point_log_jacobian(model, point["amplitude"])

        return constrain(damped_newton(objective, flat0, config.newton_iterations)[0])

    return jax.jit(jax.vmap(solve))


def _blocks(model: CubeModel, counts, background, block_size: int):
    """Yield ``(start, n, x_block, bkg_block)`` with blocks padded to ``block_size`` pixels."""
    x = np.asarray(model.to_pixels(counts))
    bkg = np.zeros_like(x) if background is None else np.asarray(model.to_pixels(background))
    size = min(block_size, len(x))
    for start in range(0, len(x), size):
        n = min(size, len(x) - start)
        pad = ((0, size - n), (0, 0))
        yield start, n, jnp.asarray(np.pad(x[start : start + n], pad)), jnp.asarray(np.pad(bkg[start : start + n], pad))


def _run_blocks(model, counts, background, config: PixelConfig, fn, desc: str, progress: bool) -> dict:
    out: dict[str, list] = {}
    with tqdm(total=model.n_pixels, desc=desc, unit="px", disable=not progress) as bar:
        for start, n, x, bkg in _blocks(model, counts, background, config.block_size):
            result = fn(start, *shard(x, bkg))
            for k, v in result.items():
                out.setdefault(k, []).append(np.asarray(v)[:n])
            bar.update(n)
    return {k: np.concatenate(v) for k, v in out.items()}


def pixel_map_point(
    model: CubeModel, counts, *, background=None, config: PixelConfig = PixelConfig(), progress: bool = True
) -> dict[str, np.ndarray]:
    """Per-pixel MAP (independent pixels, the model's priors without the spatial one).

    Parameters
    ----------
    model : CubeModel
        Its components and image size are used; its spatial prior is ignored.
    counts, background : array, shape (E, H, W)
    config : PixelConfig
    progress : bool

    Returns
    -------
    dict
        Sites ``{"amplitude": (P, C), "theta_<name>": (P, n_latent)}``.
    """
    solver = _map_solver(model, config)
    point = _run_blocks(model, counts, background, config, lambda _, x, b: solver(x, b), "pixel MAP", progress)
    return {k: v for k, v in point.items() if k in sample_sites(model)}


@functools.lru_cache(maxsize=8)
def _nuts_sampler(model: CubeModel, config: PixelConfig):
    program = make_pixel_model(model)
    dummy = jnp.ones(model.n_channels)
    info = initialize_model(jax.random.key(0), program, model_args=(dummy, 0 * dummy), dynamic_args=True)
    potential_fn, postprocess_fn = info.potential_fn, info.postprocess_fn

    def one_chain(x, bkg, key, init):
        logdensity = lambda z: -potential_fn(x, bkg)(z)
        positions, divergent, _ = blackjax_chain(logdensity, key, init, config)
        return jax.vmap(postprocess_fn(x, bkg))(positions), divergent

    def one_pixel(x, bkg, key, z_map):
        k_init, k_chains = jax.random.split(key)
        leaves, treedef = jax.tree_util.tree_flatten(z_map)
        keys = jax.random.split(k_init, len(leaves))
        jitter = [v + 0.1 * jax.random.normal(k, (config.num_chains, *v.shape)) for v, k in zip(leaves, keys)]
        inits = jax.tree_util.tree_unflatten(treedef, jitter)
        chain_keys = jax.random.split(k_chains, config.num_chains)
        return jax.vmap(one_chain, in_axes=(None, None, 0, 0))(x, bkg, chain_keys, inits)

    return jax.jit(jax.vmap(one_pixel))


def pixel_draws(
    model: CubeModel,
    counts,
    *,
    key: jax.Array,
    background=None,
    init: dict[str, np.ndarray] | None = None,
    config: PixelConfig = PixelConfig(),
    progress: bool = True,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """BlackJAX NUTS for every pixel alone: draws ``{site: (chain, draw, P, ...)}`` and divergences
    ``(chain, draw, P)``; chains start near ``init`` (default: :func:`pixel_map_point`)."""
    x_all = np.asarray(model.check_counts(counts)).sum(0).reshape(-1)
    if init is None:
        init = pixel_map_point(model, counts, background=background, config=config, progress=progress)
    start = _inside(model, init, x_all)
    bijections = {k: biject_to(s) for k, s in _supports(model).items()}
    z = {k: np.asarray(bijections[k].inv(v)) for k, v in start.items()}
    sampler = _nuts_sampler(model, config)
    keys = np.asarray(jax.random.key_data(jax.random.split(key, model.n_pixels)))

    def block(start, x, bkg):
        size = x.shape[0]
        sl = lambda a: jnp.asarray(
            np.pad(a[start : start + size], [(0, size - len(a[start : start + size]))] + [(0, 0)] * (a.ndim - 1))
        )
        block_keys = jax.random.wrap_key_data(sl(keys))
        draws, divergent = sampler(x, bkg, block_keys, {k: sl(v) for k, v in z.items()})
        return {**{k: v for k, v in draws.items() if k in sample_sites(model)}, "diverging": divergent}

    out = _run_blocks(model, counts, background, config, block, "pixel NUTS", progress)
    # (P, chain, draw, ...) -> (chain, draw, P, ...)
    divergent = np.moveaxis(out.pop("diverging"), 0, 2)
    return {k: np.moveaxis(v, 0, 2) for k, v in out.items()}, divergent


def pixel_fit(
    model: CubeModel,
    counts,
    *,
    key: jax.Array | None = None,
    method: Literal["map", "nuts"] = "map",
    background=None,
    config: PixelConfig = PixelConfig(),
    energies_kev=None,
    progress: bool = True,
    check: bool = False,
) -> xr.DataTree:
    """The pixel-by-pixel baseline as a DataTree (``method="map"``: one draw; ``"nuts"``: BlackJAX
    chains per pixel, which needs ``key``; ``check`` warns on R-hat/ESS/divergence problems)."""
    independent = model.with_prior("none")
    if method == "map":
        point = pixel_map_point(independent, counts, background=background, config=config, progress=progress)
        draws, stats = {k: v[None, None] for k, v in point.items()}, None
    elif method == "nuts":
        if key is None:
            raise ValueError("pixel NUTS needs a random key")
        draws, divergent = pixel_draws(
            independent, counts, key=key, background=background, config=config, progress=progress
        )
        stats = {"diverging": divergent}
    else:
        raise ValueError(f"unknown method {method!r}; use 'map' or 'nuts'")
    tree = to_cube_datatree(
        independent,
        counts,
        draws,
        method=f"pixel-{method}",
        background=background,
        energies_kev=energies_kev,
        sample_stats=stats,
        attrs={"block_size": config.block_size},
        key=None if key is None else jax.random.fold_in(key, 1),
    )
    if check and method == "nuts":
        convergence_report(tree, ess_min=100.0)
    return tree
