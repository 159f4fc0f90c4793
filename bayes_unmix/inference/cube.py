"""Inference for X-ray cube models: whole-cube MAP (optax), variational, NUTS, and the pixel-by-pixel baseline.

All functions take counts ``(E, H, W)`` (and an optional background cube of expected counts of the
same shape) and a :class:`~bayes_unmix.models.cube.CubeModel`; the Bayesian ones return an ArviZ
DataTree built by :mod:`bayes_unmix.inference.cube_convert`.

* :func:`cube_map` / :func:`cube_map_point`: the mode of the joint posterior (amplitudes, latent maps and
  their spatial prior), in the model's own space (no Jacobian, as :mod:`bayes_unmix.inference.map`),
  by optax L-BFGS (or Adam) on all ``P (C + sum n_latent)`` unknowns at once. This is the Bayesian
  counterpart of the SUSHI point, and it can start from SUSHI's result (:func:`point_from_maps`).
* :func:`~bayes_unmix.inference.cube_vi.cube_vi` (in its own module): variational posteriors of the full cube.
* :func:`cube_nuts`: NumPyro NUTS on the joint model, for small cubes (or a GPU).
* :func:`pixel_fit` (in :mod:`bayes_unmix.inference.cube_pixel`): independent pixels.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Callable
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import xarray as xr
from jax.flatten_util import ravel_pytree
from numpyro.distributions import biject_to, constraints
from numpyro.infer import MCMC, NUTS
from numpyro.infer.initialization import init_to_value
from numpyro.infer.util import log_density
from tqdm.auto import tqdm

from bayes_unmix.inference.checks import ConvergenceWarning, convergence_report
from bayes_unmix.inference.cube_convert import to_cube_datatree
from bayes_unmix.models.cube import (
    CubeInputError,
    CubeModel,
    make_cube_model,
    point_log_jacobian,
    poisson_cost,
    prior_scales,
    scale_sites,
    scale_start,
)

__all__ = [
    "SCALE_CANDIDATES",
    "CubeMAPConfig",
    "MAPTrace",
    "cube_map",
    "cube_map_point",
    "cube_nuts",
    "held_out_log_likelihood",
    "neutral_point",
    "point_from_maps",
    "posterior_sites",
    "sample_sites",
    "select_spatial_scale",
]


@dataclasses.dataclass(frozen=True)
class CubeMAPConfig:
    """Settings of the whole-cube MAP.

    ``optimizer``: optax L-BFGS (default; ``linesearch`` backtracking or zoom) or Adam
    (``learning_rate``). ``max_iter``: iteration cap; ``chunk``: iterations per compiled call (one host
    sync, one progress update and one history entry each); ``tol``: stop when the negative log posterior
    changes by less than ``tol`` (relative) over a chunk. A chunk that raises the loss or makes it
    non-finite is discarded: the optimizer's memory is reset and the chunk retried once from the last
    good point; a second failure stops the run (``converged=False``).
    """

    optimizer: Literal["lbfgs", "adam"] = "lbfgs"
    max_iter: int = 2000
    chunk: int = 10
    tol: float = 1e-9
    learning_rate: float = 0.02
    memory_size: int = 10
    linesearch: Literal["zoom", "backtracking"] = "backtracking"


class MAPTrace(NamedTuple):
    """A MAP point and how it was reached.

    ``point``: ``{site: (P, ...)}`` in the model's space; ``loss``: negative log posterior and
    ``cost``: SUSHI's Poisson cost (:func:`~bayes_unmix.models.cube.poisson_cost`) after each chunk,
    ``seconds``: wall time at each (first entry: the start, after compilation); ``iterations``,
    ``converged``, ``wall_time_s`` (compilation included).
    """

    point: dict[str, np.ndarray]
    loss: np.ndarray
    cost: np.ndarray
    seconds: np.ndarray
    iterations: int
    converged: bool
    wall_time_s: float


def sample_sites(model: CubeModel) -> tuple[str, ...]:
    """Names of the sample sites of :func:`~bayes_unmix.models.cube.make_cube_model`."""
    return ("amplitude",) + tuple(f"theta_{n}" for n in model.names)


def _supports(model: CubeModel) -> dict[str, constraints.Constraint]:
    out = {"amplitude": constraints.positive}
    out.update({f"theta_{c.name}": model.latent_support(c) for c in model.components})
    return out


def neutral_point(model: CubeModel, counts) -> dict[str, np.ndarray]:
    """SUSHI's starting point: ``a_c = sum_e X / C`` and every latent at ``initial_theta()``."""
    x = model.check_counts(counts)
    total = x.sum(0).reshape(-1)
    point = {"amplitude": np.repeat(total[:, None] / len(model.components), len(model.components), 1)}
    point.update({f"theta_{n}": np.asarray(t) for n, t in model.initial_theta().items()})
    return point


