import jax
import jax.numpy as jnp
import numpy as np
import pytest
from typer.testing import CliRunner

from bayes_unmix.cli import app
from bayes_unmix.data.library import SpectralLibrary
from bayes_unmix.data.synthetic import shielded_line_family
from bayes_unmix.iae.calibration import EfficiencyModel, ParameterMap, isotonic_increasing
from bayes_unmix.iae.library_fit import default_preprocessing, train_spectral_model
from bayes_unmix.iae.serialize import ModelFileError, save
from bayes_unmix.iae.spectral_model import SpectralModel
from bayes_unmix.iae.train import TrainConfig

ENERGIES = 20.0 + 8.0 * np.arange(100)  # 20-812 keV
THICKNESS = np.linspace(0.0, 30.0, 16)
SMALL_NET = {"kind": "mlp", "n_layers": 2, "hidden_width": 64, "latent_width": 8, "activation": "gelu"}


def toy_library(with_decays: bool = True) -> SpectralLibrary:
    lines = {"Cs137": 662.0, "Ba133": 356.0}
    spectra = np.stack([1e6 * shielded_line_family(THICKNESS, ENERGIES, line_kev=e) for e in lines.values()])
    # fewer counts per decay through thicker shields
    spectra *= np.exp(-0.03 * THICKNESS)[None, :, None]
    decays = np.full((2, THICKNESS.size), 1e8) if with_decays else None
    return SpectralLibrary(spectra, tuple(lines), THICKNESS, ENERGIES, n_decays=decays, source="toy")


@pytest.fixture(scope="module")
def joint_model() -> SpectralModel:
    config = TrainConfig(epochs=150, batch_size=8, learning_rate=3e-3, loss="mse", eval_every=50)
    return train_spectral_model(
        toy_library(), joint=True, key=jax.random.key(0), network=SMALL_NET, config=config, progress=False
    )


def test_isotonic_and_parameter_maps():
    y = np.array([3.0, 1.0, 2.0, 5.0, 4.0])
    fit = isotonic_increasing(y)
    assert np.all(np.diff(fit) >= 0) and np.isclose(fit.sum(), y.sum())
    weights = np.stack([1 - np.linspace(0, 1, 5), np.linspace(0, 1, 5) ** 2], -1)
    pmap = ParameterMap.fit(weights, np.linspace(0, 30, 5))
    np.testing.assert_allclose(pmap(jnp.asarray(weights)), np.linspace(0, 30, 5), atol=1e-9)
    assert ParameterMap.from_dict(pmap.to_dict()) == pmap
    affine = ParameterMap.fit(np.eye(3)[[0, 1, 2, 0]], np.array([1.0, 2.0, 3.0, 1.0]))
    np.testing.assert_allclose(affine(jnp.array([0.2, 0.3, 0.5])), 2.3, atol=1e-9)


def test_efficiency_model_fits_smooth_curves():
    t = np.linspace(0, 30, 40)
    eta = 3e-3 * np.exp(-0.05 * t) * (1 + 0.001 * t**2)
    model = EfficiencyModel.fit(t, eta)
    assert model.max_relative_error < 1e-3
    np.testing.assert_allclose(model(jnp.asarray(t)), eta, rtol=1e-3)
    with pytest.raises(ValueError, match="positive"):
        EfficiencyModel.fit(t, -eta)


