"""One result type for every inference method: a thin wrapper around an ArviZ DataTree.

The DataTree (see :mod:`bayes_unmix.inference.convert`) is the result; this class only adds the
questions users ask of it: a summary table in physical units, credible intervals, convergence
diagnostics, plots, and saving. A saved result reloads alone (no live objects).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Literal

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr

from bayes_unmix.inference.checks import convergence_report, rhat_and_ess

__all__ = ["SUMMARY_COLUMNS", "UnmixingResult"]

SUMMARY_COLUMNS = ["component", "parameter", "mean", "sd", "ci_low", "ci_high", "r_hat", "ess_bulk"]


@dataclasses.dataclass(frozen=True)
class UnmixingResult:
    """Posterior (or point estimate) of one spectrum's unmixing, as an ArviZ DataTree."""

    tree: xr.DataTree

    @property
    def method(self) -> str:
        return str(self.tree.attrs.get("method", ""))

    @property
    def posterior(self) -> xr.Dataset:
        return self.tree["posterior"].to_dataset()

    @property
    def is_sampled(self) -> bool:
        """True when the posterior holds more than one draw (not a point estimate)."""
        return self.posterior.sizes["chain"] * self.posterior.sizes["draw"] > 1

    def draws(self, name: str) -> np.ndarray:
        """All draws of a posterior variable, chains stacked: ``(n_draws, ...)``."""
        values = self.posterior[name].values
        return values.reshape(-1, *values.shape[2:])

    def summary(self, ci_prob: float = 0.9, kind: Literal["eti", "hdi"] = "eti") -> pd.DataFrame:
        """Table with columns :data:`SUMMARY_COLUMNS`: counts of every component, the physical
        parameter and (when defined) the activity of every nuclide. ``r_hat``/``ess_bulk`` are NaN for
        point estimates, as ``sd`` and the interval are for MAP."""
        post = self.posterior
        parameter = self.tree.attrs.get("parameter_name", "")
        components = [str(c) for c in post["counts"].component.values]
        rows = [("counts", c, "counts", "component", c) for c in components]  # (parameter, component, site)
        if parameter and parameter in post:
            joint = [str(v) for v in post[parameter].latent.values] == ["joint"]
            rows += [
                (parameter, c, parameter, "latent", "joint" if joint else c) for c in components if c != "background"
            ]
        if "activity_bq" in post:
            rows += [
                ("activity_bq", str(n), "activity_bq", "nuclide", str(n)) for n in post["activity_bq"].nuclide.values
            ]
        stats = self._diagnostics()
        table = []
        for parameter_name, component, site, dim, label in rows:
            values = post[site].sel({dim: label})
            x = values.values.ravel()
            low, high = self._interval(values, ci_prob, kind)
            r_hat, ess = stats.get((site, label), (np.nan, np.nan))
            table.append(
                {
                    "component": component,
                    "parameter": parameter_name,
                    "mean": float(x.mean()),
                    "sd": float(x.std(ddof=1)) if x.size > 1 else np.nan,
                    "ci_low": low,
                    "ci_high": high,
                    "r_hat": r_hat,
                    "ess_bulk": ess,
                }
            )
        return pd.DataFrame(table, columns=SUMMARY_COLUMNS)

    def _interval(self, values: xr.DataArray, ci_prob: float, kind: str) -> tuple[float, float]:
        x = values.values.ravel()
        if x.size < 2:
            return np.nan, np.nan
        if kind == "hdi":
            bounds = az.hdi(values.to_dataset(name="v"), prob=ci_prob)["v"].values
            return float(bounds[0]), float(bounds[1])
        tail = (1 - ci_prob) / 2
        return float(np.quantile(x, tail)), float(np.quantile(x, 1 - tail))

    def _diagnostics(self) -> dict[tuple[str, str], tuple[float, float]]:
        """(site, label of its first dimension) -> (R-hat, bulk ESS), for sampled posteriors."""
        post = self.posterior
        if post.sizes["chain"] < 2 or post.sizes["draw"] < 4:
            return {}
        rhat, ess = rhat_and_ess(self.tree)
        out = {}
        for name in post.data_vars:
            dim = next(d for d in post[name].dims if d not in ("chain", "draw"))
            for label in post[name][dim].values:
                sel = {dim: label}
                out[(name, str(label))] = (float(rhat[name].sel(sel).max()), float(ess[name].sel(sel).min()))
        return out

    def intervals(self, ci_prob: float = 0.9, kind: Literal["eti", "hdi"] = "eti") -> pd.DataFrame:
        """Credible intervals only: ``component, parameter, ci_low, ci_high``."""
        return self.summary(ci_prob, kind)[["component", "parameter", "ci_low", "ci_high"]]

    def check_convergence(self, **kwargs) -> dict[str, object]:
        """R-hat/ESS/divergence report; warns loudly on problems (see :func:`convergence_report`)."""
        return convergence_report(self.tree, **kwargs)

    def plot_fit(self, **kwargs):
        """Data with the posterior-predictive band, component contributions and residuals."""
        from bayes_unmix.report.plots import plot_fit

        return plot_fit(self.tree, **kwargs)

    def plot_pair(self, **kwargs):
        """Pair plot of the counts and the physical parameter."""
        from bayes_unmix.report.plots import plot_pair

        return plot_pair(self.tree, **kwargs)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the DataTree to netCDF (h5netcdf)."""
        path = Path(path)
        self.tree.to_netcdf(path, engine="h5netcdf")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> UnmixingResult:
        return cls(xr.open_datatree(path, engine="h5netcdf").load())