def point_from_maps(model: CubeModel, amplitudes, theta) -> dict[str, np.ndarray]:
    """Sites ``{site: (P, ...)}`` from maps: ``amplitudes`` ``(C, H, W)`` and one ``(n_latent, H, W)`` theta
    map per component (e.g. ``SushiResult.amplitudes`` and ``SushiResult.theta``)."""
    amplitudes = np.asarray(amplitudes, dtype=np.float64)
    if amplitudes.shape != (len(model.components), model.height, model.width):
        raise CubeInputError(f"amplitude maps must be {(len(model.components), model.height, model.width)}")
    point = {"amplitude": amplitudes.reshape(len(model.components), -1).T}
    for c, t in zip(model.components, theta, strict=True):
        t = np.asarray(t, dtype=np.float64)
        if t.shape != (c.n_latent, model.height, model.width):
            raise CubeInputError(f"theta maps of {c.name} must be {(c.n_latent, model.height, model.width)}")
        point[f"theta_{c.name}"] = t.reshape(c.n_latent, -1).T
    return point


def _inside(model: CubeModel, point: dict, total: np.ndarray) -> dict[str, jax.Array]:
    """Move a point strictly inside the supports (zero amplitudes and latents on the bounds have no
    unconstrained image; a SUSHI point may lie off the simplex)."""
    floor = 1e-4 * np.maximum(total, 1.0)[:, None] / len(model.components)
    out = {"amplitude": jnp.asarray(np.maximum(np.asarray(point["amplitude"], np.float64), floor))}
    for c in model.components:
        theta = np.asarray(point[f"theta_{c.name}"], np.float64)
        if model.on_simplex(c):
            theta = np.maximum(theta, 1e-6)
            out[f"theta_{c.name}"] = jnp.asarray(theta / theta.sum(-1, keepdims=True))
            continue
        low, high = (np.asarray(b, dtype=np.float64) for b in c.theta_bounds)
        margin = 1e-6 * (high - low)
        out[f"theta_{c.name}"] = jnp.asarray(np.clip(theta, low + margin, high - margin))
    return out


def _data(model: CubeModel, counts, background) -> tuple[jax.Array, jax.Array | None, np.ndarray]:
    x = model.to_pixels(counts)
    bkg = None if background is None else model.to_pixels(model.check_counts(background, name="background"))
    return x, bkg, np.asarray(x.sum(-1))


