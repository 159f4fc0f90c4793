"""bayes_unmix: Bayesian unmixing of physics spectra with learned, data-frugal spectral models.

The flow reads like the science: spectral library -> IAE -> NumPyro model -> inference -> ArviZ
result -> report. Importing the package enables JAX's float64 mode: Gram solves of the interpolator
and Poisson likelihoods at high counts are not accurate in float32.
"""

import jax
import numpyro

jax.config.update("jax_enable_x64", True)
# ArviZ registers a lazy stand-in for numpyro; if numpyro's first real import is then of a subpackage
# (`import numpyro.distributions`), that subpackage is executed twice and loses its submodule attributes
# (`numpyro.factor` then fails on `numpyro.distributions.distribution`). Touching an attribute loads the
# whole package once, in order, whatever was imported before us.
numpyro.__version__  # noqa: B018

__version__ = "0.1.0"

__all__ = ["__version__"]
