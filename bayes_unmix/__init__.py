"""bayes_unmix: Bayesian unmixing of physics spectra with learned, data-frugal spectral models.

The flow reads like the science: spectral library -> IAE -> NumPyro model -> inference -> ArviZ
result -> report. Importing the package enables JAX's float64 mode: Gram solves of the interpolator
and Poisson likelihoods at high counts are not accurate in float32.
"""

import jax

jax.config.update("jax_enable_x64", True)

__version__ = "0.1.0"

__all__ = ["__version__"]
