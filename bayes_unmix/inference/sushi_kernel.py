"""The SUSHI iteration as a pure ``(init, step)`` pair (:func:`build_sushi`) with its settings and state.

The algorithm, its published choices and the faster variants are described in
:mod:`bayes_unmix.inference.sushi`, whose :func:`~bayes_unmix.inference.sushi.sushi` drives this kernel on
device in compiled chunks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import bayes_unmix  # noqa: F401  (float64 on import)
from bayes_unmix.models.component import SpectralComponent
from bayes_unmix.wavelets import starlet_forward

__all__ = ["SushiConfig", "SushiData", "SushiInfo", "SushiState", "build_sushi"]

_LOG_EPS = 1e-16  # inside the log of the published cost
_CHOICES = {
    "threshold_rule": ("gradient", "map"),
    "cost": ("poisson", "chi2"),
    "theta_step": ("gradient", "newton"),
    "sweep": ("gauss_seidel", "jacobi"),
    "boundary": ("symmetric", "mirror"),
}


@dataclasses.dataclass(frozen=True)
class SushiConfig:
    """Settings of :func:`sushi`; the defaults reproduce the published (2024, IAE) algorithm.

    ``max_iter``, ``stop``, ``stop_window``: iteration cap, tolerance (NaN: never stop) and window ``w``
    of the stopping rule (first checked after ``3 w + 2`` iterations). ``n_scales``, ``kmad``,
    ``boundary``: starlet detail scales ``J``, threshold factor and padding (``"symmetric"`` as
    published). ``threshold_rule``, ``mad_constant``, ``mask_amplitude``: MAD source, constant and the
    amplitude above which pixels enter the MAD. ``alpha_theta``: theta step (None: ``0.1 / max counts``).
    ``theta_step``, ``newton_damping``: see the module docstring. ``sweep``: Gauss-Seidel or joint theta
    step. ``amplitude_sweeps``: amplitude Newton sweeps per iteration. ``clip_theta``: clip theta to the
    components' ``theta_bounds``. ``chunk``: iterations per compiled call.
    """

    max_iter: int = 10_000
    stop: float = 1e-6
    stop_window: int = 50
    n_scales: int = 2
    kmad: float = 1.0
    boundary: str = "symmetric"
    threshold_rule: str = "gradient"
    mad_constant: float = 0.6745
    mask_amplitude: float = 1.0
    cost: str = "poisson"
    alpha_theta: float | None = None
    theta_step: str = "gradient"
    newton_damping: float = 1e-3
    sweep: str = "gauss_seidel"
    amplitude_sweeps: int = 1
    clip_theta: bool = False
    legacy_stop: bool = False
    legacy_chi2_hessian: bool = False
    chunk: int = 100

    def __post_init__(self) -> None:
        for field, allowed in _CHOICES.items():
            if getattr(self, field) not in allowed:
                raise ValueError(f"{field} must be one of {allowed}, got {getattr(self, field)!r}")
        for field in ("max_iter", "stop_window", "n_scales", "amplitude_sweeps", "chunk"):
            value = getattr(self, field)
            if not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"{field} must be a positive integer, got {value!r}")
        if not (self.kmad >= 0 and self.newton_damping >= 0 and self.mad_constant > 0):
            raise ValueError("kmad and newton_damping must be >= 0 and mad_constant > 0")
        if self.threshold_rule == "map" and self.theta_step == "newton":  # tau would scale with the map itself
            raise ValueError('threshold_rule="map" needs theta_step="gradient" (tau = kmad alpha MAD(W u))')
        if self.alpha_theta is not None and not self.alpha_theta > 0:
            raise ValueError(f"alpha_theta must be positive or None, got {self.alpha_theta!r}")

    @classmethod
    def fast(cls, **overrides) -> SushiConfig:
        """Per-pixel Newton theta steps, 3 amplitude sweeps, clipped theta, 10-iteration stop windows.

        >>> config = SushiConfig.fast(kmad=3.0)
        >>> config.theta_step, config.kmad, SushiConfig().theta_step
        ('newton', 3.0, 'gradient')
        """
        settings = {"theta_step": "newton", "amplitude_sweeps": 3, "clip_theta": True, "stop_window": 10, "chunk": 20}
        return cls(**(settings | overrides))


class SushiData(NamedTuple):
    """Data of the ``Q`` active pixels (indices ``active`` ``(Q,)`` into the ``P`` flattened ones):
    ``counts``, ``background``, ``sigma`` ``(Q, E)``, and the scalar theta step ``alpha``.

    Pixels without counts, background or initial amplitude keep ``a = 0`` exactly (their amplitude
    gradient is positive and their Hessian zero), so their spectra are never needed; only their
    ``theta`` (smoothed by the prox) is kept.
    """

    counts: jax.Array
    background: jax.Array
    sigma: jax.Array
    alpha: jax.Array
    active: jax.Array


class SushiState(NamedTuple):
    """Carried state: ``theta`` per component ``(P, n_latent)``, active ``amplitudes`` ``(C, Q)``,
    ``spectra`` per component ``(Q, E)`` at the active ``theta`` (and their ``jacobians`` ``(K, Q, E)``
    for Newton steps), ``cost_history`` ``(max_iter,)``, ``iteration`` (costs
    recorded) and ``converged``."""

    theta: tuple[jax.Array, ...]
    amplitudes: jax.Array
    spectra: tuple[jax.Array, ...]
    jacobians: tuple[jax.Array, ...]
    cost_history: jax.Array
    iteration: jax.Array
    converged: jax.Array


class SushiInfo(NamedTuple):
    """Per-iteration report: ``cost`` and the stopping ratio (NaN before the first check)."""

    cost: jax.Array
    ratio: jax.Array


# --------------------------------------------------------------------------- cost and derivatives


def _cost(model, data: SushiData, chi2: bool) -> jax.Array:
    """Published cost; only entries with ``M > 0`` count."""
    pos = model > 0
    if chi2:
        terms = (data.counts - model) ** 2 / data.sigma**2
    else:
        terms = model - data.counts * jnp.log(jnp.abs(model) + _LOG_EPS)
    return jnp.sum(jnp.where(pos, terms, 0.0))


def _dcost(model, data: SushiData, chi2: bool) -> jax.Array:
    """``dL/dM`` ``(P, E)``."""
    if chi2:
        d = -2.0 * (data.counts - model) / data.sigma**2
    else:
        d = 1.0 - data.counts / (model + _LOG_EPS)
    return jnp.where(model > 0, d, 0.0)


def _curvature(model, data: SushiData, chi2: bool) -> jax.Array:
    """Fisher weight ``E[d2L/dM2]`` ``(P, E)`` for the Newton theta step."""
    if chi2:
        return 2.0 / data.sigma**2
    return jnp.where(model > 0, 1.0 / jnp.maximum(model, _LOG_EPS), 0.0)


# --------------------------------------------------------------------------- steps


def _stop_ratio(history, n, window: int, legacy: bool) -> jax.Array:
    """Relative change of the mean cost between the windows ``[n-3w, n-2w)`` and ``[n-w, n)``."""
    old = jnp.mean(lax.dynamic_slice(history, (n - 3 * window,), (window,)))
    new = jnp.mean(lax.dynamic_slice(history, (n - window,), (window,)))
    if legacy:
        return (new - old) / old
    return jnp.abs(new - old) / jnp.abs(old)


def _masked_mad(x, mask, constant: float) -> jax.Array:
    """MAD of ``x`` ``(..., P)`` over ``mask`` ``(P,)``, divided by ``constant``; 0 if nothing is masked in."""
    x = jnp.where(mask, x, jnp.nan)
    med = jnp.nanmedian(x, axis=-1, keepdims=True)
    mad = jnp.nanmedian(jnp.abs(x - med), axis=-1) / constant
    return jnp.where(jnp.isnan(mad), 0.0, mad)


def _prox(u, ref, amplitude, shape, scale, config: SushiConfig) -> jax.Array:
    """Soft-threshold the starlet details of the maps ``u`` ``(P, K)``; thresholds from ``ref``."""
    h, w = shape
    to_maps = lambda z: starlet_forward(z.T.reshape(-1, h, w), config.n_scales, boundary=config.boundary)
    coeffs, ref_coeffs = to_maps(u), to_maps(ref)  # (K, J + 1, H, W)
    mask = amplitude > config.mask_amplitude
    ref_details = ref_coeffs[:, :-1].reshape(*ref_coeffs.shape[:1], config.n_scales, h * w)
    tau = config.kmad * scale * _masked_mad(ref_details, mask, config.mad_constant)  # (K, J)
    details = coeffs[:, :-1]
    details = jnp.sign(details) * jnp.maximum(jnp.abs(details) - tau[:, :, None, None], 0.0)
    maps = coeffs[:, -1] + jnp.sum(details, axis=1)
    return maps.reshape(maps.shape[0], -1).T


def _evaluate(comp: SpectralComponent, theta, config: SushiConfig):
    """Spectra ``(Q, E)`` at ``theta`` ``(Q, K)`` and, for Newton steps, the Jacobian ``(K, Q, E)``
    (else an empty placeholder): one linearisation serves this iteration's model and the next step."""
    if config.theta_step == "gradient":
        return comp.spectra(theta), jnp.zeros(0)
    f, lin = jax.linearize(comp.spectra, theta)
    basis = jnp.broadcast_to(jnp.eye(theta.shape[1])[:, None, :], (theta.shape[1], *theta.shape))
    return f, jax.vmap(lin)(basis)