def cube_map_point(
    model: CubeModel,
    counts,
    *,
    background=None,
    init: dict | None = None,
    config: CubeMAPConfig = CubeMAPConfig(),
    progress: bool = True,
) -> MAPTrace:
    """MAP of the joint cube model by optax, on device in compiled chunks.

    Parameters
    ----------
    model : CubeModel
    counts : array, shape (E, H, W)
    background : array, shape (E, H, W), optional
        Known expected background counts.
    init : dict, optional
        Starting sites ``{site: (P, ...)}`` (:func:`point_from_maps`, a previous trace's ``point``);
        default :func:`neutral_point`.
    config : CubeMAPConfig
    progress : bool
        tqdm bar over iterations.

    Returns
    -------
    MAPTrace
    """
    if config.optimizer not in ("lbfgs", "adam"):
        raise ValueError(f"unknown optimizer {config.optimizer!r}; use 'lbfgs' or 'adam'")
    x, bkg, total = _data(model, counts, background)
    start = _inside(model, init if init is not None else neutral_point(model, counts), total)
    bijections = {k: biject_to(s) for k, s in _supports(model).items()}
    flat0, unravel = ravel_pytree({k: bijections[k].inv(v) for k, v in start.items()})
    fns = _map_functions(model, config, bijections, unravel)
    scales = jax.tree.map(jnp.asarray, prior_scales(model))

    t0 = time.perf_counter()
    # explicit dtypes: weak-typed scalars of a fresh optimizer state would trigger a second compilation
    state = jax.tree.map(lambda a: jnp.array(a, dtype=jnp.result_type(a)), (flat0, fns.optimizer.init(flat0)))
    loss, cost = (float(v) for v in fns.report(flat0, x, bkg, scales))
    history, t_start = [(loss, cost, 0.0)], time.perf_counter()
    done, converged, restarted = 0, False, False
    with tqdm(total=config.max_iter, desc="cube MAP", unit="it", disable=not progress) as bar:
        while done < config.max_iter and not converged:
            trial = fns.chunk(state, x, bkg, scales)
            new_loss, new_cost = (float(v) for v in fns.report(trial[0], x, bkg, scales))
            done += config.chunk
            bar.update(config.chunk)
            if not new_loss <= loss + config.tol * max(abs(loss), 1.0):
                # a line search that ran out of steps accepts its last one: after a bad curvature pair that
                # can throw an amplitude to 1e24. Keep the last good point, forget the pairs, retry once.
                if restarted:
                    break
                state, restarted = (state[0], fns.optimizer.init(state[0])), True
                continue
            bar.set_postfix(loss=f"{new_loss:.8e}")
            converged = bool(loss - new_loss <= config.tol * max(abs(loss), 1.0))
            state, loss, cost, restarted = trial, new_loss, new_cost, False
            history.append((loss, cost, time.perf_counter() - t_start))
    point = {k: np.asarray(bijections[k](v)) for k, v in unravel(state[0]).items()}
    loss_h, cost_h, secs = (np.asarray(v) for v in zip(*history))
    return MAPTrace(point, loss_h, cost_h, secs, done, converged, time.perf_counter() - t0)


class _MAPFunctions(NamedTuple):
    optimizer: optax.GradientTransformationExtraArgs
    chunk: Callable  # (state, x, bkg, scales) -> state after config.chunk iterations
    report: Callable  # (flat, x, bkg, scales) -> (loss, Poisson cost)


_MAP_CACHE: dict[tuple, tuple[CubeModel, _MAPFunctions]] = {}


