"""Spectral data: generated families now; loaders, libraries and simulators as they arrive."""

from bayes_unmix.data.synthetic import gaussian_line_family, shielded_line_family

__all__ = ["gaussian_line_family", "shielded_line_family"]
