"""Model comparison of fits of the same spectrum: PSIS-LOO over channels, with Pareto-k diagnostics.

Typical questions: is a nuclide present (the mixture with it against the one without)? Joint or
individual spectral model? Every fit must be a sampled :class:`UnmixingResult` (NUTS, VI, ...) of
the same observed counts; its ``log_likelihood`` group holds one term per channel.
"""

from __future__ import annotations

from collections.abc import Mapping

import arviz as az
import numpy as np
import pandas as pd

from bayes_unmix.inference.result import UnmixingResult

__all__ = ["compare_fits", "pareto_k"]


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
    best first, by PSIS-LOO with stacking weights."""
    _check_same_data(results)
    return az.compare({name: r.tree for name, r in results.items()}, round_to="none")


def pareto_k(result: UnmixingResult) -> np.ndarray:
    """Pareto-k of every channel's PSIS-LOO term (above 0.7: that channel's LOO estimate is unreliable)."""
    return np.asarray(az.loo(result.tree, pointwise=True).pareto_k).ravel()
