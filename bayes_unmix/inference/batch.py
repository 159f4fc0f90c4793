"""Approximate posteriors for many spectra at once: batched VI and Laplace, one compiled call each.

Both work on NumPyro's unconstrained space of :func:`bayes_unmix.models.gamma.make_model`, through
its potential built with ``dynamic_args=True`` (one compiled log-density for every spectrum, so the
data-dependent supports of the count priors are right for each spectrum), and start from the
batched MAP of :func:`bayes_unmix.inference.map.map_batch`.

* :func:`variational_batch`: the families of NumPyro's ``AutoNormal`` (``guide="meanfield"``) and
  ``AutoLowRankMultivariateNormal`` (``guide="lowrank"``), fitted by Adam (cosine decay) on the
  reparameterised ELBO in coordinates scaled by the Laplace marginal sds, ``vmap``-ped over spectra. (NumPyro's autoguides fix the supports and the
  Laplace Hessian's data at their first call, so they cannot be ``vmap``-ped over spectra.)
* :func:`laplace_batch`: ``space="unconstrained"``: a Gaussian at the mode of the unconstrained
  posterior (the potential, Jacobian included: NumPyro's ``AutoLaplaceApproximation``) with the
  inverse Hessian of the potential as covariance; ``space="constrained"``: the published study's
  Laplace, a Gaussian at the MAP in the model's own coordinates (counts, ``u``) with the inverse
  Hessian of ``-log p(theta | y)``, which ignores the positivity and box constraints.
* :func:`derived`: counts per component, the physical parameter and activities from draws of the
  sample sites (any leading dimensions), as the model's deterministic sites define them.
"""

from __future__ import annotations

import functools
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.flatten_util import ravel_pytree
from numpyro.infer.util import initialize_model, log_density, unconstrain_fn

from bayes_unmix.inference._util import sample_sites, shard
from bayes_unmix.inference.map import MAPConfig, damped_newton, map_batch
from bayes_unmix.models.gamma import GammaMixture, make_model

__all__ = ["derived", "laplace_batch", "variational_batch"]

Guide = Literal["meanfield", "lowrank"]


def _check_counts(mix: GammaMixture, counts: np.ndarray) -> jax.Array:
    counts = jnp.asarray(counts, dtype=jnp.float64)
    if counts.ndim != 2 or counts.shape[1] != mix.n_channels:
        raise ValueError(f"counts must have shape (batch, {mix.n_channels}), got {counts.shape}")
    return counts


def _structure(mix: GammaMixture):
    """Potential ``potential_fn(counts)(z)``, ``postprocess_fn(counts)(z)`` and the unravel function."""
    info = initialize_model(
        jax.random.key(0), make_model(mix), model_args=(jnp.ones(mix.n_channels),), dynamic_args=True
    )
    _, unravel = ravel_pytree(info.param_info.z)
    return info.potential_fn, info.postprocess_fn, unravel


def _unconstrained_map(mix: GammaMixture, counts: jax.Array, map_point: dict) -> jax.Array:
    """Flat unconstrained image ``(D,)`` of a (constrained) MAP point of one spectrum."""
    z = unconstrain_fn(make_model(mix), (counts,), {}, map_point)
    return ravel_pytree(z)[0]


def _constrain(mix: GammaMixture, postprocess_fn, unravel, counts: jax.Array, flat: jax.Array) -> dict:
    sites = sample_sites(mix)
    out = jax.vmap(lambda f: postprocess_fn(counts)(unravel(f)))(flat)
    return {k: v for k, v in out.items() if k in sites}


