"""Variational posteriors of X-ray cube models: Gaussian guides in unconstrained space, started at a MAP point.

* ``"pixel"`` (default): a full covariance per pixel over the log total and shares of the amplitudes and the
  latents, independent pixels (:func:`_pixel_block_guide`);
* ``"spatial"``: those blocks, then every coordinate's map convolved with a learned smoothing, so that neighbours
  correlate as a spatial prior makes them (:func:`_pixel_block_guide` with ``spatial=True``);
* ``"meanfield"`` / ``"lowrank"``: NumPyro's :class:`~numpyro.infer.autoguide.AutoNormal` and
  :class:`~numpyro.infer.autoguide.AutoLowRankMultivariateNormal`.

All scale to the full cube (cost per step: one gradient of the joint log density). All but ``"spatial"`` drop
the posterior's spatial correlations, which can make per-pixel intervals too narrow where the spatial prior
dominates the data; on the toy cube the per-pixel guide's 90 % intervals cover about as often as NUTS' on the
joint model, the mean-field guide's amplitude intervals far less (``benchmarks/hyperspectral.py``). On latent
truths drawn from the starlet prior the per-pixel guide covers 3-6 points less than NUTS (sds 5-20 % small),
and ``"spatial"`` does not close that gap; under the smoothness prior it closes half to four fifths of the
per-pixel guide's gap to NUTS (``benchmarks/cube_prior_coverage.py``).
"""

from __future__ import annotations

import time
import warnings
from typing import Literal, get_args

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import optax
import xarray as xr
from numpyro.distributions import biject_to, constraints
from numpyro.infer import SVI, Predictive, Trace_ELBO
from numpyro.infer.autoguide import AutoLowRankMultivariateNormal, AutoNormal
from numpyro.infer.initialization import init_to_value
from numpyro.optim import optax_to_numpyro

from bayes_unmix.inference.checks import ConvergenceWarning
from bayes_unmix.inference.cube import _data, _start, _supports, posterior_sites, sample_sites
from bayes_unmix.inference.cube_convert import to_cube_datatree
from bayes_unmix.models.cube import CubeModel, make_cube_model, scale_prior, scale_sites

__all__ = ["GUIDES", "cube_vi"]

Guide = Literal["pixel", "spatial", "meanfield", "lowrank"]
GUIDES: tuple[str, ...] = get_args(Guide)


