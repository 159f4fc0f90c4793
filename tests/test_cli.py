"""End-to-end command-line tests: a small fit, the demo's pieces, and every bad input."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bayes_unmix.cli import app
from bayes_unmix.demo import simulate_measurement
from bayes_unmix.inference.result import SUMMARY_COLUMNS, UnmixingResult
from bayes_unmix.pretrained import available, gamma_models, load_pretrained

runner = CliRunner()


@pytest.fixture(scope="module")
def measurement(tmp_path_factory):
    folder = tmp_path_factory.mktemp("spectra")
    raw, _ = simulate_measurement(seed=1)
    path = folder / "spectrum.txt"
    path.write_text("\n".join(f"{int(c)}" for c in raw))
    return path, raw


def test_pretrained_models_ship_and_load():
    assert available() == [
        "nai3_lead_joint",
        "nai3_steel_individual",
        "nai3_steel_joint",
        "xray_synchrotron",
        "xray_thermal",
    ]
    assert gamma_models() == ["nai3_lead_joint", "nai3_steel_individual", "nai3_steel_joint"]
    joint = load_pretrained("nai3_steel_joint")
    assert joint.joint and joint.nuclides == ("Co60", "Ba133", "Co57", "Cs137") and joint.n_channels == 400
    assert set(joint.efficiencies) == set(joint.nuclides)
    with pytest.raises(KeyError, match="no pretrained model"):
        load_pretrained("nope")
    with pytest.raises(KeyError, match="X-ray cube component"):
        load_pretrained("xray_thermal")


@pytest.mark.filterwarnings("ignore::bayes_unmix.inference.checks.ConvergenceWarning")  # deliberately short chains
@pytest.mark.parametrize("method", ["map", "nuts"])
def test_fit_end_to_end(measurement, tmp_path, method):
    path, _ = measurement
    out = tmp_path / "out"
    args = ["fit", str(path), "--model", "nai3_steel_joint", "--out", str(out), "--method", method]
    args += ["--live-time", "600", "--num-warmup", "100", "--num-samples", "100", "--seed", "3", "--quiet"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "summary.csv")
    assert list(table.columns) == SUMMARY_COLUMNS
    assert set(table.parameter) == {"counts", "thickness_mm", "activity_bq"}
    assert set(table.component) == {"background", "Co60", "Ba133", "Co57", "Cs137"}
    if method == "map":
        assert table.r_hat.isna().all() and table.ess_bulk.isna().all()
    else:
        assert table.r_hat.notna().all()
    # the demo scene: 8 mm steel, Co60 4 kBq
    thickness = table[(table.parameter == "thickness_mm")]["mean"].iloc[0]
    co60 = table[(table.parameter == "activity_bq") & (table.component == "Co60")]["mean"].iloc[0]
    assert 5.0 < thickness < 11.0 and 3000 < co60 < 5000
    for name in ("posterior.nc", "fit.png", "report.md"):
        assert (out / name).stat().st_size > 0
    assert UnmixingResult.load(out / "posterior.nc").method.startswith("map" if method == "map" else "nuts")


def test_identify_end_to_end(measurement, tmp_path):
    """The demo scene holds Co60, Ba133 and Cs137 but no Co57."""
    path, _ = measurement
    out = tmp_path / "id"
    args = ["identify", str(path), "--model", "nai3_steel_joint", "--live-time", "600", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "identification.csv")
    assert list(table.columns[:5]) == ["nuclide", "probability_present", "decision", "estimate", "upper_limit"]
    decisions = dict(zip(table.nuclide, table.decision))
    assert decisions == {"Co60": "present", "Ba133": "present", "Co57": "absent", "Cs137": "present"}
    co57 = table[table.nuclide == "Co57"].iloc[0]
    assert co57.unit == "Bq" and co57.upper_limit > 0 and co57.detection_limit > co57.decision_threshold > 0
    assert (out / "identification.png").stat().st_size > 0
    bad = runner.invoke(app, [*args[:-2], "--out", str(tmp_path / "bad"), "--alpha", "0.9"])
    assert bad.exit_code == 2 and not (tmp_path / "bad").exists()


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("negative", "negative counts"),
        ("nan", "non-finite"),
        ("fractional", "integers"),
        ("short", "expects raw spectra of 2998 channels"),
        ("zeros", "empty"),
        ("empty_file", "non-empty"),
    ],
)
def test_bad_spectra_stop_with_one_line_and_write_nothing(tmp_path, measurement, content, message):
    _, raw = measurement
    values = {
        "negative": np.where(np.arange(raw.size) == 100, -1, raw),
        "nan": np.where(np.arange(raw.size) == 100, np.nan, raw),
        "fractional": raw + 0.5,
        "short": raw[:2000],
        "zeros": np.zeros_like(raw),
        "empty_file": np.array([]),
    }[content]
    path = write(tmp_path, "bad.txt", "\n".join(str(v) for v in values))
    out = tmp_path / "out"
    result = runner.invoke(app, ["fit", str(path), "--model", "nai3_steel_joint", "--out", str(out), "--method", "map"])
    assert result.exit_code == 2
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    assert not out.exists()


def test_corrupt_or_missing_model(tmp_path, measurement):
    path, _ = measurement
    corrupt = write(tmp_path, "model.npz", "garbage")
    out = tmp_path / "out"
    for model in (str(corrupt), str(tmp_path / "absent.npz")):
        result = runner.invoke(app, ["fit", str(path), "--model", model, "--out", str(out), "--method", "map"])
        assert result.exit_code == 2 and result.output.startswith("error:")
    assert not out.exists()


def test_bad_background_and_live_time(tmp_path, measurement):
    path, _ = measurement
    bkg = write(tmp_path, "bkg.txt", "\n".join(["5"] * 100))
    out = tmp_path / "out"
    args = ["fit", str(path), "--model", "nai3_steel_joint", "--out", str(out), "--method", "map"]
    result = runner.invoke(app, [*args, "--background", str(bkg)])
    assert result.exit_code == 2 and "background" in result.output
    result = runner.invoke(app, [*args, "--live-time", "-3"])
    assert result.exit_code == 2 and "live time" in result.output
    assert not out.exists()


def test_help_reads_well():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("demo", "fit", "train-iae", "info"):
        assert command in result.output
