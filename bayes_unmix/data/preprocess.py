"""Recorded preprocessing: the same energy window and binning for library signatures and for raw
measured spectra.

A :class:`Preprocessing` is saved with every trained model (as JSON) so that a raw detector
spectrum is brought onto the model's channel grid by exactly the steps the training spectra went
through:

1. **window**: keep raw channels whose centre lies in ``[emin_kev, emax_kev)``;
2. **rebin**: sum groups of ``rebin`` adjacent channels (counts stay integers);

and, for library signatures only (a measured spectrum keeps its Poisson counts):

3. **floor**: ``x <- max(x, floor * max x)`` (SEMSUN: 1e-6);
4. **support**: zero the channels above a per-nuclide maximum channel (``max_channel``);
5. **normalise**: unit sum over the window.

The SEMSUN recipe is :meth:`Preprocessing.semsun`: 18-1618 keV at 2 keV per channel (800 channels).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np

__all__ = ["ChannelMismatchError", "Preprocessing"]


class ChannelMismatchError(ValueError):
    """A spectrum does not have the number of channels (or energy grid) a model expects."""


@dataclasses.dataclass(frozen=True)
class Preprocessing:
    """Energy window, binning and signature normalisation (see the module docstring).

    Attributes
    ----------
    raw_channels:
        Number of channels of the raw spectra this pipeline accepts.
    first_channel_kev, kev_per_channel:
        Raw energy calibration: channel ``i`` is centred at ``first + i * kev_per_channel``.
    emin_kev, emax_kev:
        Energy window (keV); ``None`` means the whole raw range.
    rebin:
        Number of raw channels summed into one.
    floor:
        Relative floor of signatures.
    max_channel:
        Per-nuclide number of leading (preprocessed) channels kept in that nuclide's signature.
    """

    raw_channels: int
    first_channel_kev: float = 1.0
    kev_per_channel: float = 1.0
    emin_kev: float | None = None
    emax_kev: float | None = None
    rebin: int = 1
    floor: float = 1e-6
    max_channel: Mapping[str, int] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.rebin < 1 or self.raw_channels < 1:
            raise ValueError("rebin and raw_channels must be positive")
        if self.n_channels < 2:
            raise ValueError(f"the window [{self.emin_kev}, {self.emax_kev}) keV keeps fewer than 2 channels")
        object.__setattr__(self, "max_channel", dict(self.max_channel))

    @classmethod
    def semsun(cls, raw_channels: int = 2998) -> Preprocessing:
        """SEMSUN: 18-1618 keV, pairs of 1 keV channels summed (800 channels), floor 1e-6, per-nuclide
        supports Co60 800, Ba133 250, Co57 100, Cs137 400 channels."""
        return cls(
            raw_channels=raw_channels,
            emin_kev=18.0,
            emax_kev=1618.0,
            rebin=2,
            max_channel={"Co60": 800, "Ba133": 250, "Co57": 100, "Cs137": 400},
        )

    @property
    def _raw_slice(self) -> slice:
        centres = self.first_channel_kev + self.kev_per_channel * np.arange(self.raw_channels)
        keep = np.ones(self.raw_channels, bool)
        if self.emin_kev is not None:
            keep &= centres >= self.emin_kev - 1e-9
        if self.emax_kev is not None:
            keep &= centres < self.emax_kev - 1e-9
        first = int(np.argmax(keep)) if keep.any() else 0
        n = (int(keep.sum()) // self.rebin) * self.rebin
        return slice(first, first + n)

    @property
    def n_channels(self) -> int:
        """Number of channels after windowing and rebinning."""
        s = self._raw_slice
        return (s.stop - s.start) // self.rebin

    @property
    def energies_kev(self) -> np.ndarray:
        """Centres of the preprocessed channels (keV)."""
        raw = self.first_channel_kev + self.kev_per_channel * np.arange(self.raw_channels)[self._raw_slice]
        return raw.reshape(-1, self.rebin).mean(axis=1)

    def window(self, counts: np.ndarray) -> np.ndarray:
        """Window and rebin raw spectra ``(..., raw_channels)`` to ``(..., n_channels)``; sums are kept,
        so raw counts stay counts."""
        counts = np.asarray(counts, dtype=np.float64)
        if counts.shape[-1] != self.raw_channels:
            raise ChannelMismatchError(
                f"spectrum has {counts.shape[-1]} channels but the model expects raw spectra of "
                f"{self.raw_channels} channels ({self.kev_per_channel:g} keV each from {self.first_channel_kev:g} keV)"
            )
        kept = counts[..., self._raw_slice]
        return kept.reshape(*kept.shape[:-1], self.n_channels, self.rebin).sum(axis=-1)

    def signatures(self, counts: np.ndarray, nuclide: str | None = None) -> np.ndarray:
        """Model signatures from raw library spectra ``(..., raw_channels)``: window, rebin, floor,
        support of ``nuclide``, unit sum."""
        x = self.window(counts)
        x = np.maximum(x, self.floor * x.max(axis=-1, keepdims=True))
        if nuclide is not None and nuclide in self.max_channel:
            x[..., self.max_channel[nuclide] :] = 0.0
        total = x.sum(axis=-1, keepdims=True)
        if np.any(total <= 0):
            raise ValueError("a library spectrum has no counts inside the energy window")
        return x / total

    def background(self, counts: np.ndarray) -> np.ndarray:
        """Unit-sum background signature from a measured or simulated raw background.

        The background may have a different number of raw channels (same calibration): it is cut,
        or padded with zeros, to ``raw_channels``; the window must lie inside its measured range.
        """
        counts = np.asarray(counts, dtype=np.float64)
        if counts.ndim != 1:
            raise ChannelMismatchError("a background must be one spectrum")
        if counts.size < self._raw_slice.stop:
            raise ChannelMismatchError(
                f"the background has {counts.size} channels but the model's window needs {self._raw_slice.stop}"
            )
        raw = np.zeros(self.raw_channels)
        raw[: min(counts.size, self.raw_channels)] = counts[: self.raw_channels]
        windowed = self.window(raw)
        if windowed.sum() <= 0:
            raise ValueError("the background has no counts inside the model's energy window")
        return windowed / windowed.sum()

    def support(self, nuclide: str) -> np.ndarray:
        """Boolean mask of the channels where ``nuclide``'s signature may be non-zero."""
        mask = np.ones(self.n_channels, bool)
        mask[self.max_channel.get(nuclide, self.n_channels) :] = False
        return mask

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self) | {"max_channel": dict(self.max_channel)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Preprocessing:
        return cls(**d)
