import numpy as np
import pytest

from bayes_unmix.data.io import Spectrum, SpectrumFormatError, read_spectrum

SPE = """$SPEC_ID:
test spectrum
$MEAS_TIM:
120 125
$DATA:
0 4
1 2 3
4 5
$ENER_FIT:
0.5 2.0
"""


def test_counts_txt(tmp_path):
    path = tmp_path / "s.dat"
    path.write_text("# header\n3\n0\n\n7\n")
    s = read_spectrum(path)
    np.testing.assert_array_equal(s.counts, [3, 0, 7])
    assert s.require_integer_counts() is s


def test_spe_with_calibration_and_live_time(tmp_path):
    path = tmp_path / "s.Spe"
    path.write_text(SPE)
    s = read_spectrum(path)
    np.testing.assert_array_equal(s.counts, [1, 2, 3, 4, 5])
    np.testing.assert_allclose(s.energies_kev, 0.5 + 2.0 * np.arange(5))
    assert s.live_time_s == 120


def test_spe_channel_count_mismatch(tmp_path):
    path = tmp_path / "bad.spe"
    path.write_text(SPE.replace("0 4", "0 9"))
    with pytest.raises(SpectrumFormatError, match="announces 10 channels but holds 5"):
        read_spectrum(path)


def test_csv_with_and_without_header(tmp_path):
    a = tmp_path / "a.csv"
    a.write_text("energy_kev,counts\n10,4\n11,5\n")
    s = read_spectrum(a)
    np.testing.assert_array_equal(s.counts, [4, 5])
    np.testing.assert_array_equal(s.energies_kev, [10, 11])
    b = tmp_path / "b.csv"
    b.write_text("4\n5\n6\n")
    np.testing.assert_array_equal(read_spectrum(b).counts, [4, 5, 6])
    c = tmp_path / "c.csv"
    c.write_text("energy,value\n1,2\n")
    with pytest.raises(SpectrumFormatError, match="no 'counts' column"):
        read_spectrum(c)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("1\n-2\n3\n", "negative counts"),
        ("1\nnan\n3\n", "non-finite"),
        ("1\nabc\n", "expected one number per line"),
        ("\n# only a comment\n", "non-empty"),
    ],
)
def test_bad_counts_are_refused(tmp_path, content, message):
    path = tmp_path / "bad.txt"
    path.write_text(content)
    with pytest.raises(SpectrumFormatError, match=message):
        read_spectrum(path)


def test_integer_and_empty_checks():
    with pytest.raises(SpectrumFormatError, match="integers"):
        Spectrum(np.array([1.0, 2.5])).require_integer_counts()
    with pytest.raises(SpectrumFormatError, match="empty"):
        Spectrum(np.zeros(4)).require_integer_counts()


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_spectrum(tmp_path / "nope.txt")
