"""Evidence by tempered SMC: exact answer on a conjugate problem, Bayes factors vs the Laplace shortcut."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import gammainc, gammaln

from bayes_unmix.inference.compare import compare_models
from bayes_unmix.inference.evidence import Evidence, SMCConfig, bayes_factor, log_evidence
from bayes_unmix.inference.identify import identify
from bayes_unmix.inference.mcmc import NUTSConfig
from bayes_unmix.models.gamma import GammaMixture

SMALL = SMCConfig(num_particles=400, num_runs=4)


def test_log_evidence_matches_the_exact_value_of_a_one_template_model():
    """y_c ~ Poisson(a s_c), a ~ U(0, L): Z = prod s^y / y! * gamma_inc(N + 1, L) N! / L, exactly."""
    n = 30
    s = np.exp(-np.arange(n) / 8.0)
    s /= s.sum()
    y = np.random.default_rng(1).poisson(400 * s).astype(float)
    mix = GammaMixture(nuclides=("A",), n_channels=n, signatures=s[None])
    total, width = y.sum(), mix.count_max * y.sum()
    exact = np.sum(y * np.log(s) - gammaln(y + 1)) + gammaln(total + 1) + np.log(gammainc(total + 1, width))
    exact -= np.log(width)
    ev = log_evidence(mix, y, key=jax.random.key(0), config=SMALL)
    assert abs(ev.log_z - exact) < 4 * ev.mc_error + 0.05, (ev, exact)


@pytest.fixture(scope="module")
def weak_signal(toy_model, flat_background):
    mix = GammaMixture.from_spectral_model(toy_model, flat_background)
    templates = np.asarray(mix.templates(toy_model.signatures(jnp.asarray(toy_model.weights_at(10.0)))))
    counts = np.random.default_rng(4).poisson(np.array([4000.0, 1500.0, 400.0]) @ templates).astype(float)
    return mix, counts


def test_compare_models_prefers_the_true_mixture_and_laplace_bf_agrees(weak_signal):
    mix, counts = weak_signal
    models = {"with Ba133": mix, "without Ba133": dataclasses.replace(mix, absent=("Ba133",))}
    study = compare_models(
        models, counts, key=jax.random.key(2), nuts_config=NUTSConfig(num_warmup=300, num_samples=800), smc_config=SMALL
    )
    assert study.loo.index[0] == "with Ba133" and {"max_pareto_k", "n_bad_k"} <= set(study.loo.columns)
    assert study.evidence.index[0] == "with Ba133"
    log_bf = -study.evidence.loc["without Ba133", "log_bf"]
    assert log_bf > 4.0, study.evidence  # measured: 9.2 (Laplace 9.2)
    # identify's Laplace shortcut for the same Bayes factor (other parameters profiled)
    result = identify(mix, counts)
    laplace = float(np.log(result.probability_present[0, 1] / (1 - result.probability_present[0, 1])))
    assert abs(laplace - log_bf) < 0.5 + 4 * study.evidence["log_bf_error"].max(), (laplace, log_bf)
    study.plot()


def test_bayes_factor_error_combines_both_runs():
    a = Evidence(1.0, 0.3, np.zeros(4), 5)
    b = Evidence(0.0, 0.4, np.zeros(4), 5)
    assert bayes_factor(a, b) == pytest.approx((1.0, 0.5))