def _theta_delta(comp: SpectralComponent, theta, jac, amp, model, data, config: SushiConfig):
    """Step ``delta`` ``(Q, K)`` to subtract from ``theta``: ``alpha * grad`` or a per-pixel LM step."""
    chi2 = config.cost == "chi2"
    resid = amp[:, None] * _dcost(model, data, chi2)  # dL/df_c
    if config.theta_step == "gradient":
        _, vjp = jax.vjp(comp.spectra, theta)
        return data.alpha * vjp(resid)[0]
    grad = jnp.einsum("kpe,pe->pk", jac, resid)
    weight = (amp**2)[:, None] * _curvature(model, data, chi2)
    fisher = jnp.einsum("kpe,lpe,pe->pkl", jac, jac, weight)
    diag = jnp.diagonal(fisher, axis1=1, axis2=2)
    ridge = config.newton_damping * diag + 1e-12 * jnp.max(diag, axis=1, keepdims=True) + 1e-300
    delta = jnp.linalg.solve(fisher + jax.vmap(jnp.diag)(ridge), grad[..., None])[..., 0]
    return jnp.where(jnp.isfinite(delta), delta, 0.0)


def _amplitude_sweep(amps, spectra, model, data, config: SushiConfig):
    """One Gauss-Seidel sweep of diagonal-Newton amplitude steps; returns ``(amps, model)``."""
    chi2 = config.cost == "chi2"
    for c, f in enumerate(spectra):
        grad = jnp.sum(f * _dcost(model, data, chi2), axis=1)
        if chi2:
            hess = 2.0 * jnp.sum(f**2 / (data.sigma if config.legacy_chi2_hessian else data.sigma**2), axis=1)
        else:  # the background is left out of M here, as published
            hess = jnp.sum(f**2 * data.counts / (model - data.background) ** 2, axis=1)
        step = jnp.where(jnp.isfinite(hess) & (hess > 0), grad / hess, 0.0)
        new = jnp.maximum(amps[c] - step, 0.0)
        model = model + (new - amps[c])[:, None] * f
        amps = amps.at[c].set(new)
    return amps, model


