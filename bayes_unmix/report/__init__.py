"""Reports and figures built from results (never from live inference objects)."""

from bayes_unmix.report.plots import plot_fit, plot_pair, plot_reconstructions

__all__ = ["plot_fit", "plot_pair", "plot_reconstructions"]