def _map_functions(model: CubeModel, config: CubeMAPConfig, bijections: dict, unravel) -> _MAPFunctions:
    """The compiled MAP pieces of ``model``'s structure, with the prior scales as arguments: the folds and
    candidates of :func:`select_spatial_scale` differ only in scales, and compiling the L-BFGS chunk takes
    seconds (most of a small cube's fit). Kept for the last few structures; the cached model holds its
    components, so their ids in the key stay theirs."""
    scale_fields = ("components", "spatial_scale", "amplitude_scale")
    structure = tuple(getattr(model, f.name) for f in dataclasses.fields(model) if f.name not in scale_fields)
    compiled = dataclasses.replace(config, max_iter=0, tol=0.0)  # the fields the compiled chunk depends on
    key = (tuple(map(id, model.components)), structure, model.amplitude_scale is not None, compiled)
    if key in _MAP_CACHE:
        return _MAP_CACHE[key][1]
    program = make_cube_model(model)

    def constrain(flat):
        return {k: bijections[k](v) for k, v in unravel(flat).items()}

    def objective(flat, x, bkg, scales):
        point = constrain(flat)
        return -log_density(program, (x, bkg, scales), {}, point)[0] - point_log_jacobian(model, point["amplitude"])

    lbfgs = config.optimizer == "lbfgs"
    optimizer = (
        optax.lbfgs(memory_size=config.memory_size, linesearch=_linesearch(config.linesearch))
        if lbfgs
        else optax.with_extra_args_support(optax.adam(config.learning_rate))
    )
    fns = _MAPFunctions(
        optimizer,
        jax.jit(_chunk_runner(objective, optimizer, config.chunk, lbfgs)),
        jax.jit(lambda f, x, bkg, scales: (objective(f, x, bkg, scales), _cost(model, constrain(f), x, bkg))),
    )
    while len(_MAP_CACHE) >= 4:
        del _MAP_CACHE[next(iter(_MAP_CACHE))]
    _MAP_CACHE[key] = (model, fns)
    return fns


def _linesearch(kind: str):
    if kind == "zoom":
        return optax.scale_by_zoom_linesearch(max_linesearch_steps=20)
    return optax.scale_by_backtracking_linesearch(max_backtracking_steps=20, store_grad=True)


def _chunk_runner(objective, optimizer, length: int, lbfgs: bool):
    # L-BFGS's line search already evaluated value and gradient at the new point: reuse them
    value_and_grad = optax.value_and_grad_from_state(objective) if lbfgs else None

    def run(state, x, bkg, scales):
        fun = lambda f: objective(f, x, bkg, scales)

        def step(carry, _):
            flat, opt_state = carry
            if lbfgs:
                value, grad = value_and_grad(flat, x, bkg, scales, state=opt_state)
            else:
                value, grad = jax.value_and_grad(fun)(flat)
            updates, opt_state = optimizer.update(grad, opt_state, flat, value=value, grad=grad, value_fn=fun)
            return (optax.apply_updates(flat, updates), opt_state), None

        return jax.lax.scan(step, state, None, length=length)[0]

    return run


def _cost(model: CubeModel, point: dict, x: jax.Array, bkg: jax.Array | None) -> jax.Array:
    theta = {n: point[f"theta_{n}"] for n in model.names}
    return poisson_cost(model.expected_counts(point["amplitude"], theta, bkg), x)


def cube_map(
    model: CubeModel,
    counts,
    *,
    background=None,
    init: dict | None = None,
    config: CubeMAPConfig = CubeMAPConfig(),
    energies_kev=None,
    progress: bool = True,
    check: bool = True,
) -> xr.DataTree:
    """:func:`cube_map_point` as a point-mass DataTree (one chain, one draw; sd and intervals NaN).

    ``check`` warns (:class:`~bayes_unmix.inference.checks.ConvergenceWarning`) when the MAP stopped
    unconverged: at ``config.max_iter``, or after a chunk raised the loss twice.
    """
    trace = cube_map_point(model, counts, background=background, init=init, config=config, progress=progress)
    if check and not trace.converged:
        warnings.warn(_unconverged_message(trace, config), ConvergenceWarning, stacklevel=2)
    draws = {k: v[None, None] for k, v in trace.point.items()}
    attrs = {
        "iterations": trace.iterations,
        "converged": int(trace.converged),
        "wall_time_s": trace.wall_time_s,
        "neg_log_posterior": float(trace.loss[-1]),
        "poisson_cost": float(trace.cost[-1]),
        "optimizer": config.optimizer,
    }
    return to_cube_datatree(
        model, counts, draws, method="map", background=background, energies_kev=energies_kev, attrs=attrs
    )


