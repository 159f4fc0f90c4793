"""X-ray hyperspectral count cubes: container, validation, toy generators with ground truth, readers.

A :class:`Cube` holds counts ``(n_channels, height, width)`` (the (E, y, x) layout of the SUSHI toy
model) and the channel energies. Generated cubes carry a :class:`CubeTruth`: per-component
amplitude maps (expected counts per pixel), physical-parameter maps (NaN where undefined) and the
expected cubes. Files: ``.npy`` (counts only), ``.npz`` (keys ``counts``, optional
``energies_kev``) and FITS (primary HDU = cube, energies in an ``ENERGIES`` table HDU or a linear
WCS on axis 3).

>>> cube = toy_remnant_cube(0, size=24, radius=10.0)
>>> cube.counts.shape, cube.truth.component_names
((375, 24, 24), ('thermal', 'synchrotron'))
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from bayes_unmix.data.xray import DEFAULT_INSTRUMENT, SimulatorComponent

__all__ = [
    "Cube",
    "CubeFormatError",
    "CubeTruth",
    "block_average",
    "load_cube",
    "save_cube",
    "sgmca_cube",
    "toy_remnant_cube",
    "validate_counts",
]

_FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz")


class CubeFormatError(ValueError):
    """A cube file cannot be read, or its content is not a valid count cube."""


def validate_counts(counts: np.ndarray, *, require_integer: bool = True, where: str = "") -> np.ndarray:
    """Check a count cube ``(n_channels, height, width)`` and return it as float64.

    Raises :class:`CubeFormatError` unless it is 3-D, non-empty, finite, non-negative, holds at
    least one count and (with ``require_integer``) only whole numbers.
    """
    where = f" in {where}" if where else ""
    counts = np.asarray(counts)
    if counts.ndim != 3:
        raise CubeFormatError(f"a cube must be 3-D (n_channels, height, width), got shape {counts.shape}{where}")
    if counts.size == 0:
        raise CubeFormatError(f"the cube is empty (shape {counts.shape}){where}")
    if not np.issubdtype(counts.dtype, np.number) or np.iscomplexobj(counts):
        raise CubeFormatError(f"counts must be real numbers, got dtype {counts.dtype}{where}")
    counts = counts.astype(np.float64)
    if not np.all(np.isfinite(counts)):
        raise CubeFormatError(f"non-finite counts at index {np.argwhere(~np.isfinite(counts))[0].tolist()}{where}")
    if np.any(counts < 0):
        raise CubeFormatError(f"negative counts at index {np.argwhere(counts < 0)[0].tolist()}{where}")
    if require_integer and np.any(counts != np.round(counts)):
        bad = np.argwhere(counts != np.round(counts))[0].tolist()
        raise CubeFormatError(f"counts must be integers for a Poisson model (index {bad}){where}")
    if counts.sum() == 0:
        raise CubeFormatError(f"the cube holds no counts{where}")
    return counts


@dataclasses.dataclass(frozen=True)
class CubeTruth:
    """Ground truth of a simulated cube.

    Attributes
    ----------
    component_names:
        Names ``C``, e.g. ``("thermal", "synchrotron")``.
    amplitudes:
        Expected counts per pixel of each component, ``(C, H, W)``.
    parameters:
        ``{component: (p, H, W)}`` physical-parameter maps in the order of ``parameter_names``,
        NaN where the component is absent.
    parameter_names:
        ``{component: names}``, e.g. ``{"thermal": ("kT_keV", "z")}``.
    expected:
        Expected counts of each component, ``(C, n_channels, H, W)``.
    mask:
        Pixels inside the source, ``(H, W)`` bool.
    """

    component_names: tuple[str, ...]
    amplitudes: np.ndarray
    parameters: dict[str, np.ndarray]
    parameter_names: dict[str, tuple[str, ...]]
    expected: np.ndarray
    mask: np.ndarray

    @property
    def total(self) -> np.ndarray:
        """Expected counts of the whole mixture, ``(n_channels, H, W)``."""
        return self.expected.sum(axis=0)

    def parameter(self, name: str) -> np.ndarray:
        """The ``(H, W)`` map of one physical parameter, e.g. ``"kT_keV"``."""
        for comp, names in self.parameter_names.items():
            if name in names:
                return self.parameters[comp][names.index(name)]
        raise KeyError(f"no parameter {name!r}; have {[n for v in self.parameter_names.values() for n in v]}")


@dataclasses.dataclass(frozen=True)
class Cube:
    """A count cube with its channel energies.

    Attributes
    ----------
    counts:
        ``(n_channels, height, width)`` float64 counts (validated, see :func:`validate_counts`).
    energies_kev:
        Channel centres ``(n_channels,)`` in keV.
    truth:
        Ground truth when simulated, else ``None``.
    source:
        Where the cube came from.
    """

    counts: np.ndarray
    energies_kev: np.ndarray
    truth: CubeTruth | None = None
    source: str = ""

    def __post_init__(self) -> None:
        counts = validate_counts(self.counts, require_integer=False, where=self.source)
        energies = np.asarray(self.energies_kev, dtype=np.float64)
        if energies.shape != counts.shape[:1]:
            raise CubeFormatError(
                f"energies_kev has {energies.size} values but the cube has {counts.shape[0]} channels"
            )
        if not np.all(np.isfinite(energies)) or np.any(np.diff(energies) <= 0):
            raise CubeFormatError("energies_kev must be finite and strictly increasing")
        object.__setattr__(self, "counts", counts)
        object.__setattr__(self, "energies_kev", energies)

    @property
    def n_channels(self) -> int:
        return self.counts.shape[0]

    @property
    def image_shape(self) -> tuple[int, int]:
        return self.counts.shape[1], self.counts.shape[2]

    def pixels(self) -> np.ndarray:
        """Counts as ``(height * width, n_channels)`` rows (C order over y, x)."""
        return self.counts.reshape(self.n_channels, -1).T


# --------------------------------------------------------------------------- generators


def _random_field(rng: np.random.Generator, size: int, length_px: float) -> np.ndarray:
    """Zero-mean, unit-variance Gaussian random field with a Gaussian correlation of ``length_px``."""
    freq = np.fft.fftfreq(size)
    k2 = freq[:, None] ** 2 + freq[None, :] ** 2
    field = np.fft.ifft2(np.fft.fft2(rng.standard_normal((size, size))) * np.exp(-2 * np.pi**2 * length_px**2 * k2))
    field = field.real
    return (field - field.mean()) / field.std()


def _projected_shell(r: np.ndarray, inner: float) -> np.ndarray:
    """Path length through a uniform shell ``inner < r < 1`` seen in projection (max-normalised)."""
    path = np.sqrt(np.clip(1 - r**2, 0, None)) - np.sqrt(np.clip(inner**2 - r**2, 0, None))
    return path / path.max()


def _expected_cube(params: dict[str, np.ndarray], amplitudes: np.ndarray, components) -> np.ndarray:
    """``(C, n_channels, H, W)`` expected counts; NaN parameters only occur where amplitudes are 0."""
    out = []
    for comp, amp in zip(components, amplitudes):
        p = np.moveaxis(params[comp.name], 0, -1)
        p = np.where(np.isnan(p), np.asarray(comp.parameters(comp.initial_theta())), p)
        out.append(np.moveaxis(np.asarray(comp.spectra(comp.to_theta(p))), -1, 0) * amp)
    return np.stack(out)


def _finish(seed: int, amp_th, amp_sy, params, mask, *, peak_counts, synchrotron_share, components, source) -> Cube:
    if peak_counts <= 0 or not 0 <= synchrotron_share < 1:
        raise ValueError("need peak_counts > 0 and 0 <= synchrotron_share < 1")
    thermal, synchrotron = components or (SimulatorComponent.thermal(), SimulatorComponent.synchrotron())
    if (thermal.name, synchrotron.name) != ("thermal", "synchrotron"):
        raise ValueError("components must be a (thermal, synchrotron) pair of SimulatorComponent")
    amp_th = amp_th / amp_th.sum() * (1 - synchrotron_share)
    amp_sy = amp_sy / max(amp_sy.sum(), 1e-300) * synchrotron_share
    amplitudes = np.stack([amp_th, amp_sy]) * peak_counts / np.max(amp_th + amp_sy)
    expected = _expected_cube(params, amplitudes, (thermal, synchrotron))
    counts = np.random.default_rng(seed).poisson(expected.sum(0)).astype(np.float64)
    names = {"thermal": thermal.parameter_names, "synchrotron": synchrotron.parameter_names}
    truth = CubeTruth(("thermal", "synchrotron"), amplitudes, params, names, expected, mask)
    return Cube(counts, thermal.energies_kev, truth, source)


def toy_remnant_cube(
    seed: int = 0,
    *,
    size: int = 94,
    radius: float = 41.0,
    peak_counts: float = 800.0,
    synchrotron_share: float = 0.3,
    components: tuple[SimulatorComponent, SimulatorComponent] | None = None,
    parameter_texture: tuple[float, float] = (0.0, 0.0),
) -> Cube:
    """A supernova-remnant-like toy cube (thermal + synchrotron) with ground truth.

    Geometry: a disk of ``radius`` px centred on the image. Thermal emission fills a projected
    shell (inner radius 0.55 R) with clumpy texture; synchrotron is a thin limb-brightened rim
    (0.92-1 R), brighter along one axis (bilateral), with filamentary texture. Parameter maps:
    ``kT`` 1-3.6 keV rising outwards plus small-scale texture; ``z = -0.001 - 0.015 sqrt(1 - r^2)``
    (-0.016 at the centre, -0.001 at the rim); photon index 2.2-2.8, a smooth gradient. Outside the
    disk amplitudes are 0 and parameters NaN.

    Parameters
    ----------
    seed:
        Seed of the textures and of the Poisson draw.
    peak_counts:
        Expected counts (whole band) of the brightest pixel.
    synchrotron_share:
        Fraction of all expected counts from synchrotron.
    components:
        ``(thermal, synchrotron)`` simulators (default: the default instrument, abundance 5,
        N_H 0.6e22 cm^-2).
    parameter_texture:
        Standard deviations of pixel-scale texture added to the z and photon-index maps (default none:
        smooth gradients), for studies of how interval coverage depends on the truth's roughness. Drawn
        after every other random field, so the cube with ``(0, 0)`` is unchanged.

    Returns
    -------
    :class:`Cube` of shape ``(n_channels, size, size)`` with :class:`CubeTruth`.
    """
    if size < 4 or not 0 < radius < size / 2:
        raise ValueError(f"need size >= 4 and 0 < radius < size / 2, got size={size}, radius={radius}")
    rng = np.random.default_rng([seed, 1])
    centre = (size - 1) / 2
    y, x = np.mgrid[:size, :size] - centre
    r, phi = np.hypot(x, y) / radius, np.arctan2(y, x)
    mask = r < 1
    fine, smooth = _random_field(rng, size, 1.5 * size / 94), _random_field(rng, size, 10 * size / 94)
    filaments = _random_field(rng, size, 1.0 * size / 94)

    amp_th = _projected_shell(r, 0.55) * np.exp(0.2 * fine + 0.15 * smooth)
    bilateral = 0.25 + 0.75 * np.cos(phi - 0.6) ** 2
    amp_sy = _projected_shell(r, 0.92) * bilateral * np.exp(0.5 * filaments)
    amp_th, amp_sy = np.where(mask, amp_th, 0.0), np.where(mask, amp_sy, 0.0)

    kt = np.clip(1.5 + 1.1 * r**2 + 0.3 * fine + 0.2 * smooth, 1.0, 3.6)
    z = -0.001 - 0.015 * np.sqrt(np.clip(1 - r**2, 0, None))
    gamma = np.clip(2.5 + 0.25 * r * np.cos(phi + 1.0) + 0.03 * smooth, 2.2, 2.8)
    tex_z, tex_gamma = parameter_texture
    if tex_z or tex_gamma:
        z = z + tex_z * _random_field(rng, size, 1.5 * size / 94)
        gamma = np.clip(gamma + tex_gamma * _random_field(rng, size, 1.5 * size / 94), 1.2, 3.8)
    nan = np.full((size, size), np.nan)
    params = {
        "thermal": np.stack([np.where(mask, kt, nan), np.where(mask, z, nan)]),
        "synchrotron": np.where(mask, gamma, nan)[None],
    }
    return _finish(
        seed,
        amp_th,
        amp_sy,
        params,
        mask,
        peak_counts=peak_counts,
        synchrotron_share=synchrotron_share,
        components=components,
        source=f"toy_remnant_cube(seed={seed}, size={size})",
    )


def block_average(image: np.ndarray, size: int) -> np.ndarray:
    """Area-weighted average of a square ``(N, N)`` image onto ``(size, size)`` pixels (any ratio).

    Each output pixel averages the input pixels it covers, weighted by the overlap area, so the
    mean is preserved (the sum scales by ``(size / N)^2``).

    >>> block_average(np.arange(16.0).reshape(4, 4), 2).tolist()
    [[2.5, 4.5], [10.5, 12.5]]
    """
    image = np.asarray(image, dtype=np.float64)
    n = image.shape[0]
    if image.ndim != 2 or image.shape[1] != n or not 1 <= size <= n:
        raise ValueError(f"need a square 2-D image at least {size} px wide, got shape {image.shape}")
    edges_out = np.linspace(0.0, n, size + 1)
    lo = np.maximum(edges_out[:-1, None], np.arange(n)[None, :])
    hi = np.minimum(edges_out[1:, None], np.arange(1, n + 1)[None, :])
    overlap = np.clip(hi - lo, 0.0, None)
    overlap /= overlap.sum(axis=1, keepdims=True)
    return overlap @ image @ overlap.T


def sgmca_cube(
    path: str | os.PathLike,
    seed: int = 0,
    size: int = 94,
    *,
    peak_counts: float = 800.0,
    synchrotron_share: float = 0.3,
    components: tuple[SimulatorComponent, SimulatorComponent] | None = None,
) -> Cube:
    """A cube whose amplitude maps are the sGMCA remnant morphologies (``source_maps.npz``).

    The 346 x 346 ``therm`` and ``sync`` maps are block-averaged to ``size`` px and used as the
    thermal and synchrotron amplitudes. Parameter maps (design choices): ``kT`` 1-3.6 keV, hotter
    where the iron maps ``fe1 + fe2`` are bright, plus texture; ``z`` from the contrast of the two
    iron components (``fe1`` blue-shifted, ``fe2`` red-shifted, within +-0.015); photon index
    2.2-2.8 as a smooth gradient. Parameters are NaN where their component's amplitude is zero.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no source-map file {path} (expected shared/data/xray_sgmca/source_maps.npz)")
    with np.load(path) as data:
        missing = {"sync", "therm", "fe1", "fe2"} - set(data.files)
        if missing:
            raise CubeFormatError(f"{path}: missing maps {sorted(missing)}")
        maps = {k: block_average(data[k], size) for k in ("sync", "therm", "fe1", "fe2")}
    rng = np.random.default_rng([seed, 2])
    fine, smooth = _random_field(rng, size, 1.5 * size / 94), _random_field(rng, size, 10 * size / 94)
    blur = _blur(maps["fe1"], 2.0), _blur(maps["fe2"], 2.0)
    iron = (blur[0] + blur[1]) / max(float(np.max(blur[0] + blur[1])), 1e-300)
    contrast = (blur[0] - blur[1]) / (blur[0] + blur[1] + 0.05 * float(np.max(blur[0] + blur[1])))
    kt = np.clip(1.3 + 1.8 * np.sqrt(iron) + 0.25 * fine + 0.15 * smooth, 1.0, 3.6)
    z = -0.015 * contrast
    yy, xx = (np.mgrid[:size, :size] - (size - 1) / 2) / (size / 2)
    gamma = np.clip(2.5 + 0.25 * np.clip(0.7 * xx + 0.7 * yy, -1.0, 1.0) + 0.03 * smooth, 2.2, 2.8)
    th_on, sy_on = maps["therm"] > 0, maps["sync"] > 0
    params = {
        "thermal": np.stack([np.where(th_on, kt, np.nan), np.where(th_on, z, np.nan)]),
        "synchrotron": np.where(sy_on, gamma, np.nan)[None],
    }
    return _finish(
        seed,
        maps["therm"],
        maps["sync"],
        params,
        th_on | sy_on,
        peak_counts=peak_counts,
        synchrotron_share=synchrotron_share,
        components=components,
        source=f"sgmca_cube({path.name}, seed={seed}, size={size})",
    )