class _TotalAndShares:
    """Amplitudes ``(..., C)`` <-> ``(log total, stick-breaking shares)`` in ``R^C``.

    Two components that explain the same counts are sharply constrained in their sum and loosely in
    their split: a banana in ``(log a_1, log a_2)`` that a Gaussian guide fits too narrowly (amplitude
    sd about 2/3 of NUTS' on the toy cube), but nearly Gaussian in (log total, logit share).
    """

    def __init__(self, n_components: int):
        self.n = n_components
        self.stick = biject_to(constraints.simplex)

    def inv(self, amplitude: jax.Array) -> jax.Array:
        total = amplitude.sum(-1, keepdims=True)
        return jnp.concatenate([jnp.log(total), self.stick.inv(amplitude / total)], axis=-1)

    def __call__(self, u: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Amplitudes and ``log |d amplitude / d u|``."""
        log_total, v = u[..., 0], u[..., 1:]
        shares = self.stick(v) if self.n > 1 else jnp.ones((*u.shape[:-1], 1))
        log_det = self.n * log_total  # d a / d (total, free shares) = total^(C-1), times d total / d log total
        if self.n > 1:
            log_det = log_det + self.stick.log_abs_det_jacobian(v, shares)
        return jnp.exp(log_total)[..., None] * shares, log_det


def _smoothing_eigenvalues(height: int, width: int, n_scales: int = 2) -> jax.Array:
    """Eigenvalues ``(n_scales, H, W)`` of the B3-spline smoothing at dilations ``1, 2, ..`` on the periodic
    image (the starlet's smoothing kernels as circulant operators): ``h(w_y) h(w_x)`` in ``[0, 1]``."""

    def one_axis(n: int, dilation: int) -> np.ndarray:
        cos = np.cos(2 * np.pi * dilation * np.fft.fftfreq(n))
        return (1 + cos) ** 2 / 4  # (6 + 8 cos w + 2 cos 2w) / 16

    return jnp.asarray(np.stack([np.outer(one_axis(height, 2**j), one_axis(width, 2**j)) for j in range(n_scales)]))


def _convolve_maps(deviation: jax.Array, gain: jax.Array) -> jax.Array:
    """``deviation`` ``(H, W, D)`` convolved map by map with the circulant operators of eigenvalues ``gain``
    ``(H, W, D)`` (real and even in frequency, so the result is real)."""
    return jnp.fft.ifft2(jnp.fft.fft2(deviation, axes=(0, 1)) * gain, axes=(0, 1)).real


def _convolve_variance(variance: jax.Array, gain: jax.Array) -> jax.Array:
    """Variances ``(H, W)`` of one coordinate's map after the circulant operator of eigenvalues ``gain`` ``(H, W)``,
    for independent pixels of ``variance``: the map convolved with the squared kernel."""
    kernel = jnp.fft.ifft2(gain).real
    return jnp.fft.ifft2(jnp.fft.fft2(variance) * jnp.fft.fft2(kernel**2)).real


def _pixel_block_guide(model: CubeModel, start: dict[str, jax.Array], init_scale: float, spatial: bool = False):
    """Gaussian guide with a full covariance per pixel over (log total, shares) of the amplitudes and the
    unconstrained latents (``D = C + sum n_latent`` coordinates, one fewer per simplex latent), independent
    pixels: it keeps the amplitude-shape correlations within a pixel that a mean-field guide drops, at
    ``D (D + 3) / 2`` parameters per pixel.

    With ``spatial``, the pixels' deviations from ``loc`` are then convolved, coordinate by coordinate, with
    ``I + b_1 K_1 + b_2 K_2`` (``K_j``: the B3-spline smoothing at dilations 1 and 2 on the periodic image,
    applied by FFT; ``b >= 0`` learned per coordinate, ``2 D`` parameters): the guide's covariance is then
    ``C B C^T`` with ``B`` the blocks, neighbours correlate positively, as a smoothness prior makes them in the
    posterior, and ``log |det C|`` is the sum of ``log(1 + b_1 k_1 + b_2 k_2)`` over ``K_j``'s eigenvalues.

    Without a presence prior, in pixels without counts the log-likelihood, ``-total -
    background`` (unit-sum spectra), enters the ELBO as its expectation under the guide, ``exp(loc + var / 2)`` of
    the log total, in place of its draw (a factor in the guide adds the difference): unbiased, and without the
    draws from the guide's tail that cost such a pixel thousands of nats (its log total's posterior is flat below a
    wall at about one count; one draw in 400 on a 48x48 toy cube cost a pixel 69 000). Where there are counts, ``counts x
    log total`` offsets the draw's ``-total`` to first order, and replacing only the latter would add noise.

    Learned scales (``scale_<name>``) get independent normals in their unconstrained (nearly log) coordinates:
    each is set by every pixel of its map, so its posterior is narrow and its correlation with any one pixel
    weak."""
    sites = sample_sites(model)
    transforms = {k: biject_to(s) for k, s in _supports(model).items()}
    amplitudes = _TotalAndShares(len(model.components))
    # unconstrained sizes: a simplex latent of n weights has n - 1 coordinates
    unconstrained = [transforms[k].inv(start[k]) for k in sites[1:]]
    sizes = [u.shape[-1] for u in unconstrained]
    loc0 = jnp.concatenate([amplitudes.inv(start["amplitude"]), *unconstrained], axis=-1)  # (P, D)
    n_pixels, d = loc0.shape
    tril0 = jnp.broadcast_to(init_scale * jnp.eye(d), (n_pixels, d, d))
    smoothing = _smoothing_eigenvalues(model.height, model.width) if spatial else None  # (2, H, W)
    to_scale = biject_to(scale_prior(model).support) if scale_sites(model) else None

    def guide(counts, background=None):
        for site in scale_sites(model):
            loc = numpyro.param(f"{site}_loc", to_scale.inv(start[site]))
            sd = numpyro.param(f"{site}_sd", jnp.full(loc.shape, init_scale), constraint=constraints.positive)
            numpyro.sample(site, dist.TransformedDistribution(dist.Normal(loc, sd), to_scale).to_event(1))
        loc = numpyro.param("pixel_loc", loc0)
        tril = numpyro.param("pixel_scale_tril", tril0, constraint=constraints.scaled_unit_lower_cholesky)
        if spatial:
            strength = numpyro.param("spatial_strength", jnp.full((2, d), 0.01), constraint=constraints.positive)
            gain = 1.0 + jnp.einsum("jhw,jd->hwd", smoothing, strength)  # eigenvalues of C, >= 1
        with numpyro.plate("pixel", n_pixels):
            if spatial:  # z = loc + C w: log q(z) = log q(w) - log |det C|, spread over the pixels
                w = numpyro.sample(
                    "_pixel_w", dist.MultivariateNormal(jnp.zeros(d), scale_tril=tril), infer={"is_auxiliary": True}
                )
                z = loc + _convolve_maps(w.reshape(model.height, model.width, d), gain).reshape(n_pixels, d)
                log_det_c = jnp.sum(jnp.log(gain)) / n_pixels
            else:
                z = numpyro.sample(
                    "_pixel_z", dist.MultivariateNormal(loc, scale_tril=tril), infer={"is_auxiliary": True}
                )
                log_det_c = 0.0
            if model.presence_prior is None:
                log_total_var = tril[:, 0, 0] ** 2
                if spatial:
                    log_total_var = _convolve_variance(log_total_var.reshape(model.height, model.width), gain[..., 0])
                empty = jnp.sum(counts, -1) == 0  # there the log-likelihood is exactly -total - background
                # masked before exp, so that no other pixel's value can turn the gradient into nan
                log_mean = jnp.where(empty, loc[:, 0] + log_total_var.reshape(-1) / 2, 0.0)
                numpyro.factor("_expected_total", jnp.exp(log_mean) - jnp.exp(jnp.where(empty, z[:, 0], 0.0)))
            value, log_det = amplitudes(z[..., : amplitudes.n])
            log_det = log_det + log_det_c
            numpyro.sample("amplitude", dist.Delta(value, log_density=-log_det, event_dim=1))
            offset = amplitudes.n
            for site, size in zip(sites[1:], sizes):
                u = z[..., offset : offset + size]
                offset += size
                value = transforms[site](u)
                log_det = jnp.sum(transforms[site].log_abs_det_jacobian(u, value), axis=-1)
                numpyro.sample(site, dist.Delta(value, log_density=-log_det, event_dim=1))

    return guide


def cube_vi(
    model: CubeModel,
    counts,
    *,
    key: jax.Array,
    guide: Guide = "pixel",
    steps: int = 2000,
    learning_rate: float = 0.05,
    num_draws: int = 200,
    rank: int = 10,
    init_scale: float = 0.1,
    init: dict | None = None,
    background=None,
    energies_kev=None,
    progress: bool = True,
    check: bool = True,
) -> xr.DataTree:
    """Variational posterior of the whole cube: Gaussian guide in unconstrained space, started at a MAP point.

    ``guide``: ``"meanfield"`` (:class:`~numpyro.infer.autoguide.AutoNormal`), ``"lowrank"``
    (:class:`~numpyro.infer.autoguide.AutoLowRankMultivariateNormal` of ``rank``) or ``"pixel"`` (default: a
    full covariance per pixel over the log total and shares of the amplitudes and the latents, independent
    pixels: keeps the amplitude-shape correlations within a pixel, drops the spatial ones; mean-field
    amplitude intervals are about 2/3 as wide as NUTS') or ``"spatial"`` (those blocks, then a learned
    smoothing across pixels: under the smoothness prior its photon-index intervals cover 0.88 of truths drawn
    from the prior where the pixel guide's cover 0.78 and NUTS' 0.94, ``benchmarks/cube_prior_coverage.py``;
    under the starlet prior it changes nothing). The guide starts at the MAP point with scales ``init_scale``
    (unconstrained units: ~10 % on the amplitudes); Adam with cosine decay from ``learning_rate`` for ``steps``
    steps (one ELBO particle), then ``num_draws`` draws of the guide.

    The guide must travel from the mode to the mean: skewed marginals (a photon index barely constrained in
    faint pixels) put them a posterior sd or more apart. At a rate of 0.01 the pixel guide had not got there
    after 1000 steps on a 24x24 toy cube (ELBO 2000 nats short, photon-index 90 % intervals covering 71 %);
    at 0.05 its means match NUTS' to 0.1 sd and its intervals cover 87-93 %, as NUTS' do. ``check`` warns
    (:class:`~bayes_unmix.inference.checks.ConvergenceWarning`) when the loss still falls over the last
    tenth of the steps by more than three standard errors of its noise; ``elbo_gain_last_tenth`` (nats) is
    in the attrs either way, and 0.01 nats per unknown is tolerated.
    """
    if guide not in GUIDES:
        raise ValueError(f"unknown guide {guide!r}; use one of {', '.join(GUIDES)}")
    x, bkg, _ = _data(model, counts, background)
    start = _start(model, counts, background, init, progress)
    program = make_cube_model(model)
    init_loc = init_to_value(values=start)
    if guide == "meanfield":
        auto = AutoNormal(program, init_loc_fn=init_loc, init_scale=init_scale)
    elif guide in ("pixel", "spatial"):
        auto = _pixel_block_guide(model, start, init_scale, spatial=guide == "spatial")
    else:
        auto = AutoLowRankMultivariateNormal(program, init_loc_fn=init_loc, init_scale=init_scale, rank=rank)
    schedule = optax.cosine_decay_schedule(learning_rate, steps, alpha=0.1)
    svi = SVI(program, auto, optax_to_numpyro(optax.adam(schedule)), Trace_ELBO())
    k_fit, k_draw = jax.random.split(key)
    t0 = time.perf_counter()
    state = svi.run(k_fit, steps, x, bkg, progress_bar=progress)
    if guide in ("pixel", "spatial"):
        draws = Predictive(auto, params=state.params, num_samples=num_draws)(k_draw, x, bkg)
    else:
        draws = auto.sample_posterior(k_draw, state.params, sample_shape=(num_draws,))
    draws = {k: np.asarray(v)[None] for k, v in draws.items() if k in posterior_sites(model)}
    losses = np.asarray(state.losses)
    n_unknowns = model.n_pixels * (len(model.components) + sum(c.n_latent for c in model.components))
    attrs = {
        "steps": steps,
        "guide": guide,
        "learning_rate": learning_rate,
        "final_elbo": float(-np.mean(losses[-max(1, steps // 20) :])),
        "elbo_gain_last_tenth": _elbo_gain(losses, n_unknowns, warn=check),
        "wall_time_s": time.perf_counter() - t0,
    }
    return to_cube_datatree(
        model,
        counts,
        draws,
        method=f"vi-{guide}",
        background=background,
        energies_kev=energies_kev,
        attrs=attrs,
        key=jax.random.fold_in(k_draw, 1),
    )


def _elbo_gain(losses: np.ndarray, n_unknowns: int, *, warn: bool) -> float:
    """ELBO gain of the last tenth of the steps over the tenth before (nats); warns if it exceeds both three
    standard errors of the single-particle noise and 0.01 nats per unknown (on a 24x24 toy cube: 0.029 per
    unknown at a rate of 0.01, far from the mean; 0.006 at 0.05, whose intervals match NUTS')."""
    tenth = len(losses) // 10
    if tenth < 5:
        return float("nan")
    last, before = losses[-tenth:], losses[-2 * tenth : -tenth]
    gain = float(np.mean(before) - np.mean(last))
    # single-particle noise from successive differences, which the trend itself barely inflates
    noise = np.sqrt((np.var(np.diff(last)) + np.var(np.diff(before))) / (2 * tenth))
    if warn and gain > max(3 * noise, 0.01 * n_unknowns):
        warnings.warn(
            f"VI has not converged: the ELBO rose by {gain:.4g} nats over the last tenth of {len(losses)} steps "
            f"(noise {noise:.2g}, {n_unknowns} unknowns); run more steps or a larger learning_rate",
            ConvergenceWarning,
            stacklevel=3,
        )
    return gain