def build_sushi(components: Sequence[SpectralComponent], shape: tuple[int, int], config: SushiConfig):
    """Pure ``(init, step)`` pair of SUSHI for maps of ``shape = (H, W)``.

    ``init(theta, amplitudes, data) -> SushiState`` takes ``theta`` per component ``(P, n_latent)`` and
    ``amplitudes`` ``(C, P)``, ``P = H W``; ``step(state, data) -> (state, SushiInfo)`` is one iteration (a no-op
    once converged is left to the caller: see :func:`sushi`).
    """
    comps = tuple(components)
    bounds = [tuple(jnp.asarray(b, jnp.float64) for b in comp.theta_bounds) for comp in comps]

    def total(amps, spectra, data):
        return data.background + sum(a[:, None] * f for a, f in zip(amps, spectra, strict=True))

    def init(theta, amplitudes, data: SushiData) -> SushiState:
        spectra, jacobians = zip(*(_evaluate(c, t[data.active], config) for c, t in zip(comps, theta, strict=True)))
        history = jnp.full(config.max_iter, jnp.nan)
        return SushiState(
            tuple(theta), amplitudes[:, data.active], spectra, jacobians, history, jnp.asarray(0), jnp.asarray(False)
        )

    def step(state: SushiState, data: SushiData) -> tuple[SushiState, SushiInfo]:
        theta, spectra, jacobians, amps = (
            list(state.theta),
            list(state.spectra),
            list(state.jacobians),
            state.amplitudes,
        )
        model = total(amps, spectra, data)
        # "gradient": tau = kmad MAD(W delta) (delta carries alpha); "map": tau = kmad alpha MAD(W u)
        scale = 1.0 if config.threshold_rule == "gradient" else data.alpha
        full = lambda z: jnp.zeros((shape[0] * shape[1], *z.shape[1:])).at[data.active].set(z)
        for c, comp in enumerate(comps):
            delta = full(_theta_delta(comp, theta[c][data.active], jacobians[c], amps[c], model, data, config))
            u = theta[c] - delta
            new = _prox(u, delta if config.threshold_rule == "gradient" else u, full(amps[c]), shape, scale, config)
            if config.clip_theta:
                new = jnp.clip(new, *bounds[c])
            f_new, jacobians[c] = _evaluate(comp, new[data.active], config)
            if config.sweep == "gauss_seidel":  # later components see this update
                model = model + amps[c][:, None] * (f_new - spectra[c])
            theta[c], spectra[c] = new, f_new
        model = total(amps, spectra, data)
        for _ in range(config.amplitude_sweeps):
            amps, model = _amplitude_sweep(amps, spectra, model, data, config)
        cost = _cost(model, data, config.cost == "chi2")
        n = state.iteration + 1
        history = state.cost_history.at[state.iteration].set(cost)
        ratio = jnp.asarray(jnp.nan)
        if config.max_iter >= 3 * config.stop_window + 2:  # else the rule can never be checked
            ratio = _stop_ratio(history, n, config.stop_window, config.legacy_stop)
            ratio = jnp.where(n >= 3 * config.stop_window + 2, ratio, jnp.nan)
        new_state = SushiState(tuple(theta), amps, tuple(spectra), tuple(jacobians), history, n, ratio < config.stop)
        return new_state, SushiInfo(cost, ratio)

    return init, step


# --------------------------------------------------------------------------- driver
