"""Convergence checks that warn loudly: R-hat, bulk ESS, divergences."""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import xarray as xr

__all__ = ["ConvergenceWarning", "convergence_report", "rhat_and_ess"]


class ConvergenceWarning(UserWarning):
    """MCMC output that should not be trusted as it is."""


def rhat_and_ess(tree: xr.DataTree) -> tuple[xr.Dataset, xr.Dataset]:
    """R-hat and bulk ESS of every posterior variable; NaN (silently) for constant entries, such as the
    counts of a nuclide held at zero."""
    names = list(tree["posterior"].data_vars)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rhat = az.rhat(tree, var_names=names).to_dataset()
        ess = az.ess(tree, var_names=names, method="bulk").to_dataset()
    return rhat, ess


def convergence_report(
    tree: xr.DataTree, *, rhat_max: float = 1.01, ess_min: float = 400.0, warn: bool = True
) -> dict[str, object]:
    """R-hat and bulk ESS of every posterior variable, and the number of divergences.

    Warns (:class:`ConvergenceWarning`) naming each variable whose worst R-hat exceeds ``rhat_max`` or
    whose smallest bulk ESS is below ``ess_min`` (also when fewer than 2 chains make R-hat
    meaningless), and when any transition diverged.
    """
    posterior = tree["posterior"].to_dataset()
    n_chains = posterior.sizes["chain"]
    rhat, ess = rhat_and_ess(tree)
    rhat = rhat if n_chains > 1 else None
    report: dict[str, object] = {"chains": n_chains, "draws": posterior.sizes["draw"], "problems": []}
    for name in posterior.data_vars:
        worst_rhat = float(np.nanmax(rhat[name].values)) if rhat is not None else float("nan")
        least_ess = float(np.nanmin(ess[name].values))
        report[name] = {"r_hat_max": worst_rhat, "ess_bulk_min": least_ess}
        if worst_rhat > rhat_max:
            report["problems"].append(f"{name}: R-hat {worst_rhat:.3f} > {rhat_max}")
        if least_ess < ess_min:
            report["problems"].append(f"{name}: bulk ESS {least_ess:.0f} < {ess_min:.0f}")
    if n_chains < 2:
        report["problems"].append("a single chain: R-hat cannot be computed (run 2 or more chains)")
    if "sample_stats" in tree.children and "diverging" in tree["sample_stats"].data_vars:
        divergences = int(tree["sample_stats"]["diverging"].values.sum())
        report["divergences"] = divergences
        if divergences:
            report["problems"].append(f"{divergences} divergent transitions")
    if warn and report["problems"]:
        warnings.warn(
            "MCMC did not converge well: " + "; ".join(report["problems"]) + ". Run longer or more chains.",
            ConvergenceWarning,
            stacklevel=3,
        )
    return report