def _unconverged_message(trace: MAPTrace, config: CubeMAPConfig) -> str:
    if trace.iterations < config.max_iter:
        return (
            f"cube MAP stopped after {trace.iterations} iterations: a chunk raised the loss twice (line search "
            "out of steps); the point is the last good one, not a mode"
        )
    change = abs(trace.loss[-2] - trace.loss[-1]) / max(abs(trace.loss[-1]), 1.0) if len(trace.loss) > 1 else np.nan
    return (
        f"cube MAP did not converge in {trace.iterations} iterations (relative change {change:.2g} over the last "
        f"{config.chunk}, tolerance {config.tol:g}); raise CubeMAPConfig.max_iter or start nearer the mode (init=)"
    )


def _start(model: CubeModel, counts, background, init, progress: bool) -> dict[str, jax.Array]:
    """A MAP point to start VI/NUTS at (computed unless given), with any learned scales at their start."""
    if init is None:
        init = cube_map_point(model, counts, background=background, progress=progress).point
    start = _inside(model, init, np.asarray(model.check_counts(counts).sum(0).reshape(-1)))
    return {**start, **{k: jnp.asarray(v) for k, v in scale_start(model).items()}}


def posterior_sites(model: CubeModel) -> tuple[str, ...]:
    """The sites a posterior reports: :func:`sample_sites` and any learned scales."""
    return sample_sites(model) + scale_sites(model)


# latent-map scales (fractions of each latent's range) tried by select_spatial_scale by default
SCALE_CANDIDATES = (0.01, 0.03, 0.1, 0.3)


def held_out_log_likelihood(model: CubeModel, point: dict, x_fit, x_test, *, background=None) -> jax.Array:
    """Poisson log-likelihood of held-out counts ``x_test`` ``(E, H, W)`` at the rates of ``point`` (sites, a
    MAP fitted to ``x_fit``), per pixel and channel ``(P, E)``, or per pixel ``(P,)`` under a presence prior,
    whose configurations are weighted by their posterior given ``x_fit``
    (:meth:`~bayes_unmix.models.cube.CubeModel.held_out_observation`). ``background``: expected counts of the
    held-out half. The score of :func:`select_spatial_scale`."""
    theta = {c.name: jnp.asarray(point[f"theta_{c.name}"]) for c in model.components}
    rates = model.component_counts(jnp.asarray(point["amplitude"]), theta)
    b = None if background is None else model.to_pixels(background)
    observation = model.held_out_observation(rates, b, model.to_pixels(x_fit))
    return observation.log_prob(model.to_pixels(x_test))