def test_joint_model_signatures_calibration_and_round_trip(joint_model, tmp_path):
    m = joint_model
    assert m.joint and m.n_latents == 1 and m.n_anchors == 2
    sig = jax.jit(m.signatures)(jnp.array([[0.5, 0.5]]))
    assert sig.shape == (2, 100) and float(sig.min()) >= 0
    np.testing.assert_allclose(sig.sum(-1), 1.0, atol=1e-12)
    # the anchors' weights map to the extreme thicknesses (up to the fit of a briefly trained model)
    np.testing.assert_allclose(m.parameter(jnp.array([[1.0, 0.0]])), [0.0], atol=2.0)
    np.testing.assert_allclose(m.parameter(jnp.array([[0.0, 1.0]])), [30.0], atol=2.0)
    u = jnp.linspace(-0.1, 1.1, 50)
    assert np.all(np.diff(np.asarray(m.parameter(jnp.stack([1 - u, u], -1)[:, None, :])[:, 0])) >= 0)
    # known shielding: the weights of a thickness map back to it
    np.testing.assert_allclose(m.parameter(jnp.asarray(m.weights_at(12.0))), [12.0], atol=1e-6)
    with pytest.raises(ValueError, match="outside the calibrated range"):
        m.weights_at(45.0)
    # efficiency: counts per decay in the window, decreasing with thickness as the library's
    eta = np.asarray(m.counts_per_decay(jnp.array([0.0, 0.0])))
    lib = toy_library()
    np.testing.assert_allclose(eta, lib.spectra[:, 0].sum(-1) / 1e8, rtol=1e-3)
    assert np.all(np.asarray(m.counts_per_decay(30.0)) < eta)
    loaded = SpectralModel.load(m.save(tmp_path / "m.npz"))
    np.testing.assert_array_equal(loaded.signatures(jnp.array([[0.3, 0.7]])), m.signatures(jnp.array([[0.3, 0.7]])))
    assert loaded.parameter_maps == m.parameter_maps and loaded.preprocessing == m.preprocessing


def test_individual_model_without_decays():
    config = TrainConfig(epochs=20, batch_size=8, eval_every=20)
    lib = toy_library(with_decays=False)
    pre = default_preprocessing(lib, emin_kev=100.0, emax_kev=700.0)
    m = train_spectral_model(
        lib, joint=False, key=jax.random.key(1), preprocessing=pre, network=SMALL_NET, config=config, progress=False
    )
    assert set(m.iaes) == {"Cs137", "Ba133"} and m.n_latents == 2 and m.n_channels == pre.n_channels
    assert m.signatures(jnp.full((2, 2), 0.5)).shape == (2, pre.n_channels)
    with pytest.raises(ValueError, match="no efficiency model"):
        m.counts_per_decay(1.0)


def test_plain_iae_file_is_not_a_spectral_model(joint_model, tmp_path):
    path = save(joint_model.iaes["joint"], tmp_path / "plain.npz")
    with pytest.raises(ModelFileError, match="no spectral model"):
        SpectralModel.load(path)


def test_cli_train_iae_and_info(tmp_path):
    lib = toy_library()
    for s, nuc in enumerate(lib.nuclides):
        (tmp_path / "lib" / nuc).mkdir(parents=True)
        for t, counts in zip(THICKNESS, np.round(lib.spectra[s])):
            name = f"{t:.1f}".replace(".", "__")
            (tmp_path / "lib" / nuc / f"GRS_{nuc}_STEEL{name}mm.dat").write_text("\n".join(f"{c:.0f}" for c in counts))
    out = tmp_path / "model.npz"
    args = ["train-iae", str(tmp_path / "lib"), "--out", str(out), "--nuclides", "Cs137", "--joint"]
    args += ["--kev-per-channel", "8", "--first-channel-kev", "20"]
    result = CliRunner().invoke(app, [*args, "--emin", "100", "--emax", "790", "--epochs", "5", "--quiet"])
    assert result.exit_code == 0, result.output
    model = SpectralModel.load(out)
    assert model.nuclides == ("Cs137",) and model.joint and model.training["command"] == "bayes-unmix train-iae"
    assert model.preprocessing.energies_kev[0] >= 100 and model.preprocessing.energies_kev[-1] < 790
    info = CliRunner().invoke(app, ["info", str(out)])
    assert info.exit_code == 0 and '"joint"' in info.output
    bad = CliRunner().invoke(app, ["train-iae", str(tmp_path / "lib"), "--out", str(out), "--nuclides", "Am241"])
    assert bad.exit_code == 2 and "Am241" in bad.output
