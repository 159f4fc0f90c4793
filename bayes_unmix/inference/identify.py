"""Which candidate nuclides are present? Likelihood-ratio decisions, inclusion probabilities, ISO 11929 limits.

For every candidate ``i`` of a mixture, two MAP fits (batched over spectra, compiled once each):
the full mixture and the mixture with ``a_i = 0`` (:attr:`GammaMixture.absent`). With flat count
priors these are Poisson maximum-likelihood fits, so

* **decision**: the deviance ``D_i = 2 [log L(full) - log L(a_i = 0)]`` is, under "absent", asymptotically
  ``0.5 chi2_0 + 0.5 chi2_1`` (the estimate sits on the boundary ``a_i >= 0`` half of the time), so
  ``D_i > chi2_1.isf(2 alpha)`` declares the nuclide present with false-positive probability ``alpha``
  per absent nuclide (``familywise=True``: ``alpha / S``, a Bonferroni bound per spectrum). This is the
  P-OMP/MoSeVa test of the published identification work, without the greedy search.
* **probability_present**: ``pi B / (pi B + 1 - pi)`` with the Laplace approximation of the Bayes
  factor of "with ``a_i``" against "``a_i = 0``", the other parameters at their conditional modes:
  ``B = exp(D_i / 2) * sqrt(2 pi) u_i Phi(a_i / u_i) / (count_max * total)`` for the flat prior
  ``a_i ~ U(0, count_max * total)``. Cheap enough for thousands of spectra;
  :func:`bayes_unmix.inference.evidence.log_evidence` gives SMC evidences to check it.
* **ISO 11929 characteristic limits** (counts, or Bq when activities are defined), from the standard
  uncertainty function ``u(a)`` = the Poisson Fisher information of all free parameters (counts and the
  shield) at the fitted rates with ``a_i`` set to ``a``: decision threshold ``a* = k_{1-alpha} u(0)``,
  detection limit ``a# = a* + k_{1-beta} u(a#)`` (fixed point), and the upper end of the ``1 - gamma``
  coverage interval ``a + k_q u(a)``, ``q = 1 - omega gamma / 2``, ``omega = Phi(a / u(a))``.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from numpyro.infer.util import log_likelihood
from scipy import stats

from bayes_unmix.inference.map import MAPConfig, map_batch
from bayes_unmix.models.gamma import GammaMixture, make_model

__all__ = ["IDENTIFICATION_COLUMNS", "Identification", "IdentificationConfig", "identify"]

IDENTIFICATION_COLUMNS = ("nuclide", "probability_present", "decision", "estimate", "upper_limit")


@dataclasses.dataclass(frozen=True)
class IdentificationConfig:
    """Error rates of the decision rule and the limits.

    ``alpha``: probability of declaring an absent nuclide present (per nuclide, or per spectrum with
    ``familywise``); ``beta``: probability of missing a nuclide at the detection limit; ``gamma``:
    ``1 -`` coverage of the interval whose upper end is reported; ``prior_inclusion``: prior probability
    that a candidate is present.
    """

    alpha: float = 0.01
    beta: float = 0.05
    gamma: float = 0.05
    familywise: bool = False
    prior_inclusion: float = 0.5
    map: MAPConfig = dataclasses.field(default_factory=MAPConfig)

    def __post_init__(self) -> None:
        for name in ("alpha", "beta", "gamma", "prior_inclusion"):
            if not 0.0 < getattr(self, name) < 1.0:
                raise ValueError(f"{name} must lie strictly between 0 and 1, got {getattr(self, name)}")


@dataclasses.dataclass(frozen=True)
class Identification:
    """Identification of ``S`` candidates in ``B`` spectra (arrays ``(B, S)``; limits in ``unit``)."""

    nuclides: tuple[str, ...]
    unit: str
    critical_deviance: float
    deviance: np.ndarray
    present: np.ndarray
    probability_present: np.ndarray
    estimate: np.ndarray
    standard_uncertainty: np.ndarray
    upper_limit: np.ndarray
    decision_threshold: np.ndarray
    detection_limit: np.ndarray
    counts: np.ndarray
    parameter: np.ndarray

    def table(self, spectrum: int = 0) -> pd.DataFrame:
        """One spectrum's result with the ``identification.csv`` columns (then the limits and the deviance)."""
        return pd.DataFrame(
            {
                "nuclide": list(self.nuclides),
                "probability_present": self.probability_present[spectrum],
                "decision": np.where(self.present[spectrum], "present", "absent"),
                "estimate": self.estimate[spectrum],
                "upper_limit": self.upper_limit[spectrum],
                "decision_threshold": self.decision_threshold[spectrum],
                "detection_limit": self.detection_limit[spectrum],
                "standard_uncertainty": self.standard_uncertainty[spectrum],
                "deviance": self.deviance[spectrum],
                "unit": self.unit,
            }
        )