@functools.lru_cache(maxsize=16)
def _compiled_vi(mix: GammaMixture, guide: str, steps: int, lr: float, particles: int, draws: int, rank: int):
    potential_fn, postprocess_fn, unravel = _structure(mix)

    def fit(counts, z0, key):
        dim = z0.shape[0]
        potential = lambda z: potential_fn(counts)(unravel(z))
        # diagonal preconditioning z = z0 + d * w, d the Laplace marginal sds at the start: keeps the
        # family (diagonal or low-rank plus diagonal) and lets Adam's fixed step sizes resolve posteriors
        # that are narrow in z (high counts), which they cannot in raw coordinates
        values, vectors = jnp.linalg.eigh(jax.hessian(potential)(z0))
        d = jnp.sqrt(jnp.einsum("ij,j,ij->i", vectors, 1 / jnp.maximum(values, 1e-12 * jnp.max(values)), vectors))
        params = {"loc": jnp.zeros(dim), "rho": jnp.full(dim, jnp.log(jnp.expm1(0.5)))}
        if guide == "lowrank":
            params["factor"] = jnp.zeros((dim, rank))

        def sample(p, eps):
            w = p["loc"] + jax.nn.softplus(p["rho"]) * eps[..., :dim]
            w = w + eps[..., dim:] @ p["factor"].T if guide == "lowrank" else w
            return z0 + d * w

        def entropy(p):  # of w, up to a constant (that of z adds sum(log d))
            scale = jax.nn.softplus(p["rho"])
            if guide == "meanfield":
                return jnp.sum(jnp.log(scale))
            return 0.5 * jnp.linalg.slogdet(p["factor"] @ p["factor"].T + jnp.diag(scale**2))[1]

        width = dim + (rank if guide == "lowrank" else 0)

        def loss(p, k):
            eps = jax.random.normal(k, (particles, width))
            return jnp.mean(jax.vmap(potential)(sample(p, eps))) - entropy(p)

        optimizer = optax.adam(optax.cosine_decay_schedule(lr, steps, alpha=0.05))

        def step(carry, k):
            p, state = carry
            value, grad = jax.value_and_grad(loss)(p, k)
            updates, state = optimizer.update(grad, state, p)
            return (optax.apply_updates(p, updates), state), value

        k_fit, k_draw = jax.random.split(key)
        (params, _), losses = jax.lax.scan(step, (params, optimizer.init(params)), jax.random.split(k_fit, steps))
        flat = sample(params, jax.random.normal(k_draw, (draws, width)))
        elbo = -jnp.mean(losses[-max(steps // 10, 1) :]) + jnp.sum(jnp.log(d))
        return _constrain(mix, postprocess_fn, unravel, counts, flat), elbo

    return jax.jit(jax.vmap(fit))


def variational_batch(
    mix: GammaMixture,
    counts: np.ndarray,
    *,
    key: jax.Array,
    guide: Guide = "meanfield",
    steps: int = 1000,
    learning_rate: float = 0.02,
    num_particles: int = 2,
    num_draws: int = 1000,
    rank: int | None = None,
    newton_iterations: int = 20,
    map_config: MAPConfig | None = None,
) -> dict[str, np.ndarray]:
    """Fit a Gaussian variational posterior in unconstrained space to each of many spectra.

    Parameters
    ----------
    mix:
        The mixture (its model is :func:`bayes_unmix.models.gamma.make_model`).
    counts:
        Spectra ``(B, n_channels)``, counts per channel.
    key:
        PRNG key (split per spectrum).
    guide:
        ``"meanfield"`` (diagonal Gaussian, as NumPyro's ``AutoNormal``) or ``"lowrank"`` (diagonal
        plus rank-``rank`` factor, as ``AutoLowRankMultivariateNormal``).
    steps, learning_rate, num_particles:
        Adam steps (cosine-decayed rate) and Monte-Carlo draws per ELBO gradient.
    num_draws:
        Draws returned per spectrum.
    rank:
        Rank of the low-rank factor; default ``(D + 1) // 2`` for ``D`` unconstrained dimensions.
    newton_iterations, map_config:
        The initial mean is the mode of the unconstrained posterior, found by ``newton_iterations``
        damped Newton steps from the MAP (``map_config``).

    Returns
    -------
    dict
        ``{site: (B, num_draws, ...)}`` for the sample sites (constrained) and ``elbo`` ``(B,)`` (mean
        over the last 10 % of steps, up to a constant).
    """
    if guide not in ("meanfield", "lowrank"):
        raise ValueError(f"unknown guide {guide!r}; use 'meanfield' or 'lowrank' (laplace: laplace_batch)")
    counts = _check_counts(mix, counts)
    z0 = _mode_start(mix, counts, map_config, newton_iterations)
    rank = int(rank or (z0.shape[1] + 1) // 2)
    fit = _compiled_vi(mix, guide, int(steps), float(learning_rate), int(num_particles), int(num_draws), rank)
    keys = jax.random.split(key, counts.shape[0])
    draws, elbo = fit(*shard(counts, z0, keys))
    return {**{k: np.asarray(v) for k, v in draws.items()}, "elbo": np.asarray(elbo)}


def _mode_start(mix: GammaMixture, counts: jax.Array, map_config: MAPConfig, iterations: int) -> jax.Array:
    """Modes ``(B, D)`` of the unconstrained posterior (the potential), by damped Newton from the MAP.

    Starting VI there rather than at the MAP matters when a count's MAP is on its bound: the MAP's
    unconstrained image is then far out in a tail where the ELBO's gradient is tiny.
    """
    point = {
        k: jnp.asarray(v)
        for k, v in map_batch(mix, counts, config=map_config or MAPConfig()).items()
        if k in sample_sites(mix)
    }
    return _compiled_mode(mix, iterations)(*shard(counts, point))


@functools.lru_cache(maxsize=16)
def _compiled_mode(mix: GammaMixture, iterations: int):
    potential_fn, _, unravel = _structure(mix)

    def mode(counts, map_point):
        potential = lambda z: potential_fn(counts)(unravel(z))
        # the MAP's damped Newton (exact Hessians), reused on the potential
        return damped_newton(potential, _unconstrained_map(mix, counts, map_point), iterations)[0]

    return jax.jit(jax.vmap(mode))


@functools.lru_cache(maxsize=16)
def _compiled_laplace(mix: GammaMixture, space: str, draws: int):
    potential_fn, postprocess_fn, unravel = _structure(mix)
    model = make_model(mix)

    def gaussian_draws(hessian, centre, key):
        """Draws of N(centre, H^-1); eigenvalues clipped so a near-singular H still gives draws."""
        values, vectors = jnp.linalg.eigh(0.5 * (hessian + hessian.T))
        clipped = jnp.maximum(values, 1e-12 * jnp.max(jnp.abs(values)))
        eps = jax.random.normal(key, (draws, centre.shape[0]))
        return centre + (eps / jnp.sqrt(clipped)) @ vectors.T, jnp.min(values) > 0

    def fit(counts, centre, key):
        if space == "unconstrained":
            potential = lambda z: potential_fn(counts)(unravel(z))
            flat, positive = gaussian_draws(jax.hessian(potential)(centre), centre, key)
            return _constrain(mix, postprocess_fn, unravel, counts, flat), positive
        theta, unravel_theta = ravel_pytree(centre)
        objective = lambda t: -log_density(model, (counts,), {}, unravel_theta(t))[0]
        flat, positive = gaussian_draws(jax.hessian(objective)(theta), theta, key)
        return jax.vmap(unravel_theta)(flat), positive

    return jax.jit(jax.vmap(fit))


def laplace_batch(
    mix: GammaMixture,
    counts: np.ndarray,
    *,
    key: jax.Array,
    space: Literal["unconstrained", "constrained"] = "unconstrained",
    num_draws: int = 1000,
    newton_iterations: int = 20,
    map_config: MAPConfig | None = None,
) -> dict[str, np.ndarray]:
    """Laplace approximations of the posteriors of many spectra, one compiled call.

    Parameters
    ----------
    mix:
        The mixture.
    counts:
        Spectra ``(B, n_channels)``.
    key:
        PRNG key (split per spectrum).
    space:
        ``"unconstrained"``: Gaussian in NumPyro's unconstrained space at the mode of the potential
        ``-log p(y, theta(z)) - log|d theta / d z|`` (found by damped Newton from the MAP), covariance
        the inverse Hessian of the potential; draws respect every constraint.
        ``"constrained"``: Gaussian in the model's coordinates at the MAP, covariance the inverse
        Hessian of ``-log p(y, theta)`` (the published study's Laplace); draws may leave the support
        (negative counts, ``u`` outside its box).
    num_draws:
        Draws per spectrum.
    newton_iterations:
        Damped Newton iterations from the MAP to the unconstrained mode.
    map_config:
        Settings of the batched MAP.

    Returns
    -------
    dict
        ``{site: (B, num_draws, ...)}`` for the sample sites and ``hessian_positive`` ``(B,)``
        (False where the Hessian was not positive definite and eigenvalues were clipped).
    """
    if space not in ("unconstrained", "constrained"):
        raise ValueError(f"unknown space {space!r}; use 'unconstrained' or 'constrained'")
    counts = _check_counts(mix, counts)
    if space == "unconstrained":
        centre = _mode_start(mix, counts, map_config, int(newton_iterations))
    else:
        centre = {
            k: jnp.asarray(v)
            for k, v in map_batch(mix, counts, config=map_config or MAPConfig()).items()
            if k in sample_sites(mix)
        }
    keys = jax.random.split(key, counts.shape[0])
    draws, positive = _compiled_laplace(mix, space, int(num_draws))(*shard(counts, centre, keys))
    return {**{k: np.asarray(v) for k, v in draws.items()}, "hessian_positive": np.asarray(positive)}


def derived(mix: GammaMixture, draws: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model's reported quantities from draws of its sample sites (any leading dimensions).

    Parameters
    ----------
    mix:
        The mixture the draws belong to.
    draws:
        ``count_nuclides`` ``(..., S)``, ``count_background`` ``(..., 1)`` (with a background), and
        ``u`` ``(..., n_latents)`` or ``weights`` ``(..., n_latents, d)`` (unknown shielding).

    Returns
    -------
    dict
        ``counts`` ``(..., components)``; with a spectral model the parameter (e.g. ``thickness_mm``)
        ``(..., n_latents)``; with efficiencies and a live time ``activity_bq`` ``(..., S)``, as
        ``a_i / (eta_i(parameter) * live_time)``.
    """
    nuclide_counts = np.asarray(draws["count_nuclides"], dtype=np.float64)
    parts = ([np.asarray(draws["count_background"], dtype=np.float64)] if mix.background is not None else []) + [
        nuclide_counts
    ]
    out = {"counts": np.concatenate(parts, axis=-1)}
    sm = mix.spectral_model
    if sm is None:
        return out
    if mix.known_weights is not None:
        weights = np.broadcast_to(mix.known_weights, (*nuclide_counts.shape[:-1], *np.shape(mix.known_weights)))
    elif "u" in draws:
        u = np.asarray(draws["u"], dtype=np.float64)
        weights = np.stack([1.0 - u, u], axis=-1)
    else:
        weights = np.asarray(draws["weights"], dtype=np.float64)
    names = ["joint"] if sm.joint else list(sm.nuclides)
    parameter = np.stack([np.asarray(sm.parameter_maps[n](weights[..., i, :])) for i, n in enumerate(names)], -1)
    out[sm.parameter_name] = parameter
    if mix.activities_defined():
        per_nuclide = np.broadcast_to(parameter, nuclide_counts.shape) if sm.joint else parameter
        eta = np.stack([np.asarray(sm.efficiencies[n](per_nuclide[..., i])) for i, n in enumerate(sm.nuclides)], -1)
        out["activity_bq"] = nuclide_counts / (eta * mix.live_time_s)
    return out