def _blur(image: np.ndarray, sigma_px: float) -> np.ndarray:
    """Gaussian blur by FFT (periodic boundaries; the maps are zero near their edges)."""
    fy, fx = np.fft.fftfreq(image.shape[0]), np.fft.fftfreq(image.shape[1])
    kernel = np.exp(-2 * np.pi**2 * sigma_px**2 * (fy[:, None] ** 2 + fx[None, :] ** 2))
    return np.clip(np.fft.ifft2(np.fft.fft2(image) * kernel).real, 0.0, None)


# --------------------------------------------------------------------------- files


def _kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(_FITS_SUFFIXES):
        return "fits"
    if path.suffix.lower() in (".npy", ".npz"):
        return path.suffix.lower()[1:]
    raise CubeFormatError(f"{path}: unknown cube format; use .npy, .npz or .fits")


def save_cube(cube: Cube, path: str | os.PathLike) -> Path:
    """Write the counts (and energies, except for ``.npy``) of ``cube``; the truth is not saved."""
    path = Path(path)
    kind = _kind(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "npy":
        np.save(path, cube.counts)
    elif kind == "npz":
        np.savez(path, counts=cube.counts, energies_kev=cube.energies_kev)
    else:
        from astropy.io import fits

        primary = fits.PrimaryHDU(cube.counts)
        primary.header["BUNIT"] = "count"
        primary.header["CTYPE3"] = "ENERGY"
        primary.header["CUNIT3"] = "keV"
        column = fits.Column(name="ENERGY", format="D", unit="keV", array=cube.energies_kev)
        energies = fits.BinTableHDU.from_columns([column], name="ENERGIES")
        fits.HDUList([primary, energies]).writeto(path, overwrite=True)
    return path


def _read_fits(path: Path) -> tuple[np.ndarray, np.ndarray | None]:
    from astropy.io import fits

    try:
        with fits.open(path, memmap=False) as hdus:
            counts = None if hdus[0].data is None else np.array(hdus[0].data, dtype=np.float64)
            header = hdus[0].header
            if "ENERGIES" in hdus:
                return counts, np.array(hdus["ENERGIES"].data["ENERGY"], dtype=np.float64)
            if counts is not None and counts.ndim == 3 and all(k in header for k in ("CRVAL3", "CDELT3")):
                pix = np.arange(counts.shape[0]) + 1.0 - header.get("CRPIX3", 1.0)
                return counts, header["CRVAL3"] + header["CDELT3"] * pix
            return counts, None
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise CubeFormatError(f"{path}: not a readable FITS cube: {exc}") from exc


def _read_numpy(path: Path, kind: str) -> tuple[np.ndarray, np.ndarray | None]:
    if kind == "npy":
        return np.load(path, allow_pickle=False), None
    with np.load(path, allow_pickle=False) as data:
        if "counts" not in data.files:
            raise CubeFormatError(f"{path}: no 'counts' array (keys: {data.files})")
        return data["counts"], (data["energies_kev"] if "energies_kev" in data.files else None)


def load_cube(path: str | os.PathLike, *, energies_kev: np.ndarray | None = None, require_integer: bool = True) -> Cube:
    """Read a count cube ``(n_channels, height, width)`` from ``.npy``, ``.npz`` or FITS.

    Energies come from the file (``energies_kev`` key, ``ENERGIES`` HDU or axis-3 WCS), else from
    the ``energies_kev`` argument, else the default 375-channel grid when the cube has 375 channels.
    Raises :class:`CubeFormatError` for unreadable files or invalid counts (see
    :func:`validate_counts`).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such cube file: {path}")
    kind = _kind(path)
    file_energies = None
    if kind == "fits":
        counts, file_energies = _read_fits(path)
    else:
        try:
            counts, file_energies = _read_numpy(path, kind)
        except (OSError, ValueError, EOFError) as exc:
            if isinstance(exc, CubeFormatError):
                raise
            raise CubeFormatError(f"{path}: not a readable {kind} cube: {exc}") from exc
    if counts is None:
        raise CubeFormatError(f"{path}: the primary HDU holds no data")
    counts = validate_counts(counts, require_integer=require_integer, where=str(path))
    energies = file_energies if file_energies is not None else energies_kev
    if energies is None:
        if counts.shape[0] != DEFAULT_INSTRUMENT.n_channels:
            raise CubeFormatError(f"{path}: no channel energies in the file; pass energies_kev")
        energies = DEFAULT_INSTRUMENT.energies_kev
    return Cube(counts, np.asarray(energies, dtype=np.float64), None, str(path))
