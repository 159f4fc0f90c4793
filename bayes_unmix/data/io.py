"""Readers for measured spectra: one-count-per-line text, CSV and IAEA SPE. No network access.

Every reader returns a :class:`Spectrum` whose counts are validated: finite, non-negative,
non-empty. Integer-ness is checked where the caller asks for it (Poisson likelihoods need counts).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

__all__ = ["Spectrum", "SpectrumFormatError", "read_counts_txt", "read_csv", "read_spe", "read_spectrum"]


class SpectrumFormatError(ValueError):
    """A spectrum file cannot be read, or its content is not a valid spectrum."""


@dataclasses.dataclass(frozen=True)
class Spectrum:
    """A measured spectrum.

    Attributes
    ----------
    counts:
        Counts per channel, ``(n,)`` float64 (integers for raw detector output).
    energies_kev:
        Channel centres in keV when known (calibration), else ``None``.
    live_time_s:
        Live time in seconds when known.
    source:
        File it came from (for reports).
    """

    counts: np.ndarray
    energies_kev: np.ndarray | None = None
    live_time_s: float | None = None
    source: str = ""

    def __post_init__(self) -> None:
        counts = np.asarray(self.counts, dtype=np.float64)
        where = f" in {self.source}" if self.source else ""
        if counts.ndim != 1 or counts.size == 0:
            raise SpectrumFormatError(f"a spectrum must be a non-empty 1-D array of counts{where}")
        if not np.all(np.isfinite(counts)):
            raise SpectrumFormatError(f"non-finite counts{where} (channel {int(np.argmin(np.isfinite(counts)))})")
        if np.any(counts < 0):
            raise SpectrumFormatError(f"negative counts{where} (channel {int(np.argmax(counts < 0))})")
        if self.energies_kev is not None and np.shape(self.energies_kev) != counts.shape:
            raise SpectrumFormatError(f"energy grid and counts differ in length{where}")
        object.__setattr__(self, "counts", counts)

    @property
    def n_channels(self) -> int:
        return self.counts.size

    def require_integer_counts(self) -> Spectrum:
        """Raise unless all counts are whole numbers (raw detector output, as Poisson models need)."""
        if not np.all(self.counts == np.round(self.counts)):
            bad = int(np.argmax(self.counts != np.round(self.counts)))
            raise SpectrumFormatError(
                f"counts must be integers for a Poisson model (channel {bad} = {self.counts[bad]})"
            )
        if self.counts.sum() == 0:
            raise SpectrumFormatError(f"the spectrum {self.source or ''} is empty (zero counts)".replace("  ", " "))
        return self


def read_counts_txt(path: str | os.PathLike) -> Spectrum:
    """One count per line (the Geant4 library and background format); blank and ``#`` lines ignored."""
    path = Path(path)
    values = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            values.append(float(line))
        except ValueError:
            raise SpectrumFormatError(f"{path}:{number}: expected one number per line, got {line[:40]!r}") from None
    return Spectrum(np.array(values), source=str(path))


def read_csv(path: str | os.PathLike) -> Spectrum:
    """CSV with a ``counts`` column and optionally an ``energy_kev`` column (header required),
    or a single unnamed column of counts."""
    path = Path(path)
    lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
    if not lines:
        raise SpectrumFormatError(f"{path}: empty file")
    first = [c.strip().lower() for c in lines[0].split(",")]
    has_header = not _is_number(first[0])
    names = first if has_header else ["counts"] if len(first) == 1 else None
    if names is None:
        raise SpectrumFormatError(f"{path}: a CSV with several columns needs a header naming 'counts'")
    if "counts" not in names:
        raise SpectrumFormatError(f"{path}: no 'counts' column in header {names}")
    try:
        table = np.array([[float(v) for v in ln.split(",")] for ln in lines[1 if has_header else 0 :]])
    except ValueError as exc:
        raise SpectrumFormatError(f"{path}: non-numeric value: {exc}") from None
    if table.ndim != 2 or table.shape[1] != len(names):
        raise SpectrumFormatError(f"{path}: rows do not all have {len(names)} columns")
    energies = table[:, names.index("energy_kev")] if "energy_kev" in names else None
    return Spectrum(table[:, names.index("counts")], energies_kev=energies, source=str(path))


def read_spe(path: str | os.PathLike) -> Spectrum:
    """IAEA/Maestro ``.spe``: ``$DATA:`` block (first, last channel then counts), ``$MEAS_TIM:``
    (live, real time) and ``$ENER_FIT:`` / ``$MCA_CAL:`` energy calibration when present."""
    path = Path(path)
    sections: dict[str, list[str]] = {}
    current = None
    for line in path.read_text(errors="replace").splitlines():
        line = line.strip()
        if line.startswith("$"):
            current = line.rstrip(":").upper()
            sections[current] = []
        elif current is not None and line:
            sections[current].append(line)
    if "$DATA" not in sections or not sections["$DATA"]:
        raise SpectrumFormatError(f"{path}: no $DATA section (not an SPE file?)")
    try:
        first, last = (int(v) for v in sections["$DATA"][0].split()[:2])
        counts = np.array([float(v) for ln in sections["$DATA"][1:] for v in ln.split()])
    except ValueError as exc:
        raise SpectrumFormatError(f"{path}: malformed $DATA section: {exc}") from None
    if counts.size != last - first + 1:
        raise SpectrumFormatError(f"{path}: $DATA announces {last - first + 1} channels but holds {counts.size}")
    live = float(sections["$MEAS_TIM"][0].split()[0]) if sections.get("$MEAS_TIM") else None
    energies = _spe_calibration(sections, np.arange(first, last + 1, dtype=float))
    return Spectrum(counts, energies_kev=energies, live_time_s=live, source=str(path))


def _spe_calibration(sections: dict[str, list[str]], channels: np.ndarray) -> np.ndarray | None:
    if sections.get("$ENER_FIT"):
        coeffs = [float(v) for v in sections["$ENER_FIT"][0].split()]
    elif len(sections.get("$MCA_CAL", [])) >= 2:
        coeffs = [float(v) for v in sections["$MCA_CAL"][1].split()[: int(sections["$MCA_CAL"][0].split()[0])]]
    else:
        return None
    return sum(c * channels**k for k, c in enumerate(coeffs))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_spectrum(path: str | os.PathLike) -> Spectrum:
    """Read a spectrum, choosing the reader by extension (``.spe``, ``.csv``; anything else is one
    count per line)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such spectrum file: {path}")
    suffix = path.suffix.lower()
    if suffix == ".spe":
        return read_spe(path)
    if suffix == ".csv":
        return read_csv(path)
    return read_counts_txt(path)
