import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayes_unmix.inference.checks import ConvergenceWarning
from bayes_unmix.inference.map import MAPConfig, map_batch, map_estimate
from bayes_unmix.inference.mcmc import NUTSConfig, nuts, nuts_batch
from bayes_unmix.inference.result import SUMMARY_COLUMNS, UnmixingResult
from bayes_unmix.inference.vi import pathfinder, variational
from bayes_unmix.models.gamma import GammaMixture

FAST = NUTSConfig(num_warmup=200, num_samples=500, num_chains=2)


def fixed_mixture(background, n_channels=80):
    x = np.arange(n_channels)
    sig = np.stack([np.exp(-0.5 * ((x - c) / 3.0) ** 2) + 0.01 for c in (20, 50)])
    sig /= sig.sum(-1, keepdims=True)
    return GammaMixture(nuclides=("A", "B"), n_channels=n_channels, background=background, signatures=sig)


def simulate(mix, counts, seed, weights=None):
    templates = np.asarray(mix.signatures if weights is None else mix.spectral_model.signatures(jnp.asarray(weights)))
    if mix.background is not None:
        templates = np.vstack([mix.background, templates])
    return np.random.default_rng(seed).poisson(np.asarray(counts) @ templates).astype(float)


def test_single_template_gives_the_conjugate_gamma_posterior():
    sig = np.full((1, 10), 0.1)
    mix = GammaMixture(nuclides=("A",), n_channels=10, signatures=sig, count_prior="exponential")
    y = np.random.default_rng(0).poisson(np.full(10, 5.0)).astype(float)
    total = y.sum()
    result = nuts(mix, y, key=jax.random.key(0), config=NUTSConfig(num_samples=2000), progress=False)
    a = result.draws("counts")[:, 0]
    # prior Exp(mean = total): posterior Gamma(1 + total, 1 + 1/total)
    shape, rate = 1 + total, 1 + 1 / total
    ess = float(result.summary()["ess_bulk"][0])
    assert abs(a.mean() - shape / rate) < 4 * np.sqrt(shape) / rate / np.sqrt(ess)
    assert abs(a.std() / (np.sqrt(shape) / rate) - 1) < 0.1


def test_recovery_with_known_signatures_and_sampler_agreement(flat_background):
    mix = fixed_mixture(flat_background)
    truth = np.array([3000.0, 800.0, 400.0])
    y = simulate(mix, truth, seed=1)
    np_result = nuts(mix, y, key=jax.random.key(1), config=FAST, progress=False)
    bj_result = nuts(mix, y, key=jax.random.key(2), config=FAST, backend="blackjax", progress=False)
    for result in (np_result, bj_result):
        table = result.summary()
        assert list(table.columns) == SUMMARY_COLUMNS
        counts = table[table.parameter == "counts"]
        assert np.all(np.abs(counts["mean"].values - truth) < 3.5 * counts.sd.values)
        assert np.all(counts.r_hat.values < 1.02)
    a, b = np_result.draws("counts"), bj_result.draws("counts")
    mcse = np.sqrt(a.var(0) / 400 + b.var(0) / 400)  # ESS of a few hundred per run
    assert np.all(np.abs(a.mean(0) - b.mean(0)) < 4 * mcse)


def test_map_matches_the_posterior_mode_at_high_counts(flat_background):
    mix = fixed_mixture(flat_background)
    y = simulate(mix, np.array([2e5, 5e4, 3e4]), seed=2)
    point = map_estimate(mix, y, key=jax.random.key(0))
    assert not point.is_sampled and np.isnan(point.summary()["sd"]).all()
    post = nuts(mix, y, key=jax.random.key(3), config=FAST, progress=False)
    draws = post.draws("counts")
    # near-Gaussian posterior with a flat prior: mode = mean within a small fraction of a sd
    assert np.all(np.abs(point.draws("counts")[0] - draws.mean(0)) < 0.2 * draws.std(0))


