"""Marginal likelihoods (evidence) and Bayes factors by adaptive tempered SMC (BlackJAX).

``log Z = log \\int p(y | theta) p(theta) d theta`` is estimated by BlackJAX's adaptive tempered SMC on
the model's unconstrained space: particles start from the prior, the likelihood is switched on
through temperatures chosen so the effective sample size stays at ``target_ess``, and HMC moves
(mass matrix from the particles at each step) rejuvenate them; ``log Z`` is the sum of the
log-likelihood increments. ``num_runs`` independent runs (vmapped) give the Monte-Carlo error.

The priors must be proper: the mixture's flat count prior ``U(0, count_max * total)`` is, and the
Bayes factor of adding a nuclide depends on that width (the Occam factor), as every Bayes factor does.
"""

from __future__ import annotations

import dataclasses
import functools

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
from blackjax.smc import extend_params, resampling
from jax.flatten_util import ravel_pytree
from numpyro.infer import Predictive
from numpyro.infer.util import constrain_fn, log_likelihood, potential_energy, unconstrain_fn

from bayes_unmix.inference._util import sample_sites
from bayes_unmix.models.gamma import GammaMixture, make_model

__all__ = ["Evidence", "SMCConfig", "bayes_factor", "log_evidence"]


@dataclasses.dataclass(frozen=True)
class SMCConfig:
    """Tempered-SMC settings: particles, runs (for the MC error), HMC moves per temperature."""

    num_particles: int = 1000
    num_runs: int = 4
    target_ess: float = 0.5
    num_mcmc_steps: int = 8
    num_integration_steps: int = 8
    step_size: float = 0.4
    max_temperatures: int = 400


@dataclasses.dataclass(frozen=True)
class Evidence:
    """``log Z`` estimate (mean over runs), its Monte-Carlo standard error and the per-run values."""

    log_z: float
    mc_error: float
    runs: np.ndarray
    num_temperatures: int

    def __str__(self) -> str:
        return f"log Z = {self.log_z:.2f} +/- {self.mc_error:.2f} ({len(self.runs)} runs)"


def _densities(mix: GammaMixture, counts: jax.Array):
    """Log-prior (with the Jacobian of the unconstraining map) and log-likelihood of flat ``z``."""
    model = make_model(mix)
    prior = Predictive(model, num_samples=1, return_sites=list(sample_sites(mix)))(jax.random.key(0), counts)
    z0 = unconstrain_fn(model, (counts,), {}, {k: v[0] for k, v in prior.items()})
    _, unravel = ravel_pytree(z0)

    def loglik(flat):
        params = constrain_fn(model, (counts,), {}, unravel(flat))
        return jnp.sum(log_likelihood(model, params, counts, batch_ndims=0)["obs"])

    def logprior(flat):
        return -potential_energy(model, (counts,), {}, unravel(flat)) - loglik(flat)

    return logprior, loglik, unravel


def _prior_particles(mix: GammaMixture, counts: jax.Array, key: jax.Array, n: int) -> jax.Array:
    model = make_model(mix)
    draws = Predictive(model, num_samples=n, return_sites=list(sample_sites(mix)))(key, counts)
    z = jax.vmap(lambda d: ravel_pytree(unconstrain_fn(model, (counts,), {}, d))[0])(draws)
    return z


def _particle_variance(particles: jax.Array) -> jax.Array:
    """Diagonal inverse mass matrix ``(d,)`` from the particles' spread (floored to stay positive)."""
    return jnp.var(particles, axis=0) + 1e-10


@functools.lru_cache(maxsize=16)
def _compiled_run(mix: GammaMixture, config: SMCConfig):
    def run(counts, key):
        logprior, loglik, _ = _densities(mix, counts)
        k_init, k_loop = jax.random.split(key)
        particles = _prior_particles(mix, counts, k_init, config.num_particles)

        def parameters(state):
            return extend_params(
                {
                    "step_size": config.step_size,
                    "inverse_mass_matrix": _particle_variance(state.particles),
                    "num_integration_steps": config.num_integration_steps,
                }
            )

        smc = blackjax.inner_kernel_tuning(
            smc_algorithm=blackjax.adaptive_tempered_smc,
            logprior_fn=logprior,
            loglikelihood_fn=loglik,
            mcmc_step_fn=blackjax.hmc.build_kernel(),
            mcmc_init_fn=blackjax.hmc.init,
            resampling_fn=resampling.systematic,
            mcmc_parameter_update_fn=lambda key, state, info: parameters(state),
            initial_parameter_value=extend_params(
                {
                    "step_size": config.step_size,
                    "inverse_mass_matrix": _particle_variance(particles),
                    "num_integration_steps": config.num_integration_steps,
                }
            ),
            num_mcmc_steps=config.num_mcmc_steps,
            target_ess=config.target_ess,
        )
        state = smc.init(particles)

        def cond(carry):
            state, _, n, _ = carry
            return (state.sampler_state.tempering_param < 1.0) & (n < config.max_temperatures)

        def body(carry):
            state, log_z, n, key = carry
            key, sub = jax.random.split(key)
            state, info = smc.step(sub, state)
            return state, log_z + info.log_likelihood_increment, n + 1, key

        state, log_z, n, _ = jax.lax.while_loop(cond, body, (state, jnp.zeros(()), 0, k_loop))
        finished = state.sampler_state.tempering_param >= 1.0
        return jnp.where(finished, log_z, jnp.nan), n

    return jax.jit(jax.vmap(run, in_axes=(None, 0)))


def log_evidence(mix: GammaMixture, counts: np.ndarray, *, key: jax.Array, config: SMCConfig = SMCConfig()) -> Evidence:
    """Evidence of ``mix`` for one spectrum ``(n,)`` by ``config.num_runs`` independent SMC runs."""
    counts = jnp.asarray(counts, dtype=jnp.float64)
    if counts.shape != (mix.n_channels,):
        raise ValueError(f"counts must have shape ({mix.n_channels},), got {counts.shape}")
    runs, steps = _compiled_run(mix, config)(counts, jax.random.split(key, config.num_runs))
    runs = np.asarray(runs)
    if not np.all(np.isfinite(runs)):
        raise RuntimeError(
            f"SMC did not reach temperature 1 within {config.max_temperatures} steps; raise max_temperatures"
        )
    error = float(runs.std(ddof=1) / np.sqrt(len(runs))) if len(runs) > 1 else float("nan")
    return Evidence(float(runs.mean()), error, runs, int(np.max(steps)))


def bayes_factor(a: Evidence, b: Evidence) -> tuple[float, float]:
    """``log B_ab = log Z_a - log Z_b`` and its Monte-Carlo standard error."""
    return a.log_z - b.log_z, float(np.hypot(a.mc_error, b.mc_error))
