"""Probabilistic models (NumPyro) that close over trained IAE decoders.

Planned contents (issue 4): Poisson gamma-spectrum mixtures with joint or individual spectral
models, and X-ray image-cube models with spatial priors (issue 6).
"""
