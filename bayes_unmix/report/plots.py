"""Figures people would rather look at than read."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

__all__ = ["plot_reconstructions"]


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
