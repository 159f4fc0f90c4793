"""``bayes-unmix fit-cube``: outputs of a small fit, and one-line errors (exit 2, nothing written) on bad input."""

import json
import shlex

import numpy as np
import pytest
from typer.testing import CliRunner

import bayes_unmix  # noqa: F401
from bayes_unmix.cli import app
from bayes_unmix.data.cube import save_cube, toy_remnant_cube

runner = CliRunner()
MODELS = ["--model", "thermal=xray_thermal", "--model", "synchrotron=xray_synchrotron"]


@pytest.fixture(scope="module")
def cube_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("cube") / "toy.npz"
    save_cube(toy_remnant_cube(0, size=8, radius=3.6, peak_counts=2000.0), path)
    return path


def test_fit_cube_pixel_writes_maps_and_report(cube_file, tmp_path):
    out = tmp_path / "out"
    args = ["fit-cube", str(cube_file), *MODELS, "--method", "pixel", "--starlet-scales", "1", "-q"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    names = {p.name for p in out.iterdir()}
    assert {"maps.nc", "summary.json", "report.md", "maps_mean.png", "map_thermal_kT_keV.png"} <= names
    summary = json.loads((out / "summary.json").read_text())
    assert summary["attrs"]["method"] == "pixel-map" and summary["attrs"]["n_scales"] == 1
    assert summary["attrs"]["amplitude_log_sd"] == 10.0  # the default
    report = (out / "report.md").read_text()
    assert "log-normal around pixel counts / components, sd 10.0" in report
    assert "counts drawn from the fitted rates would give" in report
    kt = summary["maps"]["thermal_kT_keV"]["mean"]
    assert 0.8 <= kt <= 6.0  # inside the trained range, in keV

    exponential = tmp_path / "exponential"
    result = runner.invoke(app, [*args, "--out", str(exponential), "--amplitude-log-sd", "off"])
    assert result.exit_code == 0, result.output
    assert json.loads((exponential / "summary.json").read_text())["attrs"]["amplitude_log_sd"] == "off"
    assert "exponential, mean = pixel counts / components" in (exponential / "report.md").read_text()

    # an atom at zero: absent components' amplitudes are exactly 0 and the posterior probability of presence
    # is mapped; the point estimate takes each pixel's most probable configuration
    assert "presence: every component in every pixel" in report
    presence = tmp_path / "presence"
    result = runner.invoke(app, [*args, "--out", str(presence), "--presence-prior", "0.5"])
    assert result.exit_code == 0, result.output
    summary = json.loads((presence / "summary.json").read_text())
    assert summary["attrs"]["presence_prior"] == 0.5
    assert {"presence[thermal]", "presence[synchrotron]"} <= set(summary["maps"])
    assert all(0.0 <= summary["maps"][f"presence[{c}]"]["mean"] <= 1.0 for c in ("thermal", "synchrotron"))
    assert "present in a pixel with prior probability 0.5" in (presence / "report.md").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "thermal"], "NAME=MODEL"),
        (["--model", "thermal=no_such_model"], "no model file"),
        (["--model", "thermal=xray_thermal", "--method", "magic"], "unknown method"),
        (["--model", "thermal=xray_thermal", "--prior", "wiggly"], "spatial prior"),
        (["--model", "thermal=xray_thermal", "--prior-scale", "big"], "positive number, a per-component mapping"),
        (["--model", "thermal=xray_thermal", "--prior-scale", "-1"], "positive number, a per-component mapping"),
        (["--model", "thermal=xray_thermal", "--prior-scale", '{"thermal": 0.1'], "is not valid JSON"),
        (["--model", "thermal=xray_thermal", "--prior-scale", '{"synchrotron": 0.1}'], "a scale for each of"),
        (["--model", "thermal=xray_thermal", "--prior-scale", '{"thermal": [0.1]}'], "or 2 of them"),
        (["--model", "thermal=xray_thermal:sideways"], "unknown coordinates"),
        (["--model", "thermal=xray_thermal", "--amplitude-scale", "-1"], "amplitude scale must be a positive"),
        (["--model", "thermal=xray_thermal", "--amplitude-prior", "share"], "unknown amplitude_prior"),
        (["--model", "thermal=xray_thermal", "--amplitude-prior", "ratio"], "needs two or more components"),
        (["--model", "thermal=xray_thermal", "--prior", "none", "--amplitude-scale", "0.3"], "needs a spatial prior"),
        (["--model", "thermal=xray_thermal", "--starlet-scales", "3"], "too small for 3 starlet scales"),
        (["--model", "thermal=xray_thermal", "--amplitude-log-sd", "wide"], "amplitude log sd must be a positive"),
        (["--model", "thermal=xray_thermal", "--amplitude-log-sd", "0"], "amplitude log sd must be a positive"),
        (["--model", "thermal=xray_thermal", "--presence-prior", "maybe"], "presence prior must be a probability"),
        (["--model", "thermal=xray_thermal", "--presence-prior", "1.5"], "presence_prior must be a probability"),
        (["--model", "thermal=xray_thermal", "--presence-prior", "auto", "--method", "pixel"], "give a number"),
        (["--model", "thermal=xray_thermal", "--learn-scales"], "need a posterior (method vi or nuts)"),
        (["--model", "thermal=xray_thermal", "--learn-scales", "--method", "vi", "--prior-scale", "auto"], "'auto'"),
    ],
)
def test_fit_cube_bad_options(cube_file, tmp_path, args, message):
    out = tmp_path / "out"
    result = runner.invoke(app, ["fit-cube", str(cube_file), *args, "--out", str(out)])
    assert result.exit_code == 2 and message in result.output
    assert len(result.output.strip().splitlines()) == 1 and not out.exists()


