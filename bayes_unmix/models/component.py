"""The contract between spectral models and the X-ray cube algorithms (SUSHI, Bayesian cube models).

A *spectral component* maps per-pixel latent coordinates ``theta`` to unit-sum spectra on the
instrument's channel grid, and to the physical parameters users report. IAE decoders (``theta`` =
barycentric weights of the anchors) and direct physical surrogates (``theta`` = standardised
physical parameters) both satisfy it, so cube algorithms never depend on how a component was built.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import jax
import numpy as np

__all__ = ["SpectralComponent", "is_barycentric"]


@runtime_checkable
class SpectralComponent(Protocol):
    """One emission component of a hyperspectral mixture (e.g. ``"thermal"``, ``"synchrotron"``).

    Attributes
    ----------
    name:
        Component name used for sites, dims and file names.
    n_latent:
        Entries of ``theta`` per pixel (IAE: number of anchors).
    n_channels:
        Channels of the spectra.
    parameter_names:
        Physical parameters with units, e.g. ``("kT_keV", "z")`` or ``("photon_index",)``.
    theta_bounds:
        ``(low, high)`` arrays of shape ``(n_latent,)``: the region the model was trained on (priors
        and box constraints use it).
    """

    name: str
    n_latent: int
    n_channels: int
    parameter_names: tuple[str, ...]

    @property
    def theta_bounds(self) -> tuple[jax.Array, jax.Array]: ...

    def initial_theta(self) -> jax.Array:
        """A neutral starting point ``(n_latent,)`` (IAE: the barycentre of the anchors)."""
        ...

    def spectra(self, theta: jax.Array) -> jax.Array:
        """Unit-sum spectra ``(..., n_channels)`` at ``theta`` ``(..., n_latent)``; pure, jit/grad/vmap-safe."""
        ...

    def parameters(self, theta: jax.Array) -> jax.Array:
        """Physical parameters ``(..., len(parameter_names))`` at ``theta``; pure and differentiable."""
        ...


def is_barycentric(component: SpectralComponent) -> bool:
    """Whether ``theta`` are barycentric weights (IAE): the neutral point is positive and sums to one, and
    the ``theta_bounds`` box holds the simplex of the anchors.

    The box of an IAE also holds weights off the sum-one plane and far outside the anchors' hull,
    where decoded spectra and the weights -> parameters map are extrapolations; cube models therefore
    keep such latents on the simplex.
    """
    with jax.ensure_compile_time_eval():  # also called while a model is traced
        centre = np.asarray(component.initial_theta(), np.float64)
        low, high = (np.asarray(b, dtype=np.float64) for b in component.theta_bounds)
    return bool(
        component.n_latent > 1
        and np.isclose(centre.sum(), 1.0)
        and np.all(centre > 0)
        and np.all(low <= 0)
        and np.all(high >= 1)
    )
