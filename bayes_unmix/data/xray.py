"""A simplified X-ray spectral simulator for supernova-remnant cubes (explicitly **not APEC**).

No offline thermal-plasma code exists (see ``shared/notes/hyperspectral.md`` §9), so the package
ships this documented stand-in. All spectra are expected photon counts folded through an
instrument response and normalised to **unit sum over the channels**; every function is pure
``jax.numpy`` (jit/grad/vmap-safe in all physical parameters).

Emission (photons per keV, arbitrary emission measure):

* **thermal continuum** ``f(E; kT) = g(E, kT) kT^{-1/2} E^{-1} exp(-E/kT)`` with the rough Gaunt
  factor ``g = (E/kT)^{-0.4}`` (:data:`GAUNT_EXPONENT`);
* **lines** at rest energies :data:`LINES` with photon flux
  ``abundance * EW_l * eps_l(kT) * f(E_l; kT)``, i.e. an equivalent width ``abundance * EW_l`` keV
  at the emissivity peak, ``eps_l(kT) = exp(-0.5 (ln(kT / kT_l) / LINE_LOG_WIDTH)^2)``; the
  neutral Fe K 6.4 keV line has a kT-independent flux ``FE_K_EW * f(6.4; 2 keV)``;
* **Doppler shift** ``E_obs = E_rest / (1 + z)`` of continuum and lines (z > 0: red shift);
* **synchrotron** power law ``E^{-Gamma}``;
* **absorption** ``exp(-N_H sigma(E))`` with the crude ISM cross-section
  ``sigma = 2.4e-22 E^{-8/3}`` cm^2 per H (:data:`SIGMA_1KEV_CM2`), ``N_H`` in 1e22 cm^-2.

Instrument (:class:`Instrument`): a smooth effective area ``1 / (1 + (E/knee)^slope)``, a Gaussian
resolution of FWHM ``fwhm_6kev * sqrt(E / 6 keV)``, integrated over channel edges (default 375
channels on 3.0-8.48 keV, the SUSHI band). Continua are evaluated on a fine grid and folded by a
precomputed response matrix; lines are folded analytically (Gaussians at channel centres), so
spectra are smooth in ``z``. Lines that cannot reach the band for ``|z| <= 0.1`` are skipped.
All constants are design choices, not calibrated physics.

>>> import numpy as np
>>> s = np.asarray(thermal_spectrum(2.0, 0.0))
>>> s.shape, round(float(s.sum()), 12)
((375,), 1.0)
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Literal

import jax
import jax.numpy as jnp
import numpy as np

ArrayLike = np.ndarray | jax.Array | float

__all__ = [
    "DEFAULT_INSTRUMENT",
    "FE_K_EW",
    "GAUNT_EXPONENT",
    "LINES",
    "LINE_LOG_WIDTH",
    "SIGMA_1KEV_CM2",
    "Instrument",
    "SimulatorComponent",
    "XrayLibrary",
    "from_unit_box",
    "synchrotron_library",
    "synchrotron_spectrum",
    "thermal_library",
    "thermal_spectrum",
    "to_unit_box",
]

#: (ion, rest energy keV, equivalent width keV per unit abundance at the peak, peak kT keV).
LINES: tuple[tuple[str, float, float, float], ...] = (
    ("Si XIII", 1.865, 0.10, 0.9),
    ("Si XIV", 2.006, 0.04, 1.8),
    ("S XV", 2.460, 0.08, 1.4),
    ("S XVI", 2.623, 0.03, 2.8),
    ("Ar XVII", 3.140, 0.06, 2.0),
    ("Ar XVIII", 3.323, 0.02, 4.0),
    ("Ca XIX", 3.900, 0.05, 2.7),
    ("Ca XX", 4.108, 0.015, 5.4),
    ("Fe XXV", 6.700, 0.15, 5.0),
    ("Fe XXVI", 6.966, 0.02, 10.0),
    ("Fe XXV Kb", 7.880, 0.012, 5.0),
)
LINE_LOG_WIDTH = 0.7  # width of the emissivity bump in ln kT
FE_K_EW = 0.01  # keV, neutral Fe K alpha 6.4 keV, relative to the continuum of a 2 keV plasma
GAUNT_EXPONENT = -0.4
SIGMA_1KEV_CM2 = 2.4e-22
_SQRT2 = float(np.sqrt(2.0))
_SQRT_2PI = float(np.sqrt(2.0 * np.pi))


@dataclasses.dataclass(frozen=True)
class Instrument:
    """A CCD-like instrument: channel grid, effective area and Gaussian resolution (all keV).

    Hashable, so it can be a static argument; the response matrix is computed once per instance.
    """

    emin_kev: float = 3.0
    emax_kev: float = 8.48
    n_channels: int = 375
    fwhm_6kev: float = 0.15
    area_knee_kev: float = 6.0
    area_slope: float = 3.0
    fine_step_kev: float = 0.02
    margin_sigmas: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < self.emin_kev < self.emax_kev or self.n_channels < 2:
            raise ValueError("need 0 < emin_kev < emax_kev and n_channels >= 2")
        if self.fwhm_6kev <= 0 or self.fine_step_kev <= 0:
            raise ValueError("fwhm_6kev and fine_step_kev must be positive")

    @property
    def channel_edges(self) -> np.ndarray:
        """Channel edges ``(n_channels + 1,)`` in keV."""
        return np.linspace(self.emin_kev, self.emax_kev, self.n_channels + 1)

    @property
    def energies_kev(self) -> np.ndarray:
        """Channel centres ``(n_channels,)`` in keV."""
        edges = self.channel_edges
        return 0.5 * (edges[1:] + edges[:-1])

    def sigma_kev(self, energy_kev: ArrayLike) -> ArrayLike:
        """Gaussian resolution ``sigma(E)`` in keV (numpy or jax input)."""
        return self.fwhm_6kev / 2.3548200450309493 * (energy_kev / 6.0) ** 0.5

    def area(self, energy_kev: ArrayLike) -> ArrayLike:
        """Relative effective area (1 at low energy)."""
        return 1.0 / (1.0 + (energy_kev / self.area_knee_kev) ** self.area_slope)

    @property
    def fine_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """Fine model-grid centres and widths (keV) covering the band plus resolution margins."""
        lo = max(self.emin_kev - self.margin_sigmas * float(self.sigma_kev(self.emin_kev)), 0.1)
        hi = self.emax_kev + self.margin_sigmas * float(self.sigma_kev(self.emax_kev))
        edges = np.arange(lo, hi + self.fine_step_kev, self.fine_step_kev)
        return 0.5 * (edges[1:] + edges[:-1]), np.diff(edges)

    @property
    def response(self) -> np.ndarray:
        """Response matrix ``(n_fine, n_channels)``: area times channel probability of each fine bin."""
        return _response_matrix(self)


@functools.lru_cache(maxsize=8)
def _response_matrix(inst: Instrument) -> np.ndarray:
    from scipy.special import erf as np_erf

    centres, _ = inst.fine_grid
    edges = inst.channel_edges
    sigma = inst.sigma_kev(centres)[:, None]
    cdf = 0.5 * (1.0 + np_erf((edges[None, :] - centres[:, None]) / (_SQRT2 * sigma)))
    matrix = inst.area(centres)[:, None] * np.diff(cdf, axis=1)
    matrix.setflags(write=False)
    return matrix


DEFAULT_INSTRUMENT = Instrument()


def _bremsstrahlung(energy: jax.Array, kt: jax.Array) -> jax.Array:
    """Photons per keV ``g(E, kT) kT^{-1/2} E^{-1} exp(-E/kT)`` (broadcasting)."""
    x = energy / kt
    return x**GAUNT_EXPONENT * kt**-0.5 / energy * jnp.exp(-x)


def _absorption(energy: jax.Array, nh_1e22: float | jax.Array) -> jax.Array:
    return jnp.exp(-nh_1e22 * 1e22 * SIGMA_1KEV_CM2 * energy ** (-8.0 / 3.0))


def _fold_continuum(density: jax.Array, inst: Instrument) -> jax.Array:
    """Channel counts of a photon density ``(..., n_fine)`` given on the fine grid."""
    _, widths = inst.fine_grid
    return (density * jnp.asarray(widths)) @ jnp.asarray(inst.response)


def _line_windows(rest_kev: tuple[float, ...], inst: Instrument) -> tuple[tuple[int, int], ...]:
    """Static channel range of each line: all it can reach for |z| <= 0.1, plus the resolution margin."""
    edges = inst.channel_edges
    windows = []
    for e in rest_kev:
        lo = e / 1.1 - inst.margin_sigmas * float(inst.sigma_kev(e / 1.1))
        hi = e / 0.9 + inst.margin_sigmas * float(inst.sigma_kev(e / 0.9))
        windows.append((int(np.searchsorted(edges, lo)), int(np.searchsorted(edges, hi))))
    return tuple((max(i - 1, 0), min(j, inst.n_channels)) for i, j in windows)


def _fold_lines(energy: jax.Array, flux: jax.Array, rest_kev: tuple[float, ...], inst: Instrument) -> jax.Array:
    """Channel counts of narrow lines at observed energies ``(..., L)`` with photon fluxes ``(..., L)``.

    The Gaussian is evaluated at channel centres times the channel width (midpoint rule): sigma is
    at least three channel widths, so this is within 0.5 % of the exact erf integral. Each line is
    only evaluated on the channels it can reach for ``|z| <= 0.1`` (``rest_kev`` fixes them), which
    keeps cube-wide gradients cheap.
    """
    centres = inst.energies_kev
    width = (inst.emax_kev - inst.emin_kev) / inst.n_channels
    sigma = inst.sigma_kev(energy)
    weight = flux * inst.area(energy) * width / (sigma * _SQRT_2PI)
    counts = jnp.zeros((*energy.shape[:-1], inst.n_channels), dtype=weight.dtype)
    for l, (start, stop) in enumerate(_line_windows(rest_kev, inst)):
        u = (jnp.asarray(centres[start:stop]) - energy[..., l, None]) / sigma[..., l, None]
        counts = counts.at[..., start:stop].add(weight[..., l, None] * jnp.exp(-0.5 * u**2))
    return counts


def _band_lines(inst: Instrument) -> tuple[int, ...]:
    """Indices of the lines (and Fe K, last) that can reach the band for |z| <= 0.1."""
    lo = inst.emin_kev - inst.margin_sigmas * float(inst.sigma_kev(inst.emin_kev))
    hi = inst.emax_kev + inst.margin_sigmas * float(inst.sigma_kev(inst.emax_kev))
    rest = [line[1] for line in LINES] + [6.4]
    return tuple(i for i, e in enumerate(rest) if e / 1.1 <= hi and e / 0.9 >= lo)


def _unit_sum(counts: jax.Array) -> jax.Array:
    return counts / jnp.sum(counts, axis=-1, keepdims=True)


@functools.partial(jax.jit, static_argnames=("instrument",))
def thermal_spectrum(
    kT_keV: jax.Array | float,
    z: jax.Array | float,
    *,
    abundance: float = 5.0,
    nh_1e22: float = 0.6,
    instrument: Instrument = DEFAULT_INSTRUMENT,
) -> jax.Array:
    """Unit-sum expected spectrum of an absorbed, Doppler-shifted thermal plasma.

    Parameters
    ----------
    kT_keV:
        Plasma temperature in keV, any shape ``(...)`` (broadcast with ``z``).
    z:
        Doppler factor, ``E_obs = E_rest / (1 + z)`` (negative: towards us).
    abundance:
        Scale of all line fluxes (``abundance * EW_l`` keV equivalent width at the peak).
    nh_1e22:
        Absorbing column in 1e22 H cm^-2.
    instrument:
        Channel grid and response.

    Returns
    -------
    Spectra ``(..., n_channels)`` summing to one over the channels.
    """
    kt, z = jnp.broadcast_arrays(jnp.asarray(kT_keV, jnp.float64), jnp.asarray(z, jnp.float64))
    kt, z = kt[..., None], z[..., None]
    fine, _ = instrument.fine_grid
    fine = jnp.asarray(fine)
    density = (1.0 + z) * _bremsstrahlung(fine * (1.0 + z), kt) * _absorption(fine, nh_1e22)
    counts = _fold_continuum(density, instrument)

    keep = list(_band_lines(instrument))
    rest = np.array([line[1] for line in LINES] + [6.4])[keep]
    ew_per_abundance = np.array([line[2] for line in LINES] + [0.0])[keep]
    peak = np.array([line[3] for line in LINES] + [1.0])[keep]
    is_fe_k = np.arange(len(LINES) + 1)[keep] == len(LINES)
    # Fe K 6.4 keV is kT-independent: unit emissivity, continuum of a 2 keV plasma as reference
    emissivity = jnp.where(is_fe_k, 1.0, jnp.exp(-0.5 * (jnp.log(kt / peak) / LINE_LOG_WIDTH) ** 2))
    ew = jnp.where(is_fe_k, FE_K_EW, abundance * ew_per_abundance)
    flux = ew * emissivity * _bremsstrahlung(rest, jnp.where(is_fe_k, 2.0, kt))
    observed = rest / (1.0 + z)
    counts = counts + _fold_lines(observed, flux * _absorption(observed, nh_1e22), tuple(rest), instrument)
    return _unit_sum(counts)


@functools.partial(jax.jit, static_argnames=("instrument",))
def synchrotron_spectrum(
    photon_index: jax.Array | float,
    *,
    nh_1e22: float = 0.6,
    instrument: Instrument = DEFAULT_INSTRUMENT,
) -> jax.Array:
    """Unit-sum expected spectrum ``(..., n_channels)`` of an absorbed power law ``E^{-photon_index}``.

    >>> s = synchrotron_spectrum(jnp.array([1.0, 4.0]))
    >>> bool(s[1, 0] > s[0, 0])  # steeper: more counts at the low end
    True
    """
    gamma = jnp.asarray(photon_index, jnp.float64)[..., None]
    fine, _ = instrument.fine_grid
    fine = jnp.asarray(fine)
    density = fine ** (-gamma) * _absorption(fine, nh_1e22)
    return _unit_sum(_fold_continuum(density, instrument))


@dataclasses.dataclass(frozen=True)
class XrayLibrary:
    """Unit-sum spectra over a grid of physical parameters.

    Attributes
    ----------
    name:
        Component name (``"thermal"``, ``"synchrotron"``).
    spectra:
        ``(N, n_channels)`` unit-sum spectra.
    parameters:
        ``(N, p)`` physical parameters of each spectrum.
    parameter_names:
        Names with units, length ``p``.
    energies_kev:
        Channel centres ``(n_channels,)``.
    grid_shape:
        Shape of the parameter grid (``N = prod(grid_shape)``, C order).
    """

    name: str
    spectra: np.ndarray
    parameters: np.ndarray
    parameter_names: tuple[str, ...]
    energies_kev: np.ndarray
    grid_shape: tuple[int, ...]

    def __post_init__(self) -> None:
        n, c = np.shape(self.spectra)
        if np.shape(self.parameters) != (n, len(self.parameter_names)) or np.shape(self.energies_kev) != (c,):
            raise ValueError("spectra (N, n), parameters (N, p) and energies (n,) do not match")
        if int(np.prod(self.grid_shape)) != n:
            raise ValueError(f"grid_shape {self.grid_shape} does not hold {n} spectra")


def thermal_library(
    n_kt: int = 100,
    n_z: int = 100,
    *,
    kt_range: tuple[float, float] = (0.8, 6.0),
    z_range: tuple[float, float] = (-0.033, 0.033),
    abundance: float = 5.0,
    nh_1e22: float = 0.6,
    instrument: Instrument = DEFAULT_INSTRUMENT,
) -> XrayLibrary:
    """Thermal spectra on a (kT log-spaced) x (z linear) grid; parameters ``(kT_keV, z)``."""
    kt = np.geomspace(*kt_range, n_kt)
    z = np.linspace(*z_range, n_z)
    grid = np.stack(np.meshgrid(kt, z, indexing="ij"), -1).reshape(-1, 2)
    spectra = thermal_spectrum(grid[:, 0], grid[:, 1], abundance=abundance, nh_1e22=nh_1e22, instrument=instrument)
    return XrayLibrary("thermal", np.asarray(spectra), grid, ("kT_keV", "z"), instrument.energies_kev, (n_kt, n_z))


def synchrotron_library(
    n_gamma: int = 300,
    *,
    gamma_range: tuple[float, float] = (1.0, 4.0),
    nh_1e22: float = 0.6,
    instrument: Instrument = DEFAULT_INSTRUMENT,
) -> XrayLibrary:
    """Power-law spectra on a linear photon-index grid; parameter ``(photon_index,)``."""
    gamma = np.linspace(*gamma_range, n_gamma)
    spectra = synchrotron_spectrum(gamma, nh_1e22=nh_1e22, instrument=instrument)
    return XrayLibrary(
        "synchrotron", np.asarray(spectra), gamma[:, None], ("photon_index",), instrument.energies_kev, (n_gamma,)
    )


def _box_affine(ranges, log_parameters) -> tuple[jax.Array, jax.Array, jax.Array]:
    is_log = jnp.asarray(log_parameters)
    lo, hi = (jnp.asarray([r[i] for r in ranges], jnp.float64) for i in (0, 1))
    lo, hi = jnp.where(is_log, jnp.log(lo), lo), jnp.where(is_log, jnp.log(hi), hi)
    return is_log, 0.5 * (lo + hi), 0.5 * (hi - lo)


def to_unit_box(parameters: jax.Array, ranges, log_parameters) -> jax.Array:
    """Physical parameters ``(..., p)`` -> ``[-1, 1]^p`` over ``ranges`` (``(low, high)`` per parameter),
    in log space for the ``log_parameters`` (e.g. kT) and linearly otherwise."""
    is_log, centre, half = _box_affine(ranges, log_parameters)
    p = jnp.asarray(parameters, jnp.float64)
    return (jnp.where(is_log, jnp.log(jnp.where(is_log, p, 1.0)), p) - centre) / half


def from_unit_box(u: jax.Array, ranges, log_parameters) -> jax.Array:
    """Inverse of :func:`to_unit_box`."""
    is_log, centre, half = _box_affine(ranges, log_parameters)
    g = centre + half * jnp.asarray(u)
    return jnp.where(is_log, jnp.exp(g), g)


@dataclasses.dataclass(frozen=True)
class SimulatorComponent:
    """The exact simulator as a :class:`~bayes_unmix.models.component.SpectralComponent`.

    ``theta`` holds standardised physical parameters: ``theta = (g(p) - centre) / half_width`` with
    ``g = log`` for ``kT_keV`` and the identity otherwise, so the training box maps to
    ``[-1, 1]^p`` (:attr:`theta_bounds`) and ``theta = 0`` is its centre. Values outside the box
    are still valid spectra (mild extrapolation).

    >>> comp = SimulatorComponent.thermal()
    >>> [round(float(v), 6) for v in comp.parameters(comp.to_theta(jnp.array([2.0, -0.01])))]
    [2.0, -0.01]
    """

    kind: Literal["thermal", "synchrotron"]
    ranges: tuple[tuple[float, float], ...]
    abundance: float = 5.0
    nh_1e22: float = 0.6
    instrument: Instrument = DEFAULT_INSTRUMENT

    def __post_init__(self) -> None:
        if self.kind not in ("thermal", "synchrotron"):
            raise ValueError(f"unknown simulator component {self.kind!r}; use 'thermal' or 'synchrotron'")
        if len(self.ranges) != len(self.parameter_names) or any(lo >= hi for lo, hi in self.ranges):
            raise ValueError(f"ranges must give one increasing (low, high) pair per parameter {self.parameter_names}")

    @classmethod
    def thermal(
        cls,
        kt_range: tuple[float, float] = (0.8, 6.0),
        z_range: tuple[float, float] = (-0.033, 0.033),
        **kwargs: Any,
    ) -> SimulatorComponent:
        """Thermal component over the SUSHI training box (kT 0.8-6 keV, z +-0.033)."""
        return cls("thermal", (tuple(kt_range), tuple(z_range)), **kwargs)

    @classmethod
    def synchrotron(cls, gamma_range: tuple[float, float] = (1.0, 4.0), **kwargs: Any) -> SimulatorComponent:
        """Synchrotron component over photon index 1-4."""
        return cls("synchrotron", (tuple(gamma_range),), **kwargs)

    @property
    def name(self) -> str:
        return self.kind

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return ("kT_keV", "z") if self.kind == "thermal" else ("photon_index",)

    @property
    def n_latent(self) -> int:
        return len(self.parameter_names)

    @property
    def n_channels(self) -> int:
        return self.instrument.n_channels

    @property
    def energies_kev(self) -> np.ndarray:
        return self.instrument.energies_kev

    @property
    def theta_bounds(self) -> tuple[jax.Array, jax.Array]:
        return -jnp.ones(self.n_latent), jnp.ones(self.n_latent)

    def initial_theta(self) -> jax.Array:
        return jnp.zeros(self.n_latent)

    def _log_parameters(self) -> tuple[bool, ...]:
        return tuple(name == "kT_keV" for name in self.parameter_names)

    def parameters(self, theta: jax.Array) -> jax.Array:
        """Physical parameters ``(..., p)`` of standardised ``theta`` ``(..., p)``."""
        return from_unit_box(theta, self.ranges, self._log_parameters())

    def to_theta(self, parameters: jax.Array) -> jax.Array:
        """Standardised ``theta`` ``(..., p)`` of physical parameters ``(..., p)`` (inverse of :meth:`parameters`)."""
        return to_unit_box(parameters, self.ranges, self._log_parameters())

    def spectra(self, theta: jax.Array) -> jax.Array:
        """Unit-sum spectra ``(..., n_channels)`` at ``theta`` ``(..., p)``."""
        p = self.parameters(theta)
        if self.kind == "thermal":
            return thermal_spectrum(
                p[..., 0], p[..., 1], abundance=self.abundance, nh_1e22=self.nh_1e22, instrument=self.instrument
            )
        return synchrotron_spectrum(p[..., 0], nh_1e22=self.nh_1e22, instrument=self.instrument)
