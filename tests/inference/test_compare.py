import jax
import numpy as np
import pytest

from bayes_unmix.inference.compare import compare_fits, pareto_k
from bayes_unmix.inference.map import map_estimate
from bayes_unmix.inference.mcmc import NUTSConfig, nuts
from bayes_unmix.models.gamma import GammaMixture

CONFIG = NUTSConfig(num_warmup=200, num_samples=600)


def test_loo_prefers_the_mixture_with_the_present_nuclide(flat_background):
    x = np.arange(80)
    sig = np.stack([np.exp(-0.5 * ((x - c) / 3.0) ** 2) + 0.01 for c in (20, 50)])
    sig /= sig.sum(-1, keepdims=True)
    y = np.random.default_rng(0).poisson(np.array([2000.0, 500.0, 400.0]) @ np.vstack([flat_background, sig]))
    y = y.astype(float)
    both = GammaMixture(nuclides=("A", "B"), n_channels=80, background=flat_background, signatures=sig)
    only_a = GammaMixture(nuclides=("A",), n_channels=80, background=flat_background, signatures=sig[:1])
    fits = {
        "A+B": nuts(both, y, key=jax.random.key(0), config=CONFIG, progress=False),
        "A only": nuts(only_a, y, key=jax.random.key(1), config=CONFIG, progress=False),
    }
    table = compare_fits(fits)
    assert table.index[0] == "A+B"
    assert table.loc["A only", "elpd_diff"] < -2 * table.loc["A only", "dse"]  # ArviZ 1.x: differences are negative
    assert pareto_k(fits["A+B"]).shape == (80,)
    with pytest.raises(ValueError, match="point estimates"):
        compare_fits({**fits, "map": map_estimate(both, y, key=jax.random.key(2))})
    with pytest.raises(ValueError, match="different spectra"):
        other = nuts(both, y + 1, key=jax.random.key(3), config=CONFIG, progress=False)
        compare_fits({"A+B": fits["A+B"], "other": other})