def select_spatial_scale(
    model: CubeModel,
    counts,
    *,
    key: jax.Array,
    scales: tuple[float, ...] = SCALE_CANDIDATES,
    per_latent: bool = True,
    amplitude_scales: tuple[float, ...] = (),
    amplitude_priors: tuple[str, ...] = ("log",),
    presence_priors: tuple[float | None, ...] = (),
    map_iter: int = 1000,
    tol: float = 1e-7,
    init: dict | None = None,
    background=None,
    progress: bool = True,
) -> tuple[CubeModel, dict[str, float]]:
    """Choice of the spatial prior's scales on the data alone, by two-fold Poisson cross-validation.

    The counts are thinned into halves ``X = X1 + X2`` (``X1 ~ Binomial(X, 1/2)``, drawn with ``key``):
    ``X1`` and ``X2`` are independent Poisson cubes with half the expected counts. Each candidate is
    fitted (cube MAP, L-BFGS until the loss changes by less than ``tol`` relative over 10 iterations, at
    most ``map_iter``) on one half and scored by the Poisson log-likelihood of the other half at the
    fitted rates, summed over both folds; the largest held-out likelihood wins. Fits must be converged:
    on a 32x32 toy cube, 150 iterations chose a photon-index scale of 0.01 and 400 chose 0.1, whose
    intervals cover 44 % and 95 %. Each fold starts from a MAP at the model's own scale (from ``init``
    with halved amplitudes, default :func:`neutral_point`); each candidate then starts from the fit of
    the best configuration so far, its nearest converged neighbour.

    First one scale shared by every latent map (each of ``scales``); then, if ``per_latent``, one sweep
    over the latent maps, each trying the other candidates with the rest held (a textured kT map and a
    smooth photon-index map want different smoothing); with ``scales=()`` the model's own latent scales
    are kept and scored as ``"given"``. Last, each of ``amplitude_scales`` for each kind in
    ``amplitude_priors`` (:attr:`CubeModel.amplitude_prior`: ``"log"`` amplitude maps or ``"ratio"``
    maps) against the model's own amplitude prior (default: off); then each of ``presence_priors`` (a
    probability ``q``, or ``None`` for every component everywhere: :attr:`CubeModel.presence_prior`) against
    the model's own, each pixel's configurations weighted by their posterior given the fitted half
    (:meth:`CubeModel.held_out_observation`). An evidence lower bound is no substitute here:
    a guide without spatial correlations loosens the bound most for strong smoothing, so it picks weak
    smoothing even for flat maps. Returns the model with the chosen scales and ``{candidate: held-out
    log-likelihood}`` with keys ``"0.03"`` (shared), ``"thermal[0]=0.1"`` (one latent changed from the
    best so far), ``"amplitude=0.3"`` (log amplitude maps), ``"ratio=0.3"`` and ``"presence=0.8"`` (or
    ``"presence=off"``). Needs integer counts.
    """
    if any(not s > 0 for s in (*scales, *amplitude_scales)):
        raise ValueError(f"scales must be positive numbers, got {scales} and {amplitude_scales}")
    if unknown := set(amplitude_priors) - {"log", "ratio"}:
        raise ValueError(f"unknown amplitude prior kinds {sorted(unknown)}; use log or ratio")
    if any(q is not None and not 0 < q < 1 for q in presence_priors):
        raise ValueError(f"presence priors must be probabilities in (0, 1) or None, got {presence_priors}")
    x = model.check_counts(counts)
    if not np.array_equal(x, np.round(x)):
        raise CubeInputError("cross-validating the spatial scale needs integer counts (it splits them binomially)")
    half = np.asarray(jax.random.binomial(key, x, 0.5))
    folds = ((half, x - half), (x - half, half))
    bkg = None if background is None else 0.5 * model.check_counts(background, name="background")
    start = init if init is not None else neutral_point(model, counts)
    start = {**start, "amplitude": 0.5 * np.asarray(start["amplitude"])}
    config = CubeMAPConfig(max_iter=map_iter, tol=tol)
    # each candidate starts from the fold fits of the best configuration so far (first: the model's own scale)
    best_fits = [
        cube_map_point(model, xf, background=bkg, init=start, config=config, progress=False).point for xf, _ in folds
    ]
    best_total = -np.inf
    scored: dict[tuple, float] = {}  # a sweep step may land on a configuration already scored

    def held_out(candidate: CubeModel) -> float:
        nonlocal best_fits, best_total
        latent = tuple(tuple(candidate.latent_scales(c)) for c in model.components)
        amplitude = candidate.amplitude_scale and (candidate.amplitude_scale, candidate.amplitude_prior)
        config_key = (latent, amplitude, candidate.presence_prior)
        if config_key in scored:
            return scored[config_key]
        total, points = 0.0, []
        for (x_fit, x_test), warm in zip(folds, best_fits):
            point = cube_map_point(candidate, x_fit, background=bkg, init=warm, config=config, progress=False).point
            points.append(point)
            total += float(jnp.sum(held_out_log_likelihood(candidate, point, x_fit, x_test, background=bkg)))
        scored[config_key] = total
        if total > best_total:
            best_fits, best_total = points, total
        return total

    sweep = [(c, k, s) for c in model.components for k in range(c.n_latent) for s in scales] if per_latent else []
    amplitudes = [(kind, s) for kind in amplitude_priors for s in amplitude_scales]
    presences = [q for q in presence_priors if q != model.presence_prior]
    score: dict[str, float] = {}
    total = max(len(scales), 1) + len(sweep) + len(amplitudes) + len(presences)
    with tqdm(total=total, desc="spatial scale", disable=not progress) as bar:
        shared = {f"{s:g}": dataclasses.replace(model, spatial_scale=float(s)) for s in scales} or {"given": model}
        for label, candidate in shared.items():
            score[label] = held_out(candidate)
            bar.update()
        label = max(shared, key=score.__getitem__)
        chosen, best_score = shared[label], score[label]
        for c, k, scale in sweep:
            bar.update()
            trial = {d.name: list(chosen.latent_scales(d)) for d in model.components}
            if trial[c.name][k] == scale:
                continue
            trial[c.name][k] = float(scale)
            label = f"{c.name}[{k}]={scale:g}"
            score[label] = held_out(dataclasses.replace(chosen, spatial_scale=trial))
            if score[label] > best_score:
                chosen, best_score = dataclasses.replace(chosen, spatial_scale=trial), score[label]
        for kind, scale in amplitudes:
            bar.update()
            label = f"{'amplitude' if kind == 'log' else kind}={scale:g}"
            trial = dataclasses.replace(chosen, amplitude_scale=float(scale), amplitude_prior=kind)
            score[label] = held_out(trial)
            if score[label] > best_score:
                chosen, best_score = trial, score[label]
        if presences:
            score[f"presence={_presence_label(model.presence_prior)}"] = best_score
        for q in presences:
            bar.update()
            label = f"presence={_presence_label(q)}"
            trial = dataclasses.replace(chosen, presence_prior=q)
            score[label] = held_out(trial)
            if score[label] > best_score:
                chosen, best_score = trial, score[label]
    return chosen, score


