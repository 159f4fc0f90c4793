"""Reports and figures built from results (never from live inference objects)."""

from bayes_unmix.report.plots import plot_reconstructions

__all__ = ["plot_reconstructions"]
