"""Approximate posteriors: NumPyro SVI autoguides, the Laplace approximation, BlackJAX pathfinder.

Every function returns an :class:`UnmixingResult` whose posterior holds ``num_draws`` draws of
the approximation (one chain), with the same schema as NUTS.

* ``guide="meanfield"``: :class:`numpyro.infer.autoguide.AutoNormal`;
* ``guide="lowrank"``: :class:`numpyro.infer.autoguide.AutoLowRankMultivariateNormal`;
* ``guide="laplace"``: :class:`numpyro.infer.autoguide.AutoLaplaceApproximation` (Gaussian at the mode
  of the unconstrained posterior, covariance from the Hessian);
* :func:`pathfinder`: BlackJAX multi-path-free pathfinder (L-BFGS path, best local Gaussian).
"""

from __future__ import annotations

from typing import Literal

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from numpyro.infer import SVI, Trace_ELBO
from numpyro.infer.autoguide import AutoLaplaceApproximation, AutoLowRankMultivariateNormal, AutoNormal
from numpyro.infer.initialization import init_to_median
from numpyro.infer.util import initialize_model
from numpyro.optim import optax_to_numpyro

from bayes_unmix.inference._util import sample_sites
from bayes_unmix.inference.convert import to_datatree
from bayes_unmix.inference.result import UnmixingResult
from bayes_unmix.models.gamma import GammaMixture, make_model

__all__ = ["GUIDES", "pathfinder", "variational"]

GUIDES = {"meanfield": AutoNormal, "lowrank": AutoLowRankMultivariateNormal, "laplace": AutoLaplaceApproximation}


def variational(
    mix: GammaMixture,
    counts: np.ndarray,
    *,
    key: jax.Array,
    guide: Literal["meanfield", "lowrank", "laplace"] = "meanfield",
    steps: int = 3000,
    learning_rate: float = 0.02,
    num_draws: int = 2000,
    num_particles: int = 4,
    energies_kev: np.ndarray | None = None,
    progress: bool = True,
) -> UnmixingResult:
    """Fit an autoguide by maximising the ELBO (Adam with cosine decay), then draw from it."""
    if guide not in GUIDES:
        raise ValueError(f"unknown guide {guide!r}; choose from {sorted(GUIDES)}")
    counts = jnp.asarray(counts, dtype=jnp.float64)
    model = make_model(mix)
    auto = GUIDES[guide](model, init_loc_fn=init_to_median(num_samples=15))
    schedule = optax.cosine_decay_schedule(learning_rate, steps, alpha=0.05)
    svi = SVI(model, auto, optax_to_numpyro(optax.adam(schedule)), Trace_ELBO(num_particles=num_particles))
    k_fit, k_draw, k_tree = jax.random.split(key, 3)
    state = svi.run(k_fit, steps, counts, progress_bar=progress)
    samples = auto.sample_posterior(k_draw, state.params, sample_shape=(num_draws,))
    draws = {k: np.asarray(v)[None] for k, v in samples.items() if k in sample_sites(mix)}
    losses = np.asarray(state.losses)
    tree = to_datatree(
        mix,
        np.asarray(counts),
        draws,
        key=k_tree,
        method=f"vi-{guide}",
        energies_kev=energies_kev,
        attrs={"steps": steps, "final_elbo": float(-np.mean(losses[-100:]))},
    )
    return UnmixingResult(tree)


def pathfinder(
    mix: GammaMixture,
    counts: np.ndarray,
    *,
    key: jax.Array,
    num_draws: int = 2000,
    energies_kev: np.ndarray | None = None,
) -> UnmixingResult:
    """BlackJAX pathfinder on the unconstrained posterior, draws mapped back to the model's space."""
    counts = jnp.asarray(counts, dtype=jnp.float64)
    k_init, k_fit, k_draw, k_tree = jax.random.split(key, 4)
    info = initialize_model(k_init, make_model(mix), model_args=(counts,), init_strategy=init_to_median(num_samples=15))
    logdensity = lambda z: -info.potential_fn(z)
    state, _ = blackjax.vi.pathfinder.approximate(k_fit, logdensity, info.param_info.z, num_samples=200)
    positions, _ = blackjax.vi.pathfinder.sample(k_draw, state, num_draws)
    constrained = jax.vmap(info.postprocess_fn)(positions)
    draws = {k: np.asarray(v)[None] for k, v in constrained.items() if k in sample_sites(mix)}
    tree = to_datatree(mix, np.asarray(counts), draws, key=k_tree, method="pathfinder", energies_kev=energies_kev)
    return UnmixingResult(tree)
