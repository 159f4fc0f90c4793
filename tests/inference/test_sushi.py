"""SUSHI: one iteration equals the published equations, cost decrease and stopping, recovery, bad inputs."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayes_unmix.inference.sushi import SushiConfig, SushiData, build_sushi, sushi
from bayes_unmix.models.component import SpectralComponent
from bayes_unmix.wavelets import starlet_forward

ENERGIES = np.linspace(3.0, 8.0, 64)  # keV
SIZE = 16


class LineComponent:
    """A Gaussian line on a flat continuum; centre 5.5 + theta_0 keV, width 0.4 + 0.15 theta_1 keV."""

    name = "line"
    n_latent = 2
    n_channels = ENERGIES.size
    parameter_names = ("centre_keV", "width_keV")

    @property
    def theta_bounds(self):
        return jnp.array([-1.0, -1.0]), jnp.array([1.0, 1.0])

    def initial_theta(self):
        return jnp.zeros(2)

    def parameters(self, theta):
        return jnp.stack([5.5 + theta[..., 0], 0.4 + 0.15 * theta[..., 1]], axis=-1)

    def spectra(self, theta):
        p = self.parameters(theta)
        s = 0.2 + jnp.exp(-0.5 * ((jnp.asarray(ENERGIES) - p[..., :1]) / p[..., 1:]) ** 2)
        return s / jnp.sum(s, axis=-1, keepdims=True)


class PowerLawComponent:
    """A power law E^-Gamma with Gamma = 2.5 + theta."""

    name = "powerlaw"
    n_latent = 1
    n_channels = ENERGIES.size
    parameter_names = ("photon_index",)

    @property
    def theta_bounds(self):
        return jnp.array([-1.0]), jnp.array([1.0])

    def initial_theta(self):
        return jnp.zeros(1)

    def parameters(self, theta):
        return 2.5 + theta

    def spectra(self, theta):
        s = jnp.asarray(ENERGIES) ** (-self.parameters(theta))
        return s / jnp.sum(s, axis=-1, keepdims=True)


COMPONENTS = (LineComponent(), PowerLawComponent())


def _truth():
    """Smooth latent maps ``(n_latent, H, W)`` and amplitudes ``(2, H, W)`` (a few hundred counts each)."""
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / (SIZE - 1)
    theta = (np.stack([0.6 * np.sin(2 * xx + yy) - 0.2, 0.5 * np.cos(3 * yy) * xx]), (0.6 * (xx - yy))[None])
    return theta, np.stack([300 + 200 * xx, 200 + 150 * yy])


def _rate(theta, amplitudes) -> np.ndarray:
    flat = [np.asarray(c.spectra(jnp.asarray(t.reshape(c.n_latent, -1).T))) for c, t in zip(COMPONENTS, theta)]
    rate = sum(a.reshape(-1)[:, None] * f for a, f in zip(amplitudes, flat))
    return rate.T.reshape(ENERGIES.size, SIZE, SIZE)


def _parameter_rmse(result, theta):
    truth = [np.moveaxis(np.asarray(c.parameters(np.moveaxis(t, 0, -1))), -1, 0) for c, t in zip(COMPONENTS, theta)]
    return [np.sqrt(np.mean((p - q) ** 2, axis=(1, 2))) for p, q in zip(result.parameters, truth)]


@pytest.fixture(scope="module")
def noisy_cube():
    theta, amps = _truth()
    return np.random.default_rng(0).poisson(_rate(theta, amps)).astype(float)


def test_components_satisfy_protocol():
    assert all(isinstance(c, SpectralComponent) for c in COMPONENTS)


def _published_cost(thetas, amps, counts):
    model = sum(a[:, None] * c.spectra(t) for c, t, a in zip(COMPONENTS, thetas, amps))
    return jnp.sum(jnp.where(model > 0, model - counts * jnp.log(jnp.abs(model) + 1e-16), 0.0))


@pytest.mark.parametrize("kmad", [0.0, 1e9])
def test_one_iteration_is_the_published_update(noisy_cube, kmad):
    """kmad = 0: theta <- theta - alpha grad (Gauss-Seidel); kmad huge: only the coarse starlet plane
    of that gradient step survives; amplitudes take one diagonal-Newton step per component."""
    config = SushiConfig(kmad=kmad, max_iter=5)
    counts = jnp.asarray(noisy_cube.reshape(ENERGIES.size, -1).T)
    init, step = build_sushi(COMPONENTS, (SIZE, SIZE), config)
    rng = np.random.default_rng(1)
    theta0 = [jnp.asarray(rng.uniform(-0.3, 0.3, (SIZE * SIZE, c.n_latent))) for c in COMPONENTS]
    amps0 = jnp.asarray(rng.uniform(100, 400, (2, SIZE * SIZE)))
    alpha = 0.1 / float(counts.sum(1).max())
    data = SushiData(counts, jnp.zeros_like(counts), jnp.ones_like(counts), jnp.asarray(alpha), jnp.arange(SIZE**2))
    state, info = step(init(theta0, amps0, data), data)

    expect = list(theta0)
    for c in range(2):
        cost = lambda t, c=c: _published_cost([t if i == c else expect[i] for i in range(2)], amps0, counts)
        grad = jax.grad(cost)
        u = expect[c] - alpha * grad(expect[c])
        if kmad > 0:
            maps = starlet_forward(u.T.reshape(-1, SIZE, SIZE), 2, boundary="symmetric")[:, -1]
            u = maps.reshape(maps.shape[0], -1).T
        expect[c] = u
        np.testing.assert_allclose(state.theta[c], expect[c], rtol=1e-10, atol=1e-12)

    amps = np.array(amps0)
    spectra = [np.asarray(c.spectra(t)) for c, t in zip(COMPONENTS, expect)]
    x = np.asarray(counts)
    for c in range(2):
        model = sum(a[:, None] * f for a, f in zip(amps, spectra))
        grad = np.sum(spectra[c] * (1 - x / model), axis=1)
        hess = np.sum(spectra[c] ** 2 * x / model**2, axis=1)
        amps[c] = np.maximum(amps[c] - grad / hess, 0.0)
    np.testing.assert_allclose(state.amplitudes, amps, rtol=1e-10)
    np.testing.assert_allclose(info.cost, _published_cost(expect, amps, counts), rtol=1e-12)
    assert int(state.iteration) == 1 and not bool(state.converged)


def test_skipping_empty_pixels_is_exact(noisy_cube):
    """Pixels without counts keep a = 0, so iterating only the others gives the same state."""
    counts = noisy_cube.copy()
    counts[:, :5, :6] = 0.0
    x = jnp.asarray(counts.reshape(ENERGIES.size, -1).T)
    config = SushiConfig(max_iter=5)
    init, step = build_sushi(COMPONENTS, (SIZE, SIZE), config)
    theta = [jnp.zeros((SIZE**2, c.n_latent)) for c in COMPONENTS]
    amps = jnp.broadcast_to(x.sum(1) / 2, (2, SIZE**2))
    active = np.flatnonzero(counts.sum(0).reshape(-1) > 0)

    def run(idx):
        data = SushiData(x[idx], jnp.zeros_like(x[idx]), jnp.ones_like(x[idx]), jnp.asarray(1e-4), jnp.asarray(idx))
        loop = jax.jit(lambda s: jax.lax.fori_loop(0, 3, lambda i, s: step(s, data)[0], s))
        return loop(init(theta, amps, data))

    full, part = run(np.arange(SIZE**2)), run(active)
    assert active.size == SIZE**2 - 30
    np.testing.assert_allclose(full.cost_history[:3], part.cost_history[:3], rtol=1e-12)
    np.testing.assert_allclose(full.amplitudes[:, active], part.amplitudes, rtol=1e-10, atol=1e-10)
    for a, b in zip(full.theta, part.theta):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.fixture(scope="module")
def faithful(noisy_cube):
    """The published algorithm with a looser tolerance (1e-6 takes ~6000 iterations here)."""
    return sushi(noisy_cube, COMPONENTS, config=SushiConfig(stop=1e-5, max_iter=3000, chunk=500), progress=False)


@pytest.fixture(scope="module")
def fast(noisy_cube):
    return sushi(noisy_cube, COMPONENTS, config=SushiConfig.fast(max_iter=300), progress=False)


def test_published_algorithm_lowers_cost_and_stops(faithful):
    history = faithful.cost_history
    assert faithful.converged and 152 <= faithful.n_iterations < 3000
    assert history.shape == (faithful.n_iterations,) and np.all(np.isfinite(history))
    window = history[: 50 * (history.size // 50)].reshape(-1, 50).mean(axis=1)
    assert np.all(np.diff(window) < 0)  # monotone-ish: 50-iteration means strictly decrease
    old, new = history[-150:-100].mean(), history[-50:].mean()
    assert abs(new - old) / abs(old) < 1e-5 <= abs(history[-151:-101].mean() - history[-51:-1].mean()) / abs(old)


def test_fast_variant_reaches_the_published_cost_quickly(faithful, fast):
    assert fast.converged and fast.n_iterations < 100
    assert fast.cost_history[-1] <= faithful.cost_history[-1]
    theta, _ = _truth()
    for err_fast, err_faithful in zip(_parameter_rmse(fast, theta), _parameter_rmse(faithful, theta)):
        assert np.all(err_fast < 1.3 * err_faithful + 1e-3)


def test_2026_settings_lower_the_cost(noisy_cube, faithful):
    """Map-MAD thresholds and one joint theta step (the 2026 code) descend like the 2024 rule."""
    config = SushiConfig(threshold_rule="map", sweep="jacobi", mad_constant=0.6735, max_iter=400, chunk=400)
    result = sushi(noisy_cube, COMPONENTS, config=config, progress=False)
    assert result.n_iterations == 400 and np.all(np.isfinite(result.cost_history))
    assert np.all(np.diff(result.cost_history[::50]) < 0)
    np.testing.assert_allclose(result.cost_history[-1], faithful.cost_history[399], rtol=1e-3)


def test_recovers_parameters_of_a_noiseless_cube():
    theta, amps = _truth()
    result = sushi(_rate(theta, amps), COMPONENTS, config=SushiConfig.fast(max_iter=300), progress=True)
    assert result.converged
    for err in _parameter_rmse(result, theta):
        assert np.all(err < 1e-4)  # keV and photon index
    np.testing.assert_allclose(result.amplitudes, amps, rtol=1e-4)
    np.testing.assert_allclose(sum(result.model_cubes), _rate(theta, amps), rtol=1e-6)
    assert [t.shape for t in result.theta] == [(2, SIZE, SIZE), (1, SIZE, SIZE)]


def test_thresholding_reduces_error_at_low_counts(noisy_cube, fast):
    theta, _ = _truth()
    pixelwise = sushi(noisy_cube, COMPONENTS, config=SushiConfig.fast(max_iter=300, kmad=0.0), progress=False)
    for err_sparse, err_pixel in zip(_parameter_rmse(fast, theta), _parameter_rmse(pixelwise, theta)):
        assert np.all(err_sparse < 0.8 * err_pixel)


def test_stopping_rule_for_a_positive_cost(noisy_cube):
    """Chi2 cost is positive: the published rule stops at iteration 152 while the cost still falls;
    the fixed rule goes on."""
    sigma = np.sqrt(noisy_cube + 1.0)
    base = SushiConfig(cost="chi2", max_iter=250)
    legacy = sushi(
        noisy_cube, COMPONENTS, sigma=sigma, config=dataclasses.replace(base, legacy_stop=True), progress=False
    )
    fixed = sushi(noisy_cube, COMPONENTS, sigma=sigma, config=base, progress=False)
    assert np.all(legacy.cost_history > 0) and legacy.converged and legacy.n_iterations == 152
    assert fixed.n_iterations > 152
    assert fixed.cost_history[-1] < legacy.cost_history[-1] * (1 - 1e-5)  # it was not converged at 152


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"counts": np.ones((64, 16))}, "shape"),
        ({"counts": -np.ones((64, 16, 16))}, "non-negative"),
        ({"counts": np.full((64, 16, 16), np.nan)}, "finite"),
        ({"counts": np.ones((32, 16, 16))}, "channels"),
        ({"counts": np.ones((64, 4, 4))}, "too small"),
        ({"background": np.ones(3)}, "background"),
        ({"background": -np.ones(64)}, "background"),
        ({"sigma": np.ones(64)}, "chi2"),
        ({"initial_amplitudes": np.ones((3, 16, 16))}, "initial_amplitudes"),
        ({"initial_theta": [np.zeros((2, 16, 16))]}, "initial_theta"),
        ({"components": ()}, "at least one"),
        ({"components": (object(),)}, "protocol"),
    ],
)
def test_bad_inputs_raise(kwargs, match):
    args = {"counts": np.ones((64, 16, 16)), "components": COMPONENTS} | kwargs
    with pytest.raises(ValueError, match=match):
        sushi(args.pop("counts"), args.pop("components"), progress=False, **args)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"cost": "gauss"},
        {"stop_window": 0},
        {"alpha_theta": -1.0},
        {"kmad": -1.0},
        {"sweep": "x"},
        {"threshold_rule": "map", "theta_step": "newton"},
    ],
)
def test_bad_config_raises(kwargs):
    with pytest.raises(ValueError):
        SushiConfig(**kwargs)