@functools.lru_cache(maxsize=16)
def _hypotheses(mix: GammaMixture) -> tuple[GammaMixture, tuple[GammaMixture, ...]]:
    """The full mixture and one with each nuclide absent; cached so compiled solvers are reused."""
    full = dataclasses.replace(mix, absent=())
    return full, tuple(dataclasses.replace(full, absent=(name,)) for name in full.nuclides)


def _log_likelihood(mix: GammaMixture, params: dict[str, np.ndarray], counts: jax.Array) -> jax.Array:
    """Poisson log-likelihood ``(B,)`` of each spectrum at its own parameters."""
    sites = {k: v for k, v in params.items() if k != "neg_log_posterior"}
    return _compiled_log_likelihood(mix)(sites, counts)


@functools.lru_cache(maxsize=16)
def _compiled_log_likelihood(mix: GammaMixture):
    model = make_model(mix)

    def one(p, y):
        return jnp.sum(log_likelihood(model, p, y, batch_ndims=0)["obs"])

    return jax.jit(jax.vmap(one))


def _free_parameters(mix: GammaMixture, params: dict[str, np.ndarray]) -> tuple[jax.Array, jax.Array]:
    """Fitted counts of every component ``(B, C)`` and latent coordinates ``(B, m)`` (``m = 0`` if none)."""
    n_batch = len(params["count_nuclides"])
    nuclides = np.zeros((n_batch, len(mix.nuclides)))
    nuclides[:, mix.present] = params["count_nuclides"]
    parts = [params["count_background"]] if mix.background is not None else []
    counts = np.concatenate([*parts, nuclides], axis=1)
    latent = params.get("u", np.zeros((n_batch, 0)))
    return jnp.asarray(counts), jnp.asarray(latent)


@functools.lru_cache(maxsize=16)
def _fisher_sd(mix: GammaMixture):
    """``u(a_i)``: standard uncertainty of component ``i``'s counts when it equals ``value`` (vectorised)."""

    def rate(counts, latent):
        weights = mix.known_weights if latent.size == 0 else jnp.stack([1.0 - latent, latent], -1)
        return jnp.maximum(counts @ mix.templates(mix.signatures_for(weights)), 1e-9)

    def sd(counts, latent, i, value):
        counts = counts.at[i].set(value)
        jac = jnp.concatenate(jax.jacfwd(rate, argnums=(0, 1))(counts, latent), axis=1)  # (n, C + m)
        r = rate(counts, latent)
        fisher = (jac / r[:, None]).T @ jac
        fisher = fisher + 1e-9 * jnp.trace(fisher) * jnp.eye(len(fisher))
        return jnp.sqrt(jnp.linalg.inv(fisher)[i, i])

    return jax.jit(jax.vmap(jax.vmap(sd, in_axes=(None, None, 0, 0)), in_axes=(0, 0, None, 0)))


def _detection_limit(sd_fn, counts, latent, idx, threshold, k_beta, iterations: int = 30):
    limit = 2.0 * threshold + 1.0
    for _ in range(iterations):  # a# = a* + k u(a#): a contraction for Poisson-type u(a) ~ sqrt(a)
        limit = threshold + k_beta * sd_fn(counts, latent, idx, limit)
    return limit


def _deviances(full: GammaMixture, nulls, fit: dict, counts: np.ndarray, map_config: MAPConfig) -> np.ndarray:
    """``2 [log L(full) - log L(a_i = 0)]`` per spectrum and nuclide ``(B, S)``, floored at 0."""
    y = jnp.asarray(counts)
    loglik_full = _log_likelihood(full, fit, y)
    deviance = [
        2.0 * (loglik_full - _log_likelihood(null, map_batch(null, counts, config=map_config), y)) for null in nulls
    ]
    return np.maximum(np.stack(deviance, axis=1), 0.0)


