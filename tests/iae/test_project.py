import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayes_unmix.iae.project import fast_interpolation, project


def test_projection_recovers_known_weights_and_amplitudes(trained_iae):
    rng = np.random.default_rng(0)
    t_true = rng.uniform(0.05, 0.95, 16)
    lam_true = np.stack([t_true, 1 - t_true], -1)
    amp_true = rng.uniform(0.5, 50.0, 16)
    # spectra exactly on the barycentric span, with known weights and amplitudes
    spectra = amp_true[:, None] * np.asarray(trained_iae.synthesize(jnp.asarray(lam_true)))[:, 0, :]
    # local solver: start near the truth, as fast interpolation does on real data
    start = np.clip(lam_true + rng.normal(0, 0.03, lam_true.shape), 0, 1)
    result = project(trained_iae, spectra, init_weights=start, tol=1e-14)
    np.testing.assert_allclose(result.weights, lam_true, atol=1e-6)
    np.testing.assert_allclose(result.amplitudes[:, 0], amp_true, rtol=1e-6)
    assert result.spectra.shape == spectra.shape
    assert np.all(result.cost <= 1e-10 * np.sum(spectra**2, -1))


def test_projection_improves_on_fast_interpolation(trained_iae, line_data):
    x = line_data["valid"]
    fi = fast_interpolation(trained_iae, x)
    bsp = project(trained_iae, x)
    assert fi.spectra.shape == bsp.spectra.shape == x.shape
    np.testing.assert_allclose(bsp.weights.sum(-1), 1.0, atol=1e-12)
    # the projection starts from FI and only accepts decreases, spectrum by spectrum
    assert np.all(bsp.cost <= fi.cost * (1 + 1e-12))
    assert np.median(bsp.cost) < np.median(fi.cost)
    assert np.all(bsp.iterations >= 1)


def test_fast_interpolation_is_scale_equivariant(trained_iae, line_data):
    x = line_data["valid"][:5]
    a = fast_interpolation(trained_iae, x)
    b = fast_interpolation(trained_iae, 1000.0 * x)
    np.testing.assert_allclose(b.weights, a.weights, atol=1e-9)
    np.testing.assert_allclose(b.spectra, 1000.0 * a.spectra, rtol=1e-8)


def test_simplex_projection_keeps_weights_non_negative(trained_iae, line_data):
    result = project(trained_iae, line_data["valid"][:8], simplex=True)
    assert float(jnp.min(result.weights)) >= 0.0


def test_batch_shapes_and_errors(trained_iae, line_data):
    x = jnp.asarray(line_data["valid"][:6]).reshape(2, 3, 50)
    result = project(trained_iae, x)
    assert result.spectra.shape == (2, 3, 50) and result.weights.shape == (2, 3, 2)
    single = fast_interpolation(trained_iae, line_data["valid"][0])
    assert single.spectra.shape == (50,)
    with pytest.raises(ValueError, match="do not match the model"):
        fast_interpolation(trained_iae, np.ones((3, 49)))


def test_projection_compiles_once_per_shape(trained_iae, line_data):
    traced = []
    solve = jax.jit(lambda iae, x: (traced.append(1), project(iae, x))[1])
    for scale in (1.0, 2.0, 3.0):
        solve(trained_iae, scale * line_data["valid"][:4])
    assert len(traced) == 1
