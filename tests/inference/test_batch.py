"""Batched VI and Laplace (bayes_unmix.inference.batch) against per-spectrum fits, NUTS and the model."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.infer import Predictive

from bayes_unmix.inference.batch import derived, laplace_batch, variational_batch
from bayes_unmix.inference.map import map_batch
from bayes_unmix.inference.mcmc import NUTSConfig, nuts
from bayes_unmix.models.gamma import GammaMixture, make_model

TRUTH = np.array([4000.0, 3000.0, 2000.0])  # background, Cs137, Ba133 (toy model)


@pytest.fixture(scope="module")
def mix(toy_model, flat_background):
    """One mixture for the module: compiled solvers are cached per mixture (and batch shape)."""
    return GammaMixture.from_spectral_model(toy_model, flat_background, live_time_s=10.0)


def _spectra(mix, counts, n, seed, u=0.35):
    templates = np.asarray(mix.templates(mix.spectral_model.signatures(jnp.asarray([[1 - u, u]]))))
    return np.random.default_rng(seed).poisson(counts @ templates, size=(n, mix.n_channels)).astype(float)


def _moments(draws, mix):
    q = derived(mix, draws)
    x = np.concatenate([q["counts"], q["thickness_mm"]], axis=-1)  # (B, draws, K)
    return x.mean(1), x.std(1)


def _fit(mix, counts, key, method, num_draws=2000):
    if method.startswith("laplace"):
        space = "constrained" if method == "laplace-constrained" else "unconstrained"
        return laplace_batch(mix, counts, key=key, space=space, num_draws=num_draws)
    return variational_batch(mix, counts, key=key, guide=method, steps=400, num_draws=num_draws)


@pytest.mark.parametrize("method", ["meanfield", "lowrank", "laplace", "laplace-constrained"])
def test_a_spectrums_fit_does_not_depend_on_the_rest_of_the_batch(mix, method):
    y = _spectra(mix, TRUTH, 3, seed=0)
    first = _fit(mix, y[[0, 1]], jax.random.key(0), method)
    second = _fit(mix, y[[0, 2]], jax.random.key(0), method)  # same key: spectrum 0 gets the same sub-key
    for site in ("count_background", "count_nuclides", "u"):
        np.testing.assert_allclose(first[site][0], second[site][0], rtol=1e-7)
        assert not np.allclose(first[site][1], second[site][1])


def test_batched_laplace_equals_single_spectrum_laplace(mix):
    y = _spectra(mix, TRUTH, 2, seed=0)
    mean_b, sd_b = _moments(_fit(mix, y, jax.random.key(0), "laplace"), mix)
    for i in range(2):
        mean_1, sd_1 = _moments(_fit(mix, y[i : i + 1], jax.random.key(10 + i), "laplace"), mix)
        # same Gaussian, different keys: Monte-Carlo error of 2000 draws only (~0.03 sd on means)
        assert np.all(np.abs(mean_1[0] - mean_b[i]) < 0.12 * sd_b[i])
        np.testing.assert_allclose(sd_1[0], sd_b[i], rtol=0.1)


def test_laplace_and_lowrank_vi_match_nuts_at_high_counts(flat_background):
    x = np.arange(80)
    signatures = np.stack([np.exp(-0.5 * ((x - c) / 3.0) ** 2) + 0.01 for c in (20, 45)])
    signatures /= signatures.sum(-1, keepdims=True)
    fixed = GammaMixture(nuclides=("A", "B"), n_channels=80, background=flat_background, signatures=signatures)
    y = (
        np.random.default_rng(1)
        .poisson(np.array([2e5, 5e4, 3e4]) @ np.asarray(fixed.templates(signatures)))[None]
        .astype(float)
    )
    config = NUTSConfig(num_warmup=300, num_samples=1000, num_chains=2)
    reference = nuts(fixed, y[0], key=jax.random.key(1), config=config, progress=False, check=False).draws("counts")
    for fitted in (
        laplace_batch(fixed, y, key=jax.random.key(2), num_draws=4000),
        variational_batch(fixed, y, key=jax.random.key(3), guide="lowrank", steps=1000, num_draws=4000),
    ):
        counts = derived(fixed, fitted)["counts"][0]
        # near-Gaussian posterior: means within a small fraction of a sd (NUTS' MCSE ~ 0.05 sd), sds within 15 %
        assert np.all(np.abs(counts.mean(0) - reference.mean(0)) < 0.2 * reference.std(0))
        np.testing.assert_allclose(counts.std(0), reference.std(0), rtol=0.15)


def test_derived_quantities_equal_the_models_deterministic_sites(mix):
    y = _spectra(mix, TRUTH, 2, seed=2)
    draws = laplace_batch(mix, y, key=jax.random.key(4), num_draws=2000)
    q = derived(mix, {k: v for k, v in draws.items() if k != "hessian_positive"})
    sites = ["counts", "thickness_mm", "activity_bq"]
    for b in range(2):
        samples = {k: jnp.asarray(draws[k][b]) for k in ("count_background", "count_nuclides", "u")}
        replay = Predictive(make_model(mix), posterior_samples=samples, return_sites=sites)(jax.random.key(0), y[b])
        for site in sites:
            np.testing.assert_allclose(q[site][b], np.asarray(replay[site]), rtol=1e-10)


def test_constrained_laplace_is_centred_on_the_map_and_ignores_positivity(mix):
    y = _spectra(mix, np.array([4000.0, 3000.0, 0.0]), 2, seed=3)  # an absent nuclide: the bound is active
    point = map_batch(mix, y)
    draws = laplace_batch(mix, y, key=jax.random.key(5), space="constrained", num_draws=2000)
    sd = draws["count_nuclides"].std(1)
    assert np.all(np.abs(draws["count_nuclides"].mean(1) - point["count_nuclides"]) < 0.1 * sd)
    assert np.all((draws["count_nuclides"][..., 1] < 0).mean(1) > 0.2)  # a Gaussian at a MAP near 0
    unconstrained = laplace_batch(mix, y, key=jax.random.key(6), num_draws=2000)
    assert np.all(unconstrained["count_nuclides"] > 0) and unconstrained["hessian_positive"].all()


def test_input_validation(mix):
    with pytest.raises(ValueError, match="shape"):
        laplace_batch(mix, np.ones(mix.n_channels), key=jax.random.key(0))
    with pytest.raises(ValueError, match="guide"):
        variational_batch(mix, np.ones((1, mix.n_channels)), key=jax.random.key(0), guide="laplace")
    with pytest.raises(ValueError, match="space"):
        laplace_batch(mix, np.ones((1, mix.n_channels)), key=jax.random.key(0), space="other")
