"""Cube container, toy generators with ground truth, and NumPy/FITS readers (bayes_unmix.data.cube)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bayes_unmix.data.cube import (
    Cube,
    CubeFormatError,
    block_average,
    load_cube,
    save_cube,
    sgmca_cube,
    toy_remnant_cube,
    validate_counts,
)
from bayes_unmix.data.xray import DEFAULT_INSTRUMENT, synchrotron_spectrum, thermal_spectrum

SOURCE_MAPS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "xray_sgmca" / "source_maps.npz"


@pytest.fixture(scope="module")
def small() -> Cube:
    return toy_remnant_cube(3, size=32, radius=13.0)


def test_toy_truth_is_consistent(small):
    truth = small.truth
    assert small.counts.shape == (375, 32, 32) and np.all(small.counts == np.round(small.counts))
    assert truth.expected.shape == (2, 375, 32, 32) and truth.amplitudes.shape == (2, 32, 32)
    assert np.allclose(truth.expected.sum(axis=1), truth.amplitudes)
    # Poisson: the total count is within 5 sigma of its expectation
    assert abs(small.counts.sum() - truth.total.sum()) < 5 * np.sqrt(truth.total.sum())
    # one pixel's spectrum is exactly the mixture of the simulator spectra at its parameters
    y, x = 16, 25
    kt, z = truth.parameters["thermal"][:, y, x]
    (gamma,) = truth.parameters["synchrotron"][:, y, x]
    model = truth.amplitudes[0, y, x] * np.asarray(thermal_spectrum(kt, z))
    model += truth.amplitudes[1, y, x] * np.asarray(synchrotron_spectrum(gamma))
    assert np.allclose(truth.total[:, y, x], model, rtol=1e-10)


def test_toy_parameter_maps(small):
    truth = small.truth
    assert np.all(np.isnan(truth.parameter("kT_keV")[~truth.mask])) and not np.any(truth.amplitudes[:, ~truth.mask])
    kt, z, gamma = (truth.parameter(n)[truth.mask] for n in ("kT_keV", "z", "photon_index"))
    assert 1.0 <= kt.min() and kt.max() <= 3.6 and kt.max() - kt.min() > 1.0
    assert z.min() == pytest.approx(-0.016, abs=1e-3) and z.max() == pytest.approx(-0.001, abs=2e-3)
    assert 2.2 <= gamma.min() < 2.4 and 2.6 < gamma.max() <= 2.8
    with pytest.raises(KeyError, match="no parameter"):
        truth.parameter("abundance")


def test_toy_default_brightness():
    """The SUSHI toy facts: 94 x 94, a few hundred counts in bright pixels, 2-15 counts/channel at 3 keV."""
    cube = toy_remnant_cube(0)
    assert cube.counts.shape == (375, 94, 94) and cube.truth.mask.sum() == pytest.approx(np.pi * 41**2, rel=0.02)
    total = cube.truth.total.sum(0)
    bright = total > np.quantile(total[cube.truth.mask], 0.9)
    assert 200 < total[bright].mean() < 800
    at_3kev = cube.truth.total[:5, bright].mean(0)
    assert 2 < np.median(at_3kev) and at_3kev.max() < 15
    assert cube.truth.total[-5:, bright].mean() < 0.3  # ~0 counts per channel at 8 keV


def test_seeds(small):
    again = toy_remnant_cube(3, size=32, radius=13.0)
    other = toy_remnant_cube(4, size=32, radius=13.0)
    assert np.array_equal(again.counts, small.counts)
    assert not np.array_equal(other.counts, small.counts)


def test_block_average_preserves_mean():
    rng = np.random.default_rng(0)
    image = rng.random((346, 346))
    small = block_average(image, 94)
    assert small.shape == (94, 94) and small.mean() == pytest.approx(image.mean(), rel=1e-12)
    assert np.allclose(block_average(np.ones((10, 10)), 3), 1.0)
    with pytest.raises(ValueError, match="square"):
        block_average(np.ones((4, 5)), 2)


@pytest.mark.skipif(not SOURCE_MAPS.is_file(), reason="shared sGMCA source maps not available")
def test_sgmca_cube():
    cube = sgmca_cube(SOURCE_MAPS, seed=1, size=47)
    truth = cube.truth
    assert cube.counts.shape == (375, 47, 47)
    with np.load(SOURCE_MAPS) as maps:
        therm = block_average(maps["therm"], 47)
    # the thermal amplitude map is the block-averaged sGMCA map, rescaled
    ratio = truth.amplitudes[0][therm > 0] / therm[therm > 0]
    assert np.allclose(ratio, ratio[0], rtol=1e-10)
    assert np.all(np.isnan(truth.parameter("kT_keV")[therm == 0]))
    assert np.nanmax(np.abs(truth.parameter("z"))) <= 0.033


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".fits"])
def test_round_trip(small, tmp_path, suffix):
    loaded = load_cube(save_cube(small, tmp_path / f"cube{suffix}"))
    assert np.array_equal(loaded.counts, small.counts) and loaded.counts.dtype == np.float64
    assert np.allclose(loaded.energies_kev, small.energies_kev) and loaded.truth is None


def test_fits_energies_from_wcs(tmp_path):
    from astropy.io import fits

    counts = np.ones((10, 3, 4))
    hdu = fits.PrimaryHDU(counts)
    hdu.header.update(CRVAL3=1.0, CDELT3=0.5, CRPIX3=1.0)
    hdu.writeto(tmp_path / "wcs.fits")
    cube = load_cube(tmp_path / "wcs.fits")
    assert cube.counts.shape == (10, 3, 4) and np.allclose(cube.energies_kev, 1.0 + 0.5 * np.arange(10))


def test_npy_needs_energies_unless_default_grid(tmp_path):
    np.save(tmp_path / "c.npy", np.ones((20, 2, 2)))
    with pytest.raises(CubeFormatError, match="pass energies_kev"):
        load_cube(tmp_path / "c.npy")
    assert load_cube(tmp_path / "c.npy", energies_kev=np.arange(20.0) + 1).n_channels == 20
    np.save(tmp_path / "d.npy", np.ones((375, 2, 2)))
    assert np.allclose(load_cube(tmp_path / "d.npy").energies_kev, DEFAULT_INSTRUMENT.energies_kev)


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        (np.ones((4, 4)), "must be 3-D"),
        (np.ones((0, 2, 2)), "empty"),
        (np.zeros((3, 2, 2)), "no counts"),
        (-np.ones((3, 2, 2)), "negative"),
        (np.full((3, 2, 2), np.nan), "non-finite"),
        (np.full((3, 2, 2), 1.5), "integers"),
    ],
)
def test_invalid_counts(tmp_path, counts, message):
    with pytest.raises(CubeFormatError, match=message):
        validate_counts(counts)
    np.savez(tmp_path / "bad.npz", counts=counts, energies_kev=np.arange(counts.shape[0]) + 1.0)
    with pytest.raises(CubeFormatError, match=message):
        load_cube(tmp_path / "bad.npz")


def test_bad_files(tmp_path):
    with pytest.raises(CubeFormatError, match="energies_kev has 3 values"):
        Cube(np.ones((4, 2, 2)), np.arange(3.0))
    np.savez(tmp_path / "nocounts.npz", data=np.ones((3, 2, 2)))
    with pytest.raises(CubeFormatError, match="no 'counts'"):
        load_cube(tmp_path / "nocounts.npz")
    (tmp_path / "junk.fits").write_bytes(b"not a fits file")
    with pytest.raises(CubeFormatError, match="FITS"):
        load_cube(tmp_path / "junk.fits")
    (tmp_path / "cube.txt").write_text("1 2 3")
    with pytest.raises(CubeFormatError, match="unknown cube format"):
        load_cube(tmp_path / "cube.txt")
    with pytest.raises(FileNotFoundError):
        load_cube(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match="radius"):
        toy_remnant_cube(0, size=10, radius=8.0)


def test_parameter_texture_roughens_only_the_z_and_photon_index_truths():
    plain = toy_remnant_cube(3, size=32, radius=13.0)
    assert_same = np.testing.assert_array_equal
    assert_same(toy_remnant_cube(3, size=32, radius=13.0, parameter_texture=(0.0, 0.0)).counts, plain.counts)
    rough = toy_remnant_cube(3, size=32, radius=13.0, parameter_texture=(0.004, 0.2))
    assert_same(rough.truth.amplitudes, plain.truth.amplitudes)
    assert_same(rough.truth.parameters["thermal"][0], plain.truth.parameters["thermal"][0])  # kT untouched
    inside = plain.truth.mask
    dz = rough.truth.parameters["thermal"][1][inside] - plain.truth.parameters["thermal"][1][inside]
    dgamma = rough.truth.parameters["synchrotron"][0][inside] - plain.truth.parameters["synchrotron"][0][inside]
    assert 0.002 < np.std(dz) < 0.006 and 0.1 < np.std(dgamma) < 0.3
