"""SEMSUN reproductions: NNPU = Poisson MLE, SEMSUN-joint recovers counts, monotone cost, NMF baseline."""

import jax
import numpy as np
import pytest

from bayes_unmix.data.library import SpectralLibrary
from bayes_unmix.data.synthetic import shielded_line_family
from bayes_unmix.iae.library_fit import train_spectral_model
from bayes_unmix.iae.train import TrainConfig
from bayes_unmix.inference.map import MAPConfig, map_batch
from bayes_unmix.inference.semsun import nnpu, poisson_cost, poisson_nmf, semsun
from bayes_unmix.models.gamma import GammaMixture

ENERGIES = 20.0 + 8.0 * np.arange(100)  # 20-812 keV
THICKNESS = np.linspace(0.0, 30.0, 16)
SMALL_NET = {"kind": "mlp", "n_layers": 2, "hidden_width": 64, "latent_width": 8, "activation": "gelu"}
LINES = {"Cs137": 662.0, "Ba133": 356.0}


def _background() -> np.ndarray:
    b = np.exp(-ENERGIES / 300.0) + 0.05
    return b / b.sum()


@pytest.fixture(scope="module")
def joint_mixture() -> GammaMixture:
    spectra = np.stack([1e6 * shielded_line_family(THICKNESS, ENERGIES, line_kev=e) for e in LINES.values()])
    library = SpectralLibrary(spectra, tuple(LINES), THICKNESS, ENERGIES, source="toy")
    config = TrainConfig(epochs=150, batch_size=8, learning_rate=3e-3, loss="mse", eval_every=50)
    model = train_spectral_model(
        library, joint=True, key=jax.random.key(0), network=SMALL_NET, config=config, progress=False
    )
    return GammaMixture.from_spectral_model(model, _background())


def _fixed_mixture() -> GammaMixture:
    sig = np.stack([shielded_line_family(np.array([5.0]), ENERGIES, line_kev=e)[0] for e in LINES.values()])
    return GammaMixture(nuclides=tuple(LINES), n_channels=ENERGIES.size, background=_background(), signatures=sig)


def test_nnpu_is_the_poisson_mle():
    mix = _fixed_mixture()
    templates = np.concatenate([mix.background[None], mix.signatures])
    truth = np.array([3000.0, 1500.0, 800.0])
    y = np.random.default_rng(1).poisson(truth @ templates, size=(4, ENERGIES.size)).astype(float)
    a = np.asarray(nnpu(templates, y, max_iter=20000, tol=1e-12))
    ref = map_batch(mix, y, config=MAPConfig(iterations=40))
    ref_a = np.concatenate([ref["count_background"], ref["count_nuclides"]], -1)
    np.testing.assert_allclose(a, ref_a, rtol=1e-4)
    # single spectrum == batch row; counts are preserved by EM (unit-sum templates)
    np.testing.assert_allclose(np.asarray(nnpu(templates, y[0], max_iter=20000, tol=1e-12)), a[0], rtol=1e-10)
    np.testing.assert_allclose(a.sum(-1), y.sum(-1), rtol=1e-8)


def test_semsun_joint_recovers_counts_and_cost_decreases(joint_mixture):
    mix = joint_mixture
    u_true = 0.3
    sig = np.asarray(mix.spectral_model.signatures(np.array([[1 - u_true, u_true]])))
    templates = np.concatenate([mix.background[None], sig])
    truth = np.array([2e5, 1.2e5, 8e4])  # high counts
    y = np.random.default_rng(2).poisson(truth @ templates, size=(3, ENERGIES.size)).astype(float)
    out = semsun(mix, y, joint=True, max_iter=30)
    np.testing.assert_allclose(out["counts"], np.broadcast_to(truth, (3, 3)), rtol=0.03)
    np.testing.assert_allclose(out["u"][:, 0], u_true, atol=0.03)
    history = out["cost_history"]
    assert np.all(np.diff(history, axis=-1) <= 1e-7 * np.abs(history[:, 1:]))
    # the fit is at least as good as the truth's (it is a likelihood maximiser)
    assert np.all(out["cost"] <= np.asarray(poisson_cost(truth @ templates, y)) + 1e-6)
    assert out["converged"].all() and out["signatures"].shape == (3, 2, ENERGIES.size)


def test_semsun_individual_scheme_and_nmf_baseline(joint_mixture):
    mix = joint_mixture
    sig = np.asarray(mix.spectral_model.signatures(np.array([[0.6, 0.4]])))
    templates = np.concatenate([mix.background[None], sig])
    truth = np.array([1e5, 6e4, 4e4])
    y = np.random.default_rng(3).poisson(truth @ templates).astype(float)
    ind = semsun(mix, y, joint=False, max_iter=30)
    assert ind["u"].shape == (2,) and ind["counts"].shape == (3,)
    np.testing.assert_allclose(ind["counts"], truth, rtol=0.06)
    assert np.all(np.diff(ind["cost_history"]) <= 1e-7 * np.abs(ind["cost_history"][1:]))
    # NMF: columns stay unit-sum, background column frozen, fits the data at least as well as X0
    x0 = np.concatenate([mix.background[None], np.asarray(mix.spectral_model.signatures(np.array([[1.0, 0.0]])))])
    a, x = poisson_nmf(y, x0, max_iter=200)
    np.testing.assert_allclose(np.asarray(x).sum(-1), 1.0, atol=1e-10)
    np.testing.assert_array_equal(np.asarray(x)[0], x0[0])
    a_fixed = nnpu(x0, y)
    assert float(poisson_cost(a @ x, y)) < float(poisson_cost(a_fixed @ x0, y))