def test_latent_shield_recovery_map_nuts_vi(toy_model, flat_background):
    mix = GammaMixture.from_spectral_model(toy_model, flat_background, live_time_s=10.0)
    u_true = 0.35
    truth = np.array([4000.0, 3000.0, 2000.0])
    y = simulate(mix, truth, seed=4, weights=[[1 - u_true, u_true]])
    point = map_estimate(mix, y, key=jax.random.key(0))
    np.testing.assert_allclose(point.draws("u")[0, 0], u_true, atol=0.05)
    np.testing.assert_allclose(point.draws("counts")[0], truth, rtol=0.1)
    result = nuts(mix, y, key=jax.random.key(5), config=FAST, progress=False)
    table = result.summary()
    # truth within 3.5 posterior sd (a 1-in-2000 event per quantity for a Gaussian posterior)
    counts = table[table.parameter == "counts"]
    assert np.all(np.abs(counts["mean"].values - truth) < 3.5 * counts.sd.values)
    thickness = table[table.parameter == "thickness_mm"]
    true_t = float(toy_model.parameter(jnp.array([[1 - u_true, u_true]]))[0])
    assert np.all(np.abs(thickness["mean"].values - true_t) < 3.5 * thickness.sd.values)
    assert set(table.parameter) == {"counts", "thickness_mm", "activity_bq"}
    for guide in ("meanfield", "lowrank", "laplace"):
        approx = variational(mix, y, key=jax.random.key(6), guide=guide, steps=800, progress=False)
        np.testing.assert_allclose(approx.draws("counts").mean(0), result.draws("counts").mean(0), rtol=0.05)
    pf = pathfinder(mix, y, key=jax.random.key(7))
    np.testing.assert_allclose(pf.draws("counts").mean(0), result.draws("counts").mean(0), rtol=0.1)


def test_short_chains_warn_loudly(flat_background):
    mix = fixed_mixture(flat_background)
    y = simulate(mix, np.array([300.0, 100.0, 50.0]), seed=5)
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        nuts(mix, y, key=jax.random.key(0), config=NUTSConfig(num_warmup=10, num_samples=10), progress=False)


def test_batched_map_and_nuts_match_single_spectrum_results(flat_background, toy_model):
    mix = GammaMixture.from_spectral_model(toy_model, flat_background)
    ys = np.stack([simulate(mix, np.array([3000.0, 2000.0, 1000.0]), seed=s, weights=[[0.6, 0.4]]) for s in range(4)])
    batch = map_batch(mix, ys)
    single = map_estimate(mix, ys[2], key=jax.random.key(0))
    np.testing.assert_allclose(batch["u"][2], single.draws("u")[0], rtol=1e-9)
    draws = nuts_batch(mix, ys[:2], key=jax.random.key(0), config=NUTSConfig(num_warmup=100, num_samples=100))
    assert draws["count_nuclides"].shape == (2, 2, 100, 2) and draws["diverging"].shape == (2, 2, 100)


def test_result_round_trip_and_intervals(tmp_path, flat_background):
    mix = fixed_mixture(flat_background)
    y = simulate(mix, np.array([1000.0, 300.0, 200.0]), seed=6)
    result = nuts(mix, y, key=jax.random.key(0), config=FAST, progress=False)
    loaded = UnmixingResult.load(result.save(tmp_path / "post.nc"))
    np.testing.assert_array_equal(loaded.draws("counts"), result.draws("counts"))
    eti, hdi = result.intervals(0.9), result.intervals(0.9, kind="hdi")
    assert np.all(eti.ci_low < eti.ci_high) and np.all(hdi.ci_high - hdi.ci_low <= 1.02 * (eti.ci_high - eti.ci_low))
    assert {"posterior", "posterior_predictive", "log_likelihood", "observed_data", "sample_stats"} <= set(
        loaded.tree.children
    )
    assert loaded.tree.attrs["method"] == "nuts-numpyro"


def test_mixture_validation(flat_background):
    with pytest.raises(ValueError, match="exactly one"):
        GammaMixture(nuclides=("A",), n_channels=80)
    with pytest.raises(ValueError, match="background must have 80 channels"):
        fixed_mixture(flat_background[:50])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="counts must have shape"):
            map_batch(fixed_mixture(flat_background), np.ones((2, 79)))
    assert MAPConfig().optimizer == "newton"


def test_known_shielding_uses_fixed_weights(toy_model, flat_background):
    weights = toy_model.weights_at(10.0)
    mix = GammaMixture.from_spectral_model(toy_model, flat_background, known_weights=weights)
    assert not mix.latent
    y = simulate(mix, np.array([2000.0, 1500.0, 1000.0]), seed=8, weights=weights)
    point = map_estimate(mix, y, key=jax.random.key(0))
    np.testing.assert_allclose(point.posterior["thickness_mm"].values.ravel(), [10.0], atol=1e-6)
    np.testing.assert_allclose(point.draws("counts")[0], [2000.0, 1500.0, 1000.0], rtol=0.1)
