"""NUTS for gamma unmixing: NumPyro's sampler, and BlackJAX's, vectorised over many spectra.

* :func:`nuts` samples one spectrum with NumPyro (``backend="numpyro"``) or BlackJAX
  (``backend="blackjax"``; window adaptation then a ``lax.scan`` of NUTS steps) and returns an
  :class:`UnmixingResult`.
* :func:`nuts_batch` runs the BlackJAX chain for a batch of spectra in one compiled call
  (``vmap`` over spectra and chains), sharded over all JAX devices when there are several.

Both use the same log-density: NumPyro's potential of :func:`bayes_unmix.models.gamma.make_model`
built with ``dynamic_args=True``, so one compiled function serves every spectrum.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Literal

import blackjax
import jax
import jax.numpy as jnp
import numpy as np
from numpyro.infer import MCMC, NUTS
from numpyro.infer.util import initialize_model

from bayes_unmix.inference._util import sample_sites, shard
from bayes_unmix.inference.convert import to_datatree
from bayes_unmix.inference.result import UnmixingResult
from bayes_unmix.models.gamma import GammaMixture, make_model

__all__ = ["NUTSConfig", "blackjax_chain", "nuts", "nuts_batch"]


@dataclasses.dataclass(frozen=True)
class NUTSConfig:
    """Sampler settings (defaults: the published uncertainty study's 300 warm-up, 1000 draws)."""

    num_warmup: int = 300
    num_samples: int = 1000
    num_chains: int = 2
    target_accept: float = 0.85
    max_tree_depth: int = 10


def _potential(mix: GammaMixture, key: jax.Array, counts: jax.Array):
    info = initialize_model(key, make_model(mix), model_args=(counts,), dynamic_args=True)
    return info.param_info.z, info.potential_fn, info.postprocess_fn


def nuts(
    mix: GammaMixture,
    counts: np.ndarray,
    *,
    key: jax.Array,
    config: NUTSConfig = NUTSConfig(),
    backend: Literal["numpyro", "blackjax"] = "numpyro",
    energies_kev: np.ndarray | None = None,
    progress: bool = True,
    check: bool = True,
) -> UnmixingResult:
    """Sample the posterior of ``mix`` given ``counts`` (``(n_channels,)``) with NUTS.

    ``check`` runs :func:`bayes_unmix.inference.checks.convergence_report`, which warns loudly on
    R-hat, ESS or divergence problems.
    """
    counts = jnp.asarray(counts, dtype=jnp.float64)
    k_run, k_tree = jax.random.split(key)
    if backend == "numpyro":
        draws, stats = _numpyro_nuts(mix, counts, k_run, config, progress)
    elif backend == "blackjax":
        draws, stats = _blackjax_draws(mix, counts[None], k_run, config)
        draws = {k: v[0] for k, v in draws.items()}
        stats = {k: v[0] for k, v in stats.items()}
    else:
        raise ValueError(f"unknown backend {backend!r}; use 'numpyro' or 'blackjax'")
    tree = to_datatree(
        mix,
        np.asarray(counts),
        draws,
        key=k_tree,
        method=f"nuts-{backend}",
        energies_kev=energies_kev,
        sample_stats=stats,
        attrs={"num_warmup": config.num_warmup, "num_samples": config.num_samples},
    )
    result = UnmixingResult(tree)
    if check:
        result.check_convergence()
    return result


def _numpyro_nuts(mix, counts, key, config: NUTSConfig, progress: bool):
    kernel = NUTS(make_model(mix), target_accept_prob=config.target_accept, max_tree_depth=config.max_tree_depth)
    mcmc = MCMC(
        kernel,
        num_warmup=config.num_warmup,
        num_samples=config.num_samples,
        num_chains=config.num_chains,
        chain_method="vectorized",
        progress_bar=progress,
    )
    mcmc.run(key, counts, extra_fields=("diverging", "num_steps"))
    samples = mcmc.get_samples(group_by_chain=True)
    draws = {k: np.asarray(v) for k, v in samples.items() if k in sample_sites(mix)}
    extra = mcmc.get_extra_fields(group_by_chain=True)
    return draws, {"diverging": np.asarray(extra["diverging"]), "n_steps": np.asarray(extra["num_steps"])}


def blackjax_chain(logdensity, key: jax.Array, init, config) -> tuple:
    """One BlackJAX NUTS chain: window adaptation, then ``config.num_samples`` draws in a ``lax.scan``.

    ``config`` needs ``num_warmup``, ``num_samples``, ``target_accept`` and ``max_tree_depth``. Returns the
    unconstrained positions, divergence flags and integration steps per draw (pure: jit/vmap-safe).
    """
    k_warm, k_sample = jax.random.split(key)
    warmup = blackjax.window_adaptation(
        blackjax.nuts,
        logdensity,
        target_acceptance_rate=config.target_accept,
        max_num_doublings=config.max_tree_depth,
    )
    (state, params), _ = warmup.run(k_warm, init, num_steps=config.num_warmup)
    kernel = blackjax.nuts(logdensity, **params).step  # params carry max_num_doublings

    def step(state, k):
        state, info = kernel(k, state)
        return state, (state.position, info.is_divergent, info.num_integration_steps)

    _, draws = jax.lax.scan(step, state, jax.random.split(k_sample, config.num_samples))
    return draws


@functools.lru_cache(maxsize=16)
def _compiled_sampler(mix: GammaMixture, config: NUTSConfig):
    """One compiled, batched BlackJAX sampler per mixture and configuration."""
    z0, potential_fn, postprocess_fn = _potential(mix, jax.random.key(0), jnp.ones(mix.n_channels))

    def one_chain(spectrum, chain_key, init):
        logdensity = lambda z: -potential_fn(spectrum)(z)
        positions, divergent, steps = blackjax_chain(logdensity, chain_key, init, config)
        return jax.vmap(postprocess_fn(spectrum))(positions), divergent, steps

    def one_spectrum(spectrum, spectrum_key):
        keys = jax.random.split(spectrum_key, config.num_chains)
        inits = _dispersed_inits(z0, spectrum_key, config.num_chains)
        return jax.vmap(one_chain, in_axes=(None, 0, 0))(spectrum, keys, inits)

    return jax.jit(jax.vmap(one_spectrum))


def _blackjax_draws(mix: GammaMixture, counts: jax.Array, key: jax.Array, config: NUTSConfig):
    """BlackJAX NUTS over a batch of spectra ``(B, n)``: draws ``{site: (B, chain, draw, ...)}``."""
    keys = jax.random.split(key, counts.shape[0])
    constrained, divergent, steps = _compiled_sampler(mix, config)(*shard(counts, keys))
    sites = sample_sites(mix)
    draws = {k: np.asarray(v) for k, v in constrained.items() if k in sites}
    return draws, {"diverging": np.asarray(divergent), "n_steps": np.asarray(steps)}


def _dispersed_inits(z0: dict, key: jax.Array, n: int) -> dict:
    """``n`` starting points: the model's initial point jittered in unconstrained space."""
    leaves, treedef = jax.tree_util.tree_flatten(z0)
    keys = jax.random.split(key, len(leaves))
    jittered = [leaf + 0.5 * jax.random.normal(k, (n, *jnp.shape(leaf))) for leaf, k in zip(leaves, keys)]
    return jax.tree_util.tree_unflatten(treedef, jittered)


def nuts_batch(
    mix: GammaMixture, counts: np.ndarray, *, key: jax.Array, config: NUTSConfig = NUTSConfig()
) -> dict[str, np.ndarray]:
    """BlackJAX NUTS for many spectra ``(B, n)`` in one compiled call, sharded over devices.

    Returns draws of the sample sites ``{site: (B, chain, draw, ...)}`` plus ``diverging``; build a
    full result for any spectrum with :func:`bayes_unmix.inference.convert.to_datatree`.
    """
    counts = jnp.asarray(counts, dtype=jnp.float64)
    if counts.ndim != 2 or counts.shape[1] != mix.n_channels:
        raise ValueError(f"counts must have shape (batch, {mix.n_channels}), got {counts.shape}")
    draws, stats = _blackjax_draws(mix, counts, key, config)
    return {**draws, **stats}