def _limits(full: GammaMixture, fit: dict, alpha: float, config: IdentificationConfig):
    """Estimates, standard uncertainties, decision thresholds, detection limits and upper limits (counts)."""
    a, latent = _free_parameters(full, fit)
    offset = len(full.components) - len(full.nuclides)
    idx = jnp.arange(len(full.nuclides)) + offset
    sd_fn = _fisher_sd(full)
    estimate = np.asarray(a[:, offset:])
    sd = np.asarray(sd_fn(a, latent, idx, jnp.asarray(estimate)))
    threshold = stats.norm.isf(alpha) * np.asarray(sd_fn(a, latent, idx, jnp.zeros_like(estimate)))
    k_beta = float(stats.norm.isf(config.beta))
    detection = np.asarray(_detection_limit(sd_fn, a, latent, idx, jnp.asarray(threshold), k_beta))
    omega = stats.norm.cdf(estimate / sd)
    upper = estimate + stats.norm.isf(omega * config.gamma / 2.0) * sd
    return estimate, sd, threshold, detection, upper


def identify(
    mix: GammaMixture, counts: np.ndarray, *, config: IdentificationConfig = IdentificationConfig()
) -> Identification:
    """Identify the candidate nuclides of ``mix`` in one spectrum ``(n,)`` or many ``(B, n)``.

    ``mix`` should use the flat count prior (the default) and a free shield (or known weights);
    its ``absent`` field is ignored (every nuclide is a candidate).
    """
    if mix.count_prior != "uniform":
        raise ValueError("identification uses the flat count prior (count_prior='uniform')")
    counts = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    if mix.latent and mix.spectral_model.n_anchors != 2:
        raise ValueError("identification supports two-anchor spectral models (a scalar shield coordinate)")
    if counts.shape[1] != mix.n_channels:
        raise ValueError(f"counts must have {mix.n_channels} channels, got {counts.shape[1]}")
    full, nulls = _hypotheses(mix)
    fit = map_batch(full, counts, config=config.map)
    deviance = _deviances(full, nulls, fit, counts, config.map)
    alpha = config.alpha / len(full.nuclides) if config.familywise else config.alpha
    critical = float(stats.chi2.isf(2.0 * alpha, df=1))
    estimate, sd, threshold, detection, upper = _limits(full, fit, alpha, config)
    omega = stats.norm.cdf(estimate / sd)
    occam = np.sqrt(2 * np.pi) * sd * omega / (full.count_max * np.maximum(counts.sum(1, keepdims=True), 1.0))
    log_odds = deviance / 2.0 + np.log(occam) + np.log(config.prior_inclusion / (1.0 - config.prior_inclusion))
    probability = 1.0 / (1.0 + np.exp(-np.clip(log_odds, -700, 700)))

    parameter = _parameter(full, fit, len(counts))
    scale, unit = _to_unit(full, parameter)
    return Identification(
        nuclides=full.nuclides,
        unit=unit,
        critical_deviance=critical,
        deviance=deviance,
        present=deviance > critical,
        probability_present=probability,
        estimate=estimate * scale,
        standard_uncertainty=sd * scale,
        upper_limit=upper * scale,
        decision_threshold=threshold * scale,
        detection_limit=detection * scale,
        counts=estimate,
        parameter=parameter,
    )


def _parameter(mix: GammaMixture, fit: dict[str, np.ndarray], n_batch: int) -> np.ndarray:
    """Fitted physical parameter ``(B, n_latents)`` (NaN without a spectral model)."""
    sm = mix.spectral_model
    if sm is None:
        return np.full((n_batch, 1), np.nan)
    if mix.known_weights is not None:
        return np.broadcast_to(np.asarray(sm.parameter(jnp.asarray(mix.known_weights))), (n_batch, sm.n_latents))
    u = jnp.asarray(fit["u"])
    return np.asarray(jax.vmap(lambda v: sm.parameter(jnp.stack([1.0 - v, v], -1)))(u))


def _to_unit(mix: GammaMixture, parameter: np.ndarray) -> tuple[np.ndarray, str]:
    """Counts -> Bq factors ``(B, S)`` when activities are defined, else ones and ``"counts"``."""
    if not mix.activities_defined():
        return np.ones((len(parameter), len(mix.nuclides))), "counts"
    eta = jax.vmap(mix.spectral_model.counts_per_decay)(jnp.asarray(parameter))
    return 1.0 / (np.asarray(eta) * mix.live_time_s), "Bq"
