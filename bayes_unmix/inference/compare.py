"""Model comparison of fits of the same spectrum: PSIS-LOO over channels, with Pareto-k diagnostics.

Typical questions: is a nuclide present (the mixture with it against the one without)? Joint or
individual spectral model? Which shield material? Every fit must be a sampled :class:`UnmixingResult`
(NUTS, VI, ...) of the same observed counts; its ``log_likelihood`` group holds one term per channel.

:func:`compare_models` does a whole study in one call: NUTS and PSIS-LOO for every mixture, and SMC
evidences for Bayes factors with their Monte-Carlo errors. LOO measures predictive accuracy for new
channels of *this* spectrum; the Bayes factor weighs the models' prior predictive (it depends on the
prior widths). When they disagree, say so rather than pick one.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping

import arviz as az
import jax
import numpy as np
import pandas as pd

from bayes_unmix.inference.evidence import Evidence, SMCConfig, log_evidence
from bayes_unmix.inference.mcmc import NUTSConfig, nuts
from bayes_unmix.inference.result import UnmixingResult
from bayes_unmix.models.gamma import GammaMixture

__all__ = ["ModelComparison", "compare_fits", "compare_models", "good_k_threshold", "pareto_k"]


def _check_same_data(results: Mapping[str, UnmixingResult]) -> None:
    if len(results) < 2:
        raise ValueError("compare at least two fits")
    observed = [r.tree["observed_data"]["obs"].values for r in results.values()]
    if any(o.shape != observed[0].shape or not np.array_equal(o, observed[0]) for o in observed):
        raise ValueError("fits of different spectra (or channel grids) cannot be compared")
    point = [name for name, r in results.items() if not r.is_sampled]
    if point:
        raise ValueError(f"LOO needs posterior draws; {point} are point estimates (MAP)")


def compare_fits(results: Mapping[str, UnmixingResult]) -> pd.DataFrame:
    """ArviZ comparison table (``rank, elpd, elpd_diff, dse, weight, ...``) of fits of one spectrum,
    best first, by PSIS-LOO with stacking weights, plus ``max_pareto_k`` and ``n_bad_k`` (channels whose
    k exceeds :func:`good_k_threshold`, so their LOO terms are unreliable)."""
    _check_same_data(results)
    with warnings.catch_warnings():  # ArviZ's generic Pareto-k warning is replaced by one naming the models
        warnings.filterwarnings("ignore", message="Estimated shape parameter of Pareto", category=UserWarning)
        table = az.compare({name: r.tree for name, r in results.items()}, round_to="none")
        ks = {name: pareto_k(r) for name, r in results.items()}
    table["max_pareto_k"] = [float(ks[name].max()) for name in table.index]
    table["n_bad_k"] = [int(np.sum(ks[name] > good_k_threshold(results[name]))) for name in table.index]
    unreliable = [f"{name} ({n} channels)" for name, n in zip(table.index, table["n_bad_k"]) if n]
    if unreliable:
        warnings.warn(
            f"PSIS-LOO is unreliable (high Pareto k) for {', '.join(unreliable)}: compare with care or refit",
            UserWarning,
            stacklevel=2,
        )
    return table


def good_k_threshold(result: UnmixingResult) -> float:
    """Pareto-k above which PSIS is unreliable for this many draws S: ``min(1 - 1/log10 S, 0.7)``
    (Vehtari et al. 2024, the rule ArviZ warns with)."""
    draws = result.posterior.sizes["chain"] * result.posterior.sizes["draw"]
    return float(min(1.0 - 1.0 / np.log10(max(draws, 11)), 0.7))


@dataclasses.dataclass(frozen=True)
class ModelComparison:
    """A model-comparison study of one spectrum.

    ``loo``: :func:`compare_fits` table; ``evidence``: per model ``log_z``, ``mc_error`` and
    ``log_bf`` (log Bayes factor against the model of highest evidence) with ``log_bf_error``;
    ``fits``: the NUTS results.
    """

    loo: pd.DataFrame
    evidence: pd.DataFrame
    fits: dict[str, UnmixingResult]

    def plot(self):
        """ELPD differences and log Bayes factors side by side, with their standard errors."""
        from bayes_unmix.report.plots import plot_comparison

        return plot_comparison(self.loo, self.evidence)


def _evidence_table(evidences: Mapping[str, Evidence]) -> pd.DataFrame:
    best = max(evidences, key=lambda n: evidences[n].log_z)
    rows = []
    for name, ev in evidences.items():
        rows.append(
            {
                "model": name,
                "log_z": ev.log_z,
                "mc_error": ev.mc_error,
                "log_bf": ev.log_z - evidences[best].log_z,
                "log_bf_error": 0.0 if name == best else float(np.hypot(ev.mc_error, evidences[best].mc_error)),
            }
        )
    return pd.DataFrame(rows).sort_values("log_z", ascending=False).set_index("model")


def compare_models(
    mixtures: Mapping[str, GammaMixture],
    counts: np.ndarray,
    *,
    key: jax.Array,
    nuts_config: NUTSConfig | None = None,
    smc_config: SMCConfig | None = None,
    progress: bool = False,
) -> ModelComparison:
    """Compare mixtures (e.g. joint vs individual, with vs without a nuclide) on one spectrum ``(n,)``.

    Every mixture must use the same channel grid. Returns LOO (with Pareto-k) and SMC Bayes factors.
    """
    if len(mixtures) < 2:
        raise ValueError("compare at least two models")
    if len({m.n_channels for m in mixtures.values()}) != 1:
        raise ValueError("the models have different channel grids")
    nuts_config, smc_config = nuts_config or NUTSConfig(), smc_config or SMCConfig()
    keys = jax.random.split(key, 2 * len(mixtures))
    fits, evidences = {}, {}
    for i, (name, mix) in enumerate(mixtures.items()):
        fits[name] = nuts(mix, counts, key=keys[2 * i], config=nuts_config, progress=progress)
        evidences[name] = log_evidence(mix, counts, key=keys[2 * i + 1], config=smc_config)
    return ModelComparison(compare_fits(fits), _evidence_table(evidences), fits)


def pareto_k(result: UnmixingResult) -> np.ndarray:
    """Pareto-k of every channel's PSIS-LOO term (above :func:`good_k_threshold`: unreliable)."""
    return np.asarray(az.loo(result.tree, pointwise=True).pareto_k).ravel()
