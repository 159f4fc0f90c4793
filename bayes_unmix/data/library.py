"""Spectral libraries: spectra of several sources over a grid of one physical parameter.

A library on disk is a directory with one sub-folder per nuclide and one spectrum file per value of
the physical parameter, the value being parsed from the file name::

    LIBRARY/Co60/GRS_NaITl_Co60_STEEL5__2mm.dat    ->  nuclide Co60, thickness 5.2 mm
    LIBRARY/Cs137/...

The default pattern reads the published steel-sphere names (``STEEL5__2mm`` = 5.2 mm,
``STEEL0__001mm`` = 0.001 mm); any regular expression with a named group ``value`` (a number where
``__`` or ``p`` may stand for the decimal point) or the groups ``int`` and ``frac`` works.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bayes_unmix.data.io import SpectrumFormatError, read_spectrum

__all__ = ["STEEL_PATTERN", "SpectralLibrary", "load_library", "parse_parameter"]

STEEL_PATTERN = r"STEEL(?P<int>\d+)__(?P<frac>\d+)mm"


@dataclasses.dataclass(frozen=True)
class SpectralLibrary:
    """Spectra of ``S`` sources at ``T`` values of one physical parameter.

    Attributes
    ----------
    spectra:
        Raw spectra ``(S, T, n)`` (counts, or expected counts per decay for simulations).
    nuclides:
        Source names, length ``S``.
    parameter_values:
        Increasing parameter grid ``(T,)``, e.g. shield thickness.
    energies_kev:
        Channel centres ``(n,)`` in keV.
    parameter_name:
        Name with unit, e.g. ``"thickness_mm"``.
    n_decays:
        Decays behind each spectrum ``(S, T)`` when known (simulations): enables efficiencies.
    source:
        Where the library came from.
    """

    spectra: np.ndarray
    nuclides: tuple[str, ...]
    parameter_values: np.ndarray
    energies_kev: np.ndarray
    parameter_name: str = "thickness_mm"
    n_decays: np.ndarray | None = None
    source: str = ""

    def __post_init__(self) -> None:
        s, t, n = np.shape(self.spectra)
        if len(self.nuclides) != s or np.shape(self.parameter_values) != (t,) or np.shape(self.energies_kev) != (n,):
            raise ValueError("spectra must be (nuclides, parameter values, channels) with matching axes")
        if np.any(np.diff(self.parameter_values) <= 0):
            raise ValueError("parameter values must be strictly increasing")
        if self.n_decays is not None and np.shape(self.n_decays) != (s, t):
            raise ValueError("n_decays must have shape (nuclides, parameter values)")

    def select(self, nuclides: Sequence[str]) -> SpectralLibrary:
        """The library restricted to ``nuclides`` (in that order)."""
        unknown = [n for n in nuclides if n not in self.nuclides]
        if unknown:
            raise KeyError(f"unknown nuclide(s) {unknown}; the library has {list(self.nuclides)}")
        idx = [self.nuclides.index(n) for n in nuclides]
        decays = None if self.n_decays is None else self.n_decays[idx]
        return dataclasses.replace(self, spectra=self.spectra[idx], nuclides=tuple(nuclides), n_decays=decays)

    def take(self, indices: Sequence[int] | np.ndarray) -> SpectralLibrary:
        """The library restricted to the parameter values at ``indices`` (sorted)."""
        idx = np.sort(np.asarray(indices))
        decays = None if self.n_decays is None else self.n_decays[:, idx]
        return dataclasses.replace(
            self, spectra=self.spectra[:, idx], parameter_values=self.parameter_values[idx], n_decays=decays
        )

    def index_of(self, value: float) -> int:
        """Index of the grid value closest to ``value``."""
        return int(np.argmin(np.abs(self.parameter_values - value)))


def parse_parameter(name: str, pattern: str = STEEL_PATTERN) -> float:
    """Physical parameter encoded in a file name.

    >>> parse_parameter("GRS_NaITl_Co60_STEEL5__2mm.dat"), parse_parameter("X_STEEL0__001mm.dat")
    (5.2, 0.001)
    >>> parse_parameter("run_t2p5.txt", r"t(?P<value>[0-9p]+)")
    2.5
    """
    match = re.search(pattern, name)
    if match is None:
        raise ValueError(f"file name {name!r} does not match the parameter pattern {pattern!r}")
    groups = match.groupdict()
    if "int" in groups and "frac" in groups:
        return float(f"{groups['int']}.{groups['frac']}")
    if "value" in groups:
        return float(groups["value"].replace("__", ".").replace("p", "."))
    raise ValueError(f"pattern {pattern!r} needs a named group 'value', or groups 'int' and 'frac'")


def load_library(
    directory: str | os.PathLike,
    *,
    nuclides: Sequence[str] | None = None,
    pattern: str = STEEL_PATTERN,
    parameter_name: str = "thickness_mm",
    kev_per_channel: float = 1.0,
    first_channel_kev: float = 1.0,
) -> SpectralLibrary:
    """Load a library directory (one sub-folder per nuclide; see the module docstring).

    Every nuclide must provide the same set of parameter values and the same number of channels.
    Channel ``i`` is centred at ``first_channel_kev + i * kev_per_channel`` (the published NaI
    library: a line at E keV falls in channel E - 1).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"no such library directory: {directory}")
    folders = sorted(p for p in directory.iterdir() if p.is_dir())
    if nuclides is not None:
        missing = [n for n in nuclides if not (directory / n).is_dir()]
        if missing:
            raise KeyError(f"no sub-folder for nuclide(s) {missing} in {directory}")
        folders = [directory / n for n in nuclides]
    if not folders:
        raise ValueError(f"{directory} holds no nuclide sub-folders")

    grids, blocks = [], []
    for folder in folders:
        files = [f for f in folder.iterdir() if f.is_file() and re.search(pattern, f.name)]
        if not files:
            raise ValueError(f"{folder}: no file name matches {pattern!r}")
        values = np.array([parse_parameter(f.name, pattern) for f in files])
        order = np.argsort(values)
        if np.any(np.diff(values[order]) == 0):
            raise ValueError(
                f"{folder}: two files share the parameter value {values[order][np.diff(values[order]) == 0][0]}"
            )
        spectra = [read_spectrum(files[i]).counts for i in order]
        if len({s.size for s in spectra}) != 1:
            raise SpectrumFormatError(f"{folder}: spectra have different numbers of channels")
        grids.append(values[order])
        blocks.append(np.stack(spectra))
    for folder, grid in zip(folders, grids):
        if grid.shape != grids[0].shape or not np.allclose(grid, grids[0]):
            raise ValueError(f"{folder.name} and {folders[0].name} do not cover the same parameter values")
    if len({b.shape[1] for b in blocks}) != 1:
        raise SpectrumFormatError("nuclides have different numbers of channels")
    n = blocks[0].shape[1]
    return SpectralLibrary(
        spectra=np.stack(blocks),
        nuclides=tuple(f.name for f in folders),
        parameter_values=grids[0],
        energies_kev=first_channel_kev + kev_per_channel * np.arange(n),
        parameter_name=parameter_name,
        source=str(directory),
    )
