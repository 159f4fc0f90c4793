"""Fitting new spectra with a trained IAE: fast interpolation and barycentric span projection.

Both return a :class:`Projection` and accept batches of any leading shape: ``(..., C, n)``, or
``(..., n)`` for single-component models.

* :func:`fast_interpolation` encodes the (amplitude-normalised) spectrum, interpolates its code
  and decodes: one network pass, no iterations.
* :func:`project` solves the barycentric span projection

      min_{lambda: sum lambda = 1, a}  || a * decode(lambda E) - x ||_2^2

  per spectrum, with amplitudes ``a`` (one per component) profiled out in closed form and
  Levenberg-Marquardt steps on the ``d - 1`` free weights (exact Jacobians by forward-mode
  differentiation). Each spectrum has its own stopping rule (relative cost decrease below ``tol``),
  unlike the published solver that stopped on the batch sum.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp

from bayes_unmix.iae.interpolator import affine_weights, project_simplex
from bayes_unmix.iae.model import IAE

__all__ = ["Projection", "fast_interpolation", "project"]

_TINY = 1e-300


class Projection(NamedTuple):
    """Result of fitting spectra on the barycentric span.

    Attributes
    ----------
    spectra:
        Fitted spectra ``amplitudes * decode(weights)``, same shape as the input.
    weights:
        Barycentric weights ``(..., d)`` (sum one).
    amplitudes:
        Per-component amplitudes ``(..., C)``.
    cost:
        Final squared error ``||fitted - x||^2`` per spectrum.
    iterations:
        Solver iterations (0 for fast interpolation).
    """

    spectra: jax.Array
    weights: jax.Array
    amplitudes: jax.Array
    cost: jax.Array
    iterations: jax.Array


def _as_components(iae: IAE, spectra: jax.Array) -> tuple[jax.Array, bool]:
    x = jnp.asarray(spectra, dtype=jnp.float64)
    added = False
    if iae.n_components == 1 and x.shape[-1:] == (iae.n_channels,) and (x.ndim == 1 or x.shape[-2] != 1):
        x, added = x[..., None, :], True
    if x.ndim < 2 or x.shape[-2:] != (iae.n_components, iae.n_channels):
        raise ValueError(
            f"spectra of shape {tuple(jnp.shape(spectra))} do not match the model "
            f"({iae.n_components} component(s) x {iae.n_channels} channels)"
        )
    return x, added


def _best_amplitudes(model: jax.Array, x: jax.Array) -> jax.Array:
    return jnp.sum(model * x, -1) / jnp.maximum(jnp.sum(model * model, -1), _TINY)


def _finish(iae: IAE, x, added, lam, amp, model, iterations) -> Projection:
    fitted = amp[..., None] * model
    cost = jnp.sum((fitted - x) ** 2, axis=(-2, -1))
    if added:
        fitted = fitted[..., 0, :]
    return Projection(fitted, lam, amp, cost, iterations)


@jax.jit
def fast_interpolation(iae: IAE, spectra: jax.Array) -> Projection:
    """Encode, interpolate, decode; then the least-squares amplitude of each component.

    The input is first divided by ``a0 = sum(x) / mean_a sum(anchor_a)`` (per component) so that
    the encoder sees spectra at the scale of its training data.
    """
    x, added = _as_components(iae, spectra)
    a0 = jnp.sum(x, -1) / jnp.mean(jnp.sum(iae.anchors, -1), axis=0)
    a0 = jnp.where(a0 > 0, a0, 1.0)
    lam = iae.weights(x / a0[..., None])
    model = iae.synthesize(lam)
    amp = _best_amplitudes(model, x)
    return _finish(iae, x, added, lam, amp, model, jnp.zeros(lam.shape[:-1], jnp.int32))


class _LMState(NamedTuple):
    free: jax.Array
    cost: jax.Array
    damping: jax.Array
    iteration: jax.Array
    done: jax.Array


def _solve_one(decoder, x, free0, *, fit_amplitude, simplex, max_iter, tol):
    """Levenberg-Marquardt on the free weights of one spectrum ``x`` (``(C, n)``)."""

    def residual(free):
        model = decoder(affine_weights(free))
        amp = _best_amplitudes(model, x) if fit_amplitude else jnp.ones(model.shape[0])
        return (amp[:, None] * model - x).ravel()

    def chart(free):
        return project_simplex(affine_weights(free))[:-1] if simplex else free

    def body(s: _LMState) -> _LMState:
        r = residual(s.free)
        jac = jax.jacfwd(residual)(s.free)
        hess = jac.T @ jac
        grad = jac.T @ r
        scale = jnp.diag(hess) + 1e-12 * jnp.trace(hess) + _TINY
        trial = chart(s.free - jnp.linalg.solve(hess + s.damping * jnp.diag(scale), grad))
        trial_cost = jnp.sum(residual(trial) ** 2)
        better = trial_cost < s.cost
        converged = better & (s.cost - trial_cost <= tol * s.cost)
        return _LMState(
            free=jnp.where(better, trial, s.free),
            cost=jnp.where(better, trial_cost, s.cost),
            damping=jnp.where(better, s.damping / 3.0, s.damping * 4.0),
            iteration=s.iteration + 1,
            done=converged | (s.damping > 1e12),
        )

    free0 = chart(free0)
    init = _LMState(free0, jnp.sum(residual(free0) ** 2), jnp.asarray(1e-3), jnp.asarray(0), jnp.asarray(False))
    final = jax.lax.while_loop(lambda s: (~s.done) & (s.iteration < max_iter), body, init)
    return final.free, final.iteration


@functools.partial(jax.jit, static_argnames=("fit_amplitude", "simplex", "max_iter"))
def project(
    iae: IAE,
    spectra: jax.Array,
    *,
    init_weights: jax.Array | None = None,
    fit_amplitude: bool = True,
    simplex: bool = False,
    max_iter: int = 100,
    tol: float = 1e-10,
) -> Projection:
    """Barycentric span projection of ``spectra`` (see the module docstring).

    Parameters
    ----------
    init_weights:
        Starting weights ``(..., d)``; fast interpolation when ``None``.
    fit_amplitude:
        Profile a least-squares amplitude per component (otherwise amplitudes are one).
    simplex:
        Keep the weights non-negative (projected steps).
    max_iter, tol:
        Per-spectrum iteration cap and relative cost-decrease stopping threshold.
    """
    x, added = _as_components(iae, spectra)
    if init_weights is None:
        init_weights = fast_interpolation(iae, x).weights
    lead = x.shape[:-2]
    flat_x = x.reshape(-1, *x.shape[-2:])
    flat_w = jnp.broadcast_to(init_weights, (*lead, iae.n_anchors)).reshape(-1, iae.n_anchors)
    solve = functools.partial(
        _solve_one, iae.decoder(), fit_amplitude=fit_amplitude, simplex=simplex, max_iter=max_iter, tol=tol
    )
    free, iterations = jax.vmap(solve)(flat_x, flat_w[:, :-1])
    lam = affine_weights(free).reshape(*lead, iae.n_anchors)
    model = iae.synthesize(lam)
    amp = _best_amplitudes(model, x) if fit_amplitude else jnp.ones(model.shape[:-1])
    return _finish(iae, x, added, lam, amp, model, iterations.reshape(lead))
