from pathlib import Path

import numpy as np
import pytest

from bayes_unmix.data.library import SpectralLibrary, load_library, parse_parameter
from bayes_unmix.data.preprocess import ChannelMismatchError, Preprocessing
from bayes_unmix.data.splits import SEMSUN_TEST_MM, semsun_split

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def write_library(root, nuclides=("Cs137", "Co60"), thicknesses=("0__001", "5__2", "30__0"), n=40):
    rng = np.random.default_rng(0)
    for nuc in nuclides:
        (root / nuc).mkdir(parents=True)
        for t in thicknesses:
            counts = rng.poisson(50, n)
            (root / nuc / f"GRS_NaITl_{nuc}_STEEL{t}mm.dat").write_text("\n".join(map(str, counts)))
    return root


@pytest.mark.parametrize(
    ("name", "value"),
    [("GRS_NaITl_Co60_STEEL5__2mm.dat", 5.2), ("GRS_NaITl_Co60_STEEL0__001mm.dat", 0.001), ("a_STEEL30__0mm", 30.0)],
)
def test_parse_published_names(name, value):
    assert parse_parameter(name) == value


def test_parse_errors():
    with pytest.raises(ValueError, match="does not match"):
        parse_parameter("spectrum.dat")
    with pytest.raises(ValueError, match="named group"):
        parse_parameter("t5", r"t(\d)")


def test_load_library_sorted_and_selected(tmp_path):
    lib = load_library(write_library(tmp_path / "lib"))
    assert lib.nuclides == ("Co60", "Cs137")
    np.testing.assert_allclose(lib.parameter_values, [0.001, 5.2, 30.0])
    assert lib.spectra.shape == (2, 3, 40)
    np.testing.assert_allclose(lib.energies_kev[:2], [1.0, 2.0])
    sub = lib.select(["Cs137"]).take([0, 2])
    assert sub.spectra.shape == (1, 2, 40) and sub.nuclides == ("Cs137",)
    with pytest.raises(KeyError, match="unknown nuclide"):
        lib.select(["Am241"])


def test_library_errors(tmp_path):
    root = write_library(tmp_path / "lib")
    with pytest.raises(KeyError, match="Am241"):
        load_library(root, nuclides=["Am241"])
    (root / "Cs137" / "GRS_NaITl_Cs137_STEEL5__2mm.dat").unlink()
    with pytest.raises(ValueError, match="do not cover the same parameter values"):
        load_library(root)
    with pytest.raises(FileNotFoundError):
        load_library(tmp_path / "absent")
    with pytest.raises(ValueError, match="strictly increasing"):
        SpectralLibrary(np.ones((1, 2, 3)), ("a",), np.array([2.0, 1.0]), np.arange(3.0))


def test_semsun_preprocessing_grid():
    pre = Preprocessing.semsun()
    assert pre.n_channels == 800
    np.testing.assert_allclose(pre.energies_kev[[0, -1]], [18.5, 1616.5])
    raw = np.arange(2998.0)
    windowed = pre.window(raw)
    assert windowed[0] == 17 + 18 and windowed.sum() == raw[17:1617].sum()  # counts are conserved
    sig = pre.signatures(np.ones((3, 2998)), "Co57")
    np.testing.assert_allclose(sig.sum(-1), 1.0)
    assert np.all(sig[:, 100:] == 0) and np.all(sig[:, :100] > 0)
    with pytest.raises(ChannelMismatchError, match="expects raw spectra of 2998 channels"):
        pre.window(np.ones(2200))


def test_preprocessing_floor_and_round_trip():
    pre = Preprocessing(raw_channels=10, emin_kev=3.0, emax_kev=9.0, rebin=2, floor=0.1)
    assert pre.n_channels == 3
    sig = pre.signatures(np.array([0, 0, 10, 0, 0, 0, 0, 0, 0, 0.0]))
    assert sig.min() > 0  # floored at 10 % of the maximum before normalising
    assert Preprocessing.from_dict(pre.to_dict()) == pre
    with pytest.raises(ValueError, match="fewer than 2 channels"):
        Preprocessing(raw_channels=10, emin_kev=3.0, emax_kev=4.0)


def test_semsun_split_on_a_full_grid():
    grid = np.array(sorted(set(np.round(np.concatenate([SEMSUN_TEST_MM, np.linspace(0.001, 30, 71)]), 3))))
    train, test = semsun_split(grid)
    assert len(test) == 25 and len(np.intersect1d(train, test)) == 0
    with pytest.raises(ValueError, match="does not contain"):
        semsun_split(np.linspace(0, 30, 96))


@pytest.mark.skipif(not (SHARED_DATA / "gamma_nai_steel").is_dir(), reason="needs ../shared/data/gamma_nai_steel")
def test_published_geant4_library():
    lib = load_library(SHARED_DATA / "gamma_nai_steel")
    assert lib.nuclides == ("Ba133", "Co57", "Co60", "Cs137") and lib.spectra.shape == (4, 96, 2998)
    train, _test = semsun_split(lib.parameter_values)
    assert len(train) == 71 and {0, 95} <= set(train.tolist())
    cs = lib.select(["Cs137"]).spectra[0, 0]
    assert abs(int(np.argmax(cs[400:])) + 400 - 660) <= 2  # 661.7 keV line near channel E - 1
