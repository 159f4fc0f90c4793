"""Figures people would rather look at than read."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

__all__ = ["plot_comparison", "plot_fit", "plot_identification", "plot_pair", "plot_reconstructions"]


def plot_reconstructions(
    energies: np.ndarray,
    spectra: np.ndarray,
    fitted: np.ndarray,
    labels: Sequence[str],
    *,
    xlabel: str = "energy (keV)",
    title: str = "IAE reconstructions",
) -> Figure:
    """Spectra (lines) and their IAE reconstructions (dashed), with relative residuals below.

    ``spectra`` and ``fitted`` have shape ``(k, n)``; ``energies`` ``(n,)``; one label per row.
    """
    spectra, fitted = np.atleast_2d(spectra), np.atleast_2d(fitted)
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(8, 6), height_ratios=(3, 1))
    colors = plt.cm.viridis(np.linspace(0, 0.9, len(spectra)))
    for x, x_hat, label, c in zip(spectra, fitted, labels, colors):
        top.semilogy(energies, x, color=c, lw=1.5, label=label)
        top.semilogy(energies, np.clip(x_hat, 1e-12, None), color="k", lw=0.8, ls="--")
        bottom.plot(energies, (x_hat - x) / x.max(), color=c, lw=1)
    top.set_ylabel("normalised counts")
    top.set_title(title)
    top.legend(fontsize=8, title="truth (reconstruction dashed)")
    bottom.set_ylabel("residual / max")
    bottom.set_xlabel(xlabel)
    fig.tight_layout()
    return fig


def _axis(tree) -> tuple[np.ndarray, str]:
    constant = tree["constant_data"] if "constant_data" in tree.children else None
    if constant is not None and "energy_kev" in constant.data_vars:
        return constant["energy_kev"].values, "energy (keV)"
    n = tree["observed_data"]["obs"].size
    return np.arange(n), "channel"


def plot_fit(tree, *, ci_prob: float = 0.9, title: str | None = None) -> Figure:
    """Observed counts with the posterior-predictive band, the posterior-mean contribution of each
    component, and Pearson residuals ``(y - mean) / sqrt(mean)`` below."""
    x, xlabel = _axis(tree)
    y = tree["observed_data"]["obs"].values
    ppc = tree["posterior_predictive"]["obs"].values.reshape(-1, y.size)
    contributions = tree["constant_data"]["contribution"]
    total = contributions.values.sum(0)
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(9, 6), height_ratios=(3, 1))
    if ppc.shape[0] > 1:
        low, high = np.quantile(ppc, [(1 - ci_prob) / 2, (1 + ci_prob) / 2], axis=0)
        top.fill_between(x, low, high, step="mid", color="tab:blue", alpha=0.25, label=f"{ci_prob:.0%} predictive band")
    top.step(x, y, where="mid", color="0.45", lw=0.7, label="data")
    top.plot(x, total, color="k", lw=1.0, ls="--", label="model")
    for name, c in zip(contributions.component.values, contributions.values):
        top.plot(x, c, lw=0.9, label=str(name))
    top.set_yscale("symlog", linthresh=1.0)
    top.set_ylim(bottom=0)
    top.set_ylabel("counts per channel")
    top.legend(fontsize=8, ncol=2)
    top.set_title(title or f"posterior fit ({tree.attrs.get('method', '')})")
    bottom.plot(x, (y - total) / np.sqrt(np.maximum(total, 1e-9)), color="k", lw=0.6)
    bottom.axhline(0, color="tab:blue", lw=0.8)
    bottom.set_ylabel("residual (σ)")
    bottom.set_xlabel(xlabel)
    fig.tight_layout()
    return fig


def plot_pair(tree, *, max_draws: int = 1000) -> Figure:
    """Corner plot of the nuclide counts and the physical parameter (histograms on the diagonal)."""
    post = tree["posterior"]
    columns = [(f"counts {c}", post["counts"].sel(component=c).values.ravel()) for c in post["counts"].component.values]
    parameter = tree.attrs.get("parameter_name", "")
    if parameter and parameter in post.data_vars:
        for latent in post[parameter].latent.values:
            columns.append((f"{parameter} {latent}", post[parameter].sel(latent=latent).values.ravel()))
    columns = [(name, v[:max_draws]) for name, v in columns]
    k = len(columns)
    fig, axes = plt.subplots(k, k, figsize=(1.9 * k, 1.9 * k), squeeze=False)
    for i, (name_i, vi) in enumerate(columns):
        for j, (name_j, vj) in enumerate(columns):
            ax = axes[i, j]
            if j > i:
                ax.axis("off")
            elif i == j:
                ax.hist(vi, bins=30, color="tab:blue", alpha=0.7)
            else:
                ax.plot(vj, vi, ".", ms=1.5, alpha=0.4, color="tab:blue")
            ax.tick_params(labelsize=6)
            if i == k - 1:
                ax.set_xlabel(name_j, fontsize=7)
            if j == 0 and i > 0:
                ax.set_ylabel(name_i, fontsize=7)
    fig.tight_layout()
    return fig


def plot_identification(table, *, critical_deviance: float | None = None) -> Figure:
    """Identification at a glance: probability that each nuclide is present (left) and its estimate
    with the ISO 11929 decision threshold, detection limit and upper limit (right, log scale)."""
    fig, (ax_p, ax_l) = plt.subplots(1, 2, figsize=(10, 0.6 * len(table) + 1.8), sharey=True)
    y = np.arange(len(table))
    present = (table["decision"] == "present").to_numpy()
    colors = np.where(present, "tab:green", "tab:gray")
    ax_p.barh(y, table["probability_present"], color=colors)
    ax_p.set(xlim=(0, 1), xlabel="posterior probability present", yticks=y, yticklabels=table["nuclide"])
    ax_p.axvline(0.5, color="k", lw=0.5, ls=":")
    title = "green: present" + (f" (deviance > {critical_deviance:.2f})" if critical_deviance else "")
    ax_p.set_title(title, fontsize=9)
    unit = table["unit"].iloc[0] if "unit" in table else ""
    floor = max(float(np.nanmin(table["decision_threshold"])) / 10, 1e-12)
    ax_l.scatter(np.maximum(table["estimate"], floor), y, marker="o", color=colors, label="estimate", zorder=3)
    ax_l.scatter(table["upper_limit"], y, marker="|", s=200, color="k", label="upper limit")
    ax_l.scatter(table["decision_threshold"], y, marker="<", color="tab:orange", label="decision threshold")
    ax_l.scatter(table["detection_limit"], y, marker=">", color="tab:red", label="detection limit")
    ax_l.set(xscale="log", xlabel=unit)
    ax_l.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def plot_comparison(loo, evidence) -> Figure:
    """Model comparison: ELPD difference to the best model by LOO (with ``dse``) and log Bayes factor
    against the highest-evidence model (with its Monte-Carlo error); Pareto-k problems are flagged."""
    fig, (ax_l, ax_b) = plt.subplots(1, 2, figsize=(10, 0.5 * len(loo) + 2.0))
    y = np.arange(len(loo))
    ax_l.errorbar(loo["elpd_diff"], y, xerr=loo["dse"], fmt="o", color="tab:blue", capsize=3)
    labels = [f"{name}" + (f" (bad Pareto k: {n})" if n else "") for name, n in zip(loo.index, loo["n_bad_k"])]
    ax_l.set(yticks=y, yticklabels=labels, xlabel="ELPD difference to best (LOO)", title="predictive accuracy")
    ax_l.axvline(0, color="k", lw=0.5)
    yb = np.arange(len(evidence))
    ax_b.errorbar(evidence["log_bf"], yb, xerr=2 * evidence["log_bf_error"], fmt="s", color="tab:purple", capsize=3)
    ax_b.set(yticks=yb, yticklabels=list(evidence.index), xlabel="log Bayes factor vs best (2 MC s.e.)")
    ax_b.set_title("evidence (SMC)")
    ax_b.axvline(0, color="k", lw=0.5)
    for ax in (ax_l, ax_b):
        ax.invert_yaxis()
    fig.tight_layout()
    return fig
