"""The only place that builds an ArviZ DataTree from inference output.

Every method (MAP, Laplace, VI, NUTS) hands over draws of the model's *sample* sites, shaped
``(chain, draw, ...)`` and in constrained space; this module replays the model on them to obtain the
deterministic sites (counts, parameter, activity, rate), the per-channel log-likelihood and
posterior-predictive draws, and returns one schema for all methods:

* ``posterior``: ``counts`` (component), ``u`` or ``weights`` (latent[, anchor]), the physical
  parameter (latent), ``activity_bq`` (nuclide);
* ``posterior_predictive``: ``obs`` (channel); ``log_likelihood``: ``obs`` (channel);
* ``observed_data``: ``obs``; ``constant_data``: ``energy_kev`` and the posterior-mean
  ``contribution`` of each component (component, channel), for plots;
* ``sample_stats``: whatever the method reports (diverging, tree depth, ...);
* attrs: method, seed, package and library versions, decoder checksum.
"""

from __future__ import annotations

import hashlib
from typing import Any

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import xarray as xr
from jax.scipy.special import gammaln
from numpyro.infer import Predictive

import bayes_unmix
from bayes_unmix.models.gamma import GammaMixture, make_model

__all__ = ["decoder_checksum", "to_datatree"]

_REPORTED = ("counts", "u", "weights", "activity_bq")


def decoder_checksum(mix: GammaMixture) -> str:
    """SHA-256 prefix of the arrays defining the signatures (IAE parameters or fixed signatures)."""
    digest = hashlib.sha256()
    if mix.spectral_model is not None:
        for iae in mix.spectral_model.iaes.values():
            for leaf in jax.tree_util.tree_leaves(iae):
                digest.update(np.asarray(leaf).tobytes())
    else:
        digest.update(np.asarray(mix.signatures).tobytes())
    return digest.hexdigest()[:16]


def _replay(mix: GammaMixture, counts: np.ndarray, draws: dict[str, np.ndarray], key: jax.Array) -> dict:
    flat = {k: jnp.asarray(v).reshape(-1, *np.shape(v)[2:]) for k, v in draws.items()}
    sites = ["counts", "rate", "activity_bq", *(s for s in ("u", "weights") if s in draws)]
    if mix.spectral_model is not None:
        sites.append(mix.spectral_model.parameter_name)
    predictive = Predictive(make_model(mix), posterior_samples=flat, return_sites=sites)
    out = predictive(key, jnp.asarray(counts))
    return {k: np.asarray(v) for k, v in out.items()}


def to_datatree(
    mix: GammaMixture,
    counts: np.ndarray,
    draws: dict[str, np.ndarray],
    *,
    key: jax.Array,
    method: str,
    energies_kev: np.ndarray | None = None,
    sample_stats: dict[str, np.ndarray] | None = None,
    attrs: dict[str, Any] | None = None,
) -> xr.DataTree:
    """DataTree of a posterior (or point estimate: one chain, one draw) of ``mix`` given ``counts``."""
    shape = next(iter(draws.values())).shape[:2]
    k_replay, k_ppc = jax.random.split(key)
    replayed = {k: v.reshape(*shape, *v.shape[1:]) for k, v in _replay(mix, counts, draws, k_replay).items()}
    rate = replayed.pop("rate")
    parameter = mix.spectral_model.parameter_name if mix.spectral_model is not None else None
    posterior = {k: v for k, v in replayed.items() if k in _REPORTED or k == parameter}

    obs = np.asarray(counts)
    log_lik = obs * np.log(rate) - rate - np.asarray(gammaln(obs + 1.0))
    ppc = np.asarray(jax.random.poisson(k_ppc, jnp.asarray(rate)), dtype=np.int64)
    mean_counts = posterior["counts"].reshape(-1, len(mix.components)).mean(0)
    contributions = mean_counts[:, None] * _templates(mix, replayed)

    dims = {
        "counts": ["component"],
        "u": ["latent"],
        "weights": ["latent", "anchor"],
        "activity_bq": ["nuclide"],
        "obs": ["channel"],
        "contribution": ["component", "channel"],
        "energy_kev": ["channel"],
    }
    if parameter:
        dims[parameter] = ["latent"]
    coords = {"component": list(mix.components), "nuclide": list(mix.nuclides), "latent": list(mix.latent_names)}
    constant = {"contribution": contributions}
    if energies_kev is not None:
        constant["energy_kev"] = np.asarray(energies_kev)
    groups = {
        "posterior": posterior,
        "posterior_predictive": {"obs": ppc},
        "log_likelihood": {"obs": log_lik},
        "observed_data": {"obs": obs},
        "constant_data": constant,
    }
    if sample_stats:
        groups["sample_stats"] = sample_stats
    record = {
        "method": method,
        "bayes_unmix_version": bayes_unmix.__version__,
        "jax_version": jax.__version__,
        "numpyro_version": numpyro.__version__,
        "decoder_sha256": decoder_checksum(mix),
        "parameter_name": parameter or "",
        "live_time_s": mix.live_time_s or 0.0,
        "count_prior": mix.count_prior,
        **(attrs or {}),
    }
    tree = az.from_dict(groups, dims=dims, coords=coords)
    tree.attrs.update(record)
    return tree


def _templates(mix: GammaMixture, replayed: dict) -> np.ndarray:
    """Posterior-mean unit-sum templates (component, channel), background first."""
    weights = None if mix.spectral_model is None else jnp.asarray(_mean_weights(mix, replayed))
    return np.asarray(mix.templates(mix.signatures_for(weights)))


def _mean_weights(mix: GammaMixture, replayed: dict) -> np.ndarray:
    if mix.known_weights is not None:
        return np.asarray(mix.known_weights)
    if "u" in replayed:
        u = replayed["u"].reshape(-1, mix.spectral_model.n_latents).mean(0)
        return np.stack([1 - u, u], -1)
    return replayed["weights"].reshape(-1, *replayed["weights"].shape[2:]).mean(0)