def _presence_label(q: float | None) -> str:
    return "off" if q is None else f"{q:g}"


def cube_nuts(
    model: CubeModel,
    counts,
    *,
    key: jax.Array,
    num_warmup: int = 300,
    num_samples: int = 300,
    num_chains: int = 2,
    max_tree_depth: int = 8,
    target_accept: float = 0.85,
    init: dict | None = None,
    background=None,
    energies_kev=None,
    progress: bool = True,
    check: bool = True,
) -> xr.DataTree:
    """NumPyro NUTS on the joint cube model (chains vectorised, all started at a MAP point).

    Meant for small cubes (a few hundred pixels on CPU) or a GPU; ``check`` warns
    (:class:`~bayes_unmix.inference.checks.ConvergenceWarning`) on R-hat, ESS or divergence problems.
    """
    x, bkg, _ = _data(model, counts, background)
    start = _start(model, counts, background, init, progress)
    kernel = NUTS(
        make_cube_model(model),
        init_strategy=init_to_value(values=start),
        target_accept_prob=target_accept,
        max_tree_depth=max_tree_depth,
    )
    mcmc = MCMC(
        kernel,
        num_warmup=num_warmup,
        num_samples=num_samples,
        num_chains=num_chains,
        chain_method="vectorized",
        progress_bar=progress,
    )
    t0 = time.perf_counter()
    mcmc.run(key, x, bkg, extra_fields=("diverging", "num_steps"))
    samples = mcmc.get_samples(group_by_chain=True)
    draws = {k: np.asarray(v) for k, v in samples.items() if k in posterior_sites(model)}
    extra = mcmc.get_extra_fields(group_by_chain=True)
    stats = {"diverging": np.asarray(extra["diverging"]), "n_steps": np.asarray(extra["num_steps"])}
    attrs = {"num_warmup": num_warmup, "num_samples": num_samples, "wall_time_s": time.perf_counter() - t0}
    tree = to_cube_datatree(
        model,
        counts,
        draws,
        method="nuts",
        background=background,
        energies_kev=energies_kev,
        sample_stats=stats,
        attrs=attrs,
        key=jax.random.fold_in(key, 1),
    )
    if check:
        convergence_report(tree, ess_min=100.0)
    return tree