def test_fit_cube_bad_cubes(tmp_path):
    flat = tmp_path / "flat.npy"
    np.save(flat, np.ones((375, 8)))
    short = tmp_path / "short.npz"
    np.savez(short, counts=np.ones((100, 8, 8)), energies_kev=np.linspace(3, 8, 100))
    for path, message in [(flat, "height, width)"), (short, "channels"), (tmp_path / "none.npy", "no such")]:
        out = tmp_path / "out"
        result = runner.invoke(app, ["fit-cube", str(path), *MODELS, "--out", str(out)])
        assert result.exit_code == 2, result.output
        assert message in result.output and not out.exists()


def test_fit_cube_auto_prior_scale(cube_file, tmp_path):
    """``--prior-scale auto`` cross-validates one scale per latent map and records the scores (the amplitude
    prior's own cross-validation: the next test)."""
    out = tmp_path / "out"
    args = ["fit-cube", str(cube_file), *MODELS, "--out", str(out), "--method", "map", "--prior-scale", "auto", "-q"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    attrs = json.loads((out / "summary.json").read_text())["attrs"]
    assert f"Whole-cube MAP: {attrs['iterations']} iterations (lbfgs), converged." in (out / "report.md").read_text()
    scores = json.loads(attrs["spatial_scale_held_out_loglik"])
    assert {"0.01", "0.03", "0.1", "0.3"} <= set(scores) and attrs["amplitude_scale"] == 1.0  # the default
    assert all(np.isfinite(list(scores.values())))
    chosen = attrs["spatial_scale"]
    chosen = json.loads(chosen) if isinstance(chosen, str) else {"thermal": [chosen] * 2, "synchrotron": [chosen]}
    assert {k: len(v) for k, v in chosen.items()} == {"thermal": 2, "synchrotron": 1}
    # every accepted change scores better than the last: the best label is in the recorded scales
    best = max(scores, key=scores.get)
    if "[" in best:
        name, k, value = best.replace("]=", "[").split("[")
        assert chosen[name][int(k)] == float(value)
    else:
        assert chosen == {"thermal": [float(best)] * 2, "synchrotron": [float(best)]}

    # the report's line for reusing the chosen priors reproduces them without cross-validating
    reuse = (out / "report.md").read_text().split("without cross-validating again: `")[1].split("`")[0]
    again = tmp_path / "again"
    result = runner.invoke(app, ["fit-cube", str(cube_file), *MODELS, "--out", str(again), *shlex.split(reuse), "-q"])
    assert result.exit_code == 0, result.output
    attrs_again = json.loads((again / "summary.json").read_text())["attrs"]
    assert "spatial_scale_held_out_loglik" not in attrs_again
    assert attrs_again["spatial_scale"] == attrs["spatial_scale"]


def test_fit_cube_default_priors(cube_file, tmp_path):
    """Without prior options: latent scale 0.1 and the log-ratio prior at 1.0 (the cross-validated choices on
    the 94x94 scenes); one component has no ratio, so its log amplitude map gets the prior; no spatial
    prior, no amplitude prior."""
    cases = {
        "two": (MODELS, {"spatial_scale": 0.1, "amplitude_scale": 1.0, "amplitude_prior": "ratio"}),
        "one": (MODELS[:2], {"spatial_scale": 0.1, "amplitude_scale": 1.0, "amplitude_prior": "log"}),
        "none": ([*MODELS, "--prior", "none"], {"spatial_prior": "none", "amplitude_scale": "off"}),
    }
    for label, (args, expected) in cases.items():
        out = tmp_path / label
        result = runner.invoke(app, ["fit-cube", str(cube_file), *args, "--out", str(out), "-q"])
        assert result.exit_code == 0, result.output
        attrs = json.loads((out / "summary.json").read_text())["attrs"]
        assert {k: attrs[k] for k in expected} == expected, label


def test_fit_cube_per_latent_prior_scales(cube_file, tmp_path):
    """Scales per component and latent as JSON (what an ``auto`` run records, reusable on the next cube)."""
    out = tmp_path / "out"
    scales = {"thermal": [0.1, 0.03], "synchrotron": [0.3]}
    args = ["fit-cube", str(cube_file), *MODELS, "--out", str(out), "--prior-scale", json.dumps(scales), "-q"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    attrs = json.loads((out / "summary.json").read_text())["attrs"]
    assert json.loads(attrs["spatial_scale"]) == scales


@pytest.mark.filterwarnings("ignore::bayes_unmix.inference.checks.ConvergenceWarning")  # deliberately short VI
def test_fit_cube_learned_scales(cube_file, tmp_path):
    """``--learn-scales``: the report gives the learned scales with their intervals and the options that fix them on
    the next cube."""
    out = tmp_path / "out"
    args = ["fit-cube", str(cube_file), *MODELS, "--out", str(out), "--method", "vi", "--steps", "300"]
    result = runner.invoke(app, [*args, "--learn-scales", "-q"])
    assert result.exit_code == 0, result.output
    attrs = json.loads((out / "summary.json").read_text())["attrs"]
    learned, intervals = (json.loads(attrs[k]) for k in ("learned_spatial_scale", "learned_spatial_scale_interval"))
    assert {k: len(v) for k, v in learned.items()} == {"thermal": 2, "synchrotron": 1}
    for name, values in learned.items():
        assert all(lo < v < hi for v, (lo, hi) in zip(values, intervals[name], strict=True))
    report = (out / "report.md").read_text()
    assert "latent scales learned (log-uniform hyperprior on [0.001, 1.0], started at 0.1)" in report
    reuse = report.split("without learning them again: `")[1].split("`")[0]
    again = tmp_path / "again"
    result = runner.invoke(app, [*args[:6], "--out", str(again), *shlex.split(reuse), "-q"])
    assert result.exit_code == 0, result.output
    attrs_again = json.loads((again / "summary.json").read_text())["attrs"]
    assert json.loads(attrs_again["spatial_scale"]) == learned and attrs_again["scale_hyperprior"] == "off"


def test_fit_cube_auto_amplitude_and_presence_priors_at_given_latent_scales(cube_file, tmp_path):
    """``--amplitude-scale auto`` and ``--presence-prior auto`` with a numeric ``--prior-scale`` cross-validate
    the amplitude prior (here on the log ratio map), then the presence prior, keeping the latent scales given."""
    out = tmp_path / "out"
    args = ["fit-cube", str(cube_file), *MODELS, "--out", str(out), "--prior-scale", "0.1", "-q"]
    result = runner.invoke(
        app, [*args, "--amplitude-scale", "auto", "--amplitude-prior", "ratio", "--presence-prior", "auto"]
    )
    assert result.exit_code == 0, result.output
    attrs = json.loads((out / "summary.json").read_text())["attrs"]
    assert f"Whole-cube MAP: {attrs['iterations']} iterations (lbfgs), converged." in (out / "report.md").read_text()
    scores = json.loads(attrs["spatial_scale_held_out_loglik"])
    presence = {k: scores.pop(k) for k in list(scores) if k.startswith("presence=")}
    assert set(scores) == {"given", "ratio=0.3", "ratio=1", "ratio=3"}
    assert set(presence) == {"presence=off", "presence=0.5", "presence=0.8", "presence=0.95"}
    best = max(scores, key=scores.get)
    assert presence["presence=off"] == scores[best]  # tried last, against the best amplitude prior
    assert attrs["presence_prior"] == _value(max(presence, key=presence.get))
    assert attrs["spatial_scale"] == 0.1 and attrs["amplitude_prior"] == "ratio"
    assert attrs["amplitude_scale"] == ("off" if best == "given" else _value(best))
    report = (out / "report.md").read_text()
    assert "log amplitude ratios" in report
    best_score = max(*scores.values(), *presence.values())
    assert (
        f"chosen by two-fold cross-validation on held-out counts (best held-out log-likelihood {best_score:.1f}"
        in report
    )
    reuse = f"--prior-scale '0.1' --amplitude-scale {attrs['amplitude_scale']} --amplitude-prior ratio"
    assert f"`{reuse} --presence-prior {attrs['presence_prior']}`" in report
    ratio_on = best != "given"  # the pixel prior then falls on the total alone
    assert ("log-normal pixel total around its counts, sd 10.0" in report) == ratio_on
    assert ("log-normal around pixel counts / components, sd 10.0" in report) == (not ratio_on)


def _value(label: str) -> float | str:
    """The value of a cross-validation label such as ``"ratio=0.3"`` or ``"presence=off"``."""
    value = label.split("=")[1]
    return value if value == "off" else float(value)
