"""Small spectral families generated on the fly, for tests, demos and examples.

These are deliberately simple, closed-form families with a known physical parameter, so that an
IAE can be trained and checked in seconds without any external data:

* :func:`gaussian_line_family`: a Gaussian line moving across the channels (the IAE paper's demo).
* :func:`shielded_line_family`: a toy gamma-ray signature of a single line seen through a shield of
  varying thickness: photopeak attenuated as ``exp(-mu t)``, a Compton continuum of the detector, and
  a shield-scattered component growing as ``1 - exp(-mu t)``. It is a stand-in with the right
  qualitative behaviour, not a detector model.

All spectra are normalised to unit sum over channels.
"""

from __future__ import annotations

import numpy as np

__all__ = ["gaussian_line_family", "shielded_line_family"]

_ELECTRON_MASS_KEV = 510.999


def _unit_sum(spectra: np.ndarray) -> np.ndarray:
    return spectra / spectra.sum(axis=-1, keepdims=True)


def gaussian_line_family(positions: np.ndarray, n_channels: int = 50, width: float = 3.0) -> np.ndarray:
    """Gaussian lines centred at ``positions`` (channel units) on ``n_channels`` channels.

    Returns an array ``(len(positions), n_channels)`` with unit-sum rows.

    >>> gaussian_line_family(np.array([10.0, 20.0]), 30).shape
    (2, 30)
    """
    channels = np.arange(n_channels, dtype=float)
    lines = np.exp(-0.5 * ((channels[None, :] - np.asarray(positions, float)[:, None]) / width) ** 2)
    return _unit_sum(lines + 1e-12)


def shielded_line_family(
    thickness_mm: np.ndarray,
    energies_kev: np.ndarray | None = None,
    *,
    line_kev: float = 662.0,
    attenuation_per_mm: float = 0.058,
    fwhm_at_662: float = 0.07,
) -> np.ndarray:
    """Toy shielded single-line gamma spectra, ``(len(thickness_mm), len(energies_kev))``, unit sum.

    Parameters
    ----------
    thickness_mm:
        Shield thicknesses (mm).
    energies_kev:
        Channel centres (keV); default 128 channels from 20 to 800 keV.
    line_kev:
        Line energy (keV).
    attenuation_per_mm:
        Linear attenuation coefficient of the shield (1/mm); 0.058 is roughly steel at 662 keV.
    fwhm_at_662:
        Relative energy resolution at 662 keV, scaled as ``1/sqrt(E)``.
    """
    e = np.linspace(20.0, 800.0, 128) if energies_kev is None else np.asarray(energies_kev, float)
    t = np.asarray(thickness_mm, float)[:, None]
    sigma = fwhm_at_662 * np.sqrt(662.0 * line_kev) / 2.3548
    peak = np.exp(-0.5 * ((e - line_kev) / sigma) ** 2)
    edge = line_kev * (1.0 - 1.0 / (1.0 + 2.0 * line_kev / _ELECTRON_MASS_KEV))
    smooth_step = 0.5 * (1.0 - np.tanh((e - edge) / sigma))
    compton = (0.6 + 0.4 * (e / edge) ** 2) * smooth_step
    scattered = np.exp(-0.5 * ((e - 0.45 * line_kev) / (0.25 * line_kev)) ** 2) * (e < line_kev)
    direct = np.exp(-attenuation_per_mm * t)
    spectra = direct * (peak + 0.35 * compton) + (1.0 - direct) * (0.8 * scattered + 0.2 * compton)
    return _unit_sum(spectra + 1e-9)
