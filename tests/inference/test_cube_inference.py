"""Cube inference: whole-cube MAP recovers a noiseless cube, VI/NUTS intervals cover the truth,
pixel-by-pixel fits, and the DataTree schema (saved and reloaded)."""

import dataclasses
import importlib.util
import json
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bayes_unmix  # noqa: F401
from bayes_unmix.inference.cube import (
    CubeMAPConfig,
    cube_map,
    cube_map_point,
    cube_nuts,
    point_from_maps,
    select_spatial_scale,
)
from bayes_unmix.inference.cube_convert import (
    expected_poisson_deviance,
    load_maps,
    map_point,
    save_maps,
    stat_labels,
    summary_maps,
)
from bayes_unmix.inference.cube_pixel import PixelConfig, pixel_fit, pixel_map_point
from bayes_unmix.inference.cube_vi import ConvergenceWarning, cube_vi
from bayes_unmix.models.cube import CubeInputError, CubeModel


def _toys():
    """The analytic components and scene of tests/models/test_cube.py (one definition)."""
    path = Path(__file__).parents[1] / "models" / "test_cube.py"
    spec = importlib.util.spec_from_file_location("cube_toys", path)
    module = sys.modules.get("cube_toys") or importlib.util.module_from_spec(spec)
    if "cube_toys" not in sys.modules:
        spec.loader.exec_module(module)
        sys.modules["cube_toys"] = module
    return module


SIZE = 10
PIXEL = PixelConfig(grid=32, newton_iterations=40, block_size=64)


@pytest.fixture(scope="module")
def noiseless():
    comps, truth, cube = _toys().scene(SIZE, SIZE)
    return CubeModel(comps, SIZE, SIZE, spatial_scale=0.5), truth, cube


@pytest.fixture(scope="module")
def noisy():
    comps, truth, cube = _toys().scene(SIZE, SIZE, scale=300.0)
    counts = np.random.default_rng(1).poisson(cube).astype(float)
    return CubeModel(comps, SIZE, SIZE, spatial_scale=0.5), truth, counts


def _theta_maps(model, point):
    return [point[f"theta_{c.name}"].T.reshape(c.n_latent, SIZE, SIZE) for c in model.components]


def test_cube_map_discards_chunks_that_raise_the_loss(noiseless):
    # Adam with an absurd rate throws the log-amplitudes far out (loss inf): as when a line search runs out
    # of steps. The run must keep its last good point and stop, not report a converged blow-up.
    model, _, cube = noiseless
    config = CubeMAPConfig(optimizer="adam", learning_rate=1e3, max_iter=100)
    trace = cube_map_point(model, cube, config=config, progress=False)
    start = cube_map_point(model, cube, config=CubeMAPConfig(max_iter=0), progress=False).point
    assert not trace.converged and trace.iterations == 2 * config.chunk  # one retry after a reset, then stop
    assert len(trace.loss) == 1 and np.isfinite(trace.loss[0])
    np.testing.assert_allclose(trace.point["amplitude"], start["amplitude"], rtol=1e-12)


def test_cube_map_warns_when_it_stops_unconverged(noiseless):
    model, _, cube = noiseless
    with pytest.warns(ConvergenceWarning, match="did not converge in 10 iterations"):
        tree = cube_map(model, cube, config=CubeMAPConfig(max_iter=10), progress=False)
    assert tree.attrs["converged"] == 0 and tree.attrs["iterations"] == 10
    blow_up = CubeMAPConfig(optimizer="adam", learning_rate=1e3, max_iter=100)  # as in the test above
    with pytest.warns(ConvergenceWarning, match="raised the loss twice"):
        cube_map(model, cube, config=blow_up, progress=False)
    pixel = pixel_map_point(model, cube, config=PIXEL, progress=False)
    tree = cube_map(model, cube, init=pixel, config=CubeMAPConfig(max_iter=400), progress=False)  # no warning
    assert tree.attrs["converged"] == 1


def test_cube_map_reuses_its_compilation_across_prior_scales(noisy):
    """Models that differ only in prior scales share one compiled MAP (the scales are its arguments), and
    each fit uses its own scales: a cached fit equals a freshly compiled one."""
    from bayes_unmix.inference import cube as cube_inference

    model, _, counts = noisy
    ratio = dataclasses.replace(model, amplitude_scale=1.0, amplitude_prior="ratio")
    other = dataclasses.replace(ratio, spatial_scale=0.05, amplitude_scale=0.1)
    config = CubeMAPConfig(max_iter=100)
    fits = [cube_map_point(m, counts, config=config, progress=False) for m in (ratio, other, ratio)]
    assert fits[1].wall_time_s < 0.5 * fits[0].wall_time_s  # no second compilation
    assert not np.allclose(fits[0].point["amplitude"], fits[1].point["amplitude"])
    np.testing.assert_array_equal(fits[0].point["amplitude"], fits[2].point["amplitude"])
    cube_inference._MAP_CACHE.clear()
    fresh = cube_map_point(other, counts, config=config, progress=False)
    for site, value in fresh.point.items():
        np.testing.assert_allclose(fits[1].point[site], value, rtol=1e-10)


def test_pixel_and_cube_map_recover_a_noiseless_cube(noiseless):
    model, truth, cube = noiseless
    pixel = pixel_map_point(model, cube, config=PIXEL, progress=False)
    for est, true in zip(_theta_maps(model, pixel), truth["theta"]):
        assert np.median(np.abs(est - true)) < 1e-6  # independent pixels: exact on noiseless data
    trace = cube_map_point(model, cube, init=pixel, config=CubeMAPConfig(max_iter=400), progress=False)
    assert trace.converged and trace.loss[-1] <= trace.loss[0]
    # the spatial prior trades a little likelihood for smoother maps: the MAP beats the truth's density
    truth_point = point_from_maps(model, truth["amplitude"], truth["theta"])
    truth_loss = cube_map_point(model, cube, init=truth_point, config=CubeMAPConfig(max_iter=0), progress=False).loss[0]
    assert trace.loss[-1] <= truth_loss
    amp = trace.point["amplitude"].T.reshape(2, SIZE, SIZE)
    np.testing.assert_allclose(amp, truth["amplitude"], rtol=0.05)
    thermal, synchrotron = _theta_maps(model, trace.point)
    assert np.median(np.abs(thermal - truth["theta"][0])) < 0.01
    assert np.median(np.abs(synchrotron - truth["theta"][1])) < 0.1


def test_cube_vi_and_datatree_schema(noisy, tmp_path):
    model, truth, counts = noisy
    init = point_from_maps(model, truth["amplitude"], truth["theta"])
    tree = cube_vi(
        model, counts, key=jax.random.key(0), guide="meanfield", steps=300, num_draws=200, init=init, progress=False
    )
    post, maps = tree["posterior"].to_dataset(), summary_maps(tree)
    assert post["amplitude"].dims == ("chain", "draw", "component", "y", "x")
    assert post["thermal_kT_keV"].dims == ("chain", "draw", "y", "x")
    assert list(maps.stat.values) == list(stat_labels(0.9)) == ["mean", "sd", "q05", "q95"]
    assert tree["observed_data"]["counts"].dims == ("channel", "y", "x")
    # physical maps are the components' parameters of the theta draws
    kt = model.components[0].parameters(np.moveaxis(post["theta_thermal"].values, 2, -1))[..., 0]
    np.testing.assert_allclose(post["thermal_kT_keV"].values, kt, rtol=1e-12)
    # the truth lies within the 99.9 % band of most pixels (mean-field VI ignores the amplitude-shape
    # correlations, so it is overconfident: a loose bound that still fails for a wrong posterior)
    mean, sd = maps["amplitude"].sel(stat="mean").values, maps["amplitude"].sel(stat="sd").values
    assert np.mean(np.abs(mean - truth["amplitude"]) < 3.3 * sd) > 0.6
    assert np.mean(np.abs(mean - truth["amplitude"]) / truth["amplitude"]) < 0.15
    assert np.all(maps["deviance"].values < 3.0)
    # a good fit: the deviance per channel is what counts drawn at the fitted rates would give
    ratio = np.median(maps["deviance"].values) / np.median(maps["expected_deviance"].values)
    assert 0.85 < ratio < 1.15, ratio
    path = save_maps(tree, tmp_path / "maps.nc")
    back = load_maps(path)
    assert "posterior" not in back.children and back.attrs["method"] == "vi-meanfield"
    np.testing.assert_allclose(back["maps"]["amplitude"].values, maps["amplitude"].values)
    assert set(map_point(tree)) == {"amplitude", "theta_thermal", "theta_synchrotron"}


def test_expected_poisson_deviance_matches_simulated_counts():
    rng = np.random.default_rng(0)
    for mu in (0.01, 0.3, 2.0, 30.0, 3000.0):
        k = rng.poisson(mu, 200_000).astype(float)
        d = 2 * (np.where(k > 0, k * np.log(np.maximum(k, 1) / mu), 0.0) - (k - mu))
        assert abs(d.mean() - expected_poisson_deviance(np.array(mu))) < 4 * d.std() / np.sqrt(k.size), mu


def test_cube_nuts_small_cube_covers_truth():
    comps, truth, cube = _toys().scene(6, 6, scale=300.0)
    counts = np.random.default_rng(2).poisson(cube).astype(float)
    model = CubeModel(comps, 6, 6, spatial_prior="smooth", spatial_scale=0.5)
    init = point_from_maps(model, truth["amplitude"], truth["theta"])
    tree = cube_nuts(
        model,
        counts,
        key=jax.random.key(1),
        num_warmup=100,
        num_samples=100,
        num_chains=1,
        init=init,
        progress=False,
        check=False,
    )
    maps = summary_maps(tree)
    lo, hi = maps["amplitude"].sel(stat="q05").values, maps["amplitude"].sel(stat="q95").values
    inside = (lo <= truth["amplitude"]) & (truth["amplitude"] <= hi)
    assert 0.7 <= inside.mean() <= 1.0
    assert tree["sample_stats"]["diverging"].values.sum() < 5


def test_pixel_fit_map_tree_and_bad_input(noiseless):
    model, truth, cube = noiseless
    tree = pixel_fit(model, cube, method="map", config=PIXEL, progress=False)
    assert tree.attrs["method"] == "pixel-map" and tree.attrs["spatial_prior"] == "none"
    assert np.isnan(summary_maps(tree)["amplitude"].sel(stat="sd").values).all()
    with pytest.raises(CubeInputError, match="channels"):
        cube_map(model, cube[:-1], progress=False)
    with pytest.raises(CubeInputError, match="amplitude maps"):
        point_from_maps(model, truth["amplitude"][:1], truth["theta"])
    with pytest.raises(ValueError, match="key"):
        pixel_fit(model, cube, method="nuts", progress=False)


@dataclasses.dataclass(frozen=True)
class _Barycentric:
    """IAE-like component: log-space mixture of three anchor spectra with barycentric weights, in a wide
    ``theta_bounds`` box whose off-simplex part decodes to extrapolated spectra and exploding parameters."""

    name: str = "thermal"
    n_latent: int = 3
    n_channels: int = 48
    parameter_names: tuple[str, ...] = ("kT_keV",)

    @property
    def theta_bounds(self):
        return jnp.array([-3.0, -2.0, -4.0]), jnp.array([4.0, 3.0, 5.0])

    def initial_theta(self):
        return jnp.full(3, 1.0 / 3.0)

    def _anchor_logs(self):
        e = jnp.linspace(3.0, 8.0, self.n_channels)
        kt, line = jnp.array([1.0, 2.5, 6.0])[:, None], jnp.array([4.0, 5.5, 6.7])[:, None]
        s = jnp.exp(-e / kt) + 0.3 * jnp.exp(-0.5 * ((e - line) / 0.2) ** 2)
        return jnp.log(s / s.sum(-1, keepdims=True))

    def parameters(self, theta):
        theta = jnp.asarray(theta)
        kt = jnp.exp(theta @ jnp.log(jnp.array([1.0, 2.5, 6.0])) + 8.0 * (theta.sum(-1) - 1.0) ** 2)
        return kt[..., None]

    def spectra(self, theta):
        return jax.nn.softmax(jnp.asarray(theta) @ self._anchor_logs(), axis=-1)


def test_pixel_map_keeps_barycentric_latents_on_the_simplex():
    comp, power = _Barycentric(), _toys().PowerLaw()
    rng = np.random.default_rng(3)
    n = 3
    weights = rng.dirichlet(np.full(3, 3.0), size=n * n)  # (P, 3), inside the simplex
    gamma = rng.uniform(-0.5, 0.5, size=(n * n, 1))
    amp = rng.uniform(200.0, 600.0, size=(n * n, 2))
    expected = amp[:, :1] * np.asarray(comp.spectra(weights)) + amp[:, 1:] * np.asarray(power.spectra(gamma))
    model = CubeModel((comp, power), n, n, spatial_prior="none")
    cube = expected.T.reshape(-1, n, n)
    point = pixel_map_point(
        model, cube, config=PixelConfig(grid=32, newton_iterations=40, block_size=16), progress=False
    )
    theta = point["theta_thermal"]
    low, high = (np.asarray(b) for b in comp.theta_bounds)
    assert np.all((theta >= low) & (theta <= high)) and np.all(theta >= 0)
    np.testing.assert_allclose(theta.sum(-1), 1.0, atol=1e-12)
    kt_true, kt = np.asarray(comp.parameters(weights)), np.asarray(comp.parameters(theta))
    np.testing.assert_allclose(kt, kt_true, rtol=1e-3)
    np.testing.assert_allclose(point["amplitude"], amp, rtol=1e-2)  # the Exponential prior shrinks by ~1 count


def test_cube_vi_pixel_guide_keeps_barycentric_latents_on_the_simplex():
    # a simplex of n weights has n - 1 unconstrained coordinates: the guide's blocks must be cut accordingly
    comp, power = _Barycentric(), _toys().PowerLaw()
    rng = np.random.default_rng(5)
    weights, gamma = rng.dirichlet(np.full(3, 3.0), size=16), rng.uniform(-0.5, 0.5, size=(16, 1))
    expected = 400.0 * np.asarray(comp.spectra(weights)) + 300.0 * np.asarray(power.spectra(gamma))
    model = CubeModel((comp, power), 4, 4, spatial_prior="none")
    counts = rng.poisson(expected.T.reshape(-1, 4, 4)).astype(float)
    tree = cube_vi(model, counts, key=jax.random.key(0), steps=50, progress=False, check=False)
    theta = tree["posterior"]["theta_thermal"].values  # (chain, draw, latent, y, x)
    assert theta.shape[2] == 3 and np.all(theta > 0)
    np.testing.assert_allclose(theta.sum(2), 1.0, atol=1e-10)
    assert tree["posterior"]["theta_synchrotron"].shape[2] == 1


@pytest.mark.parametrize("coordinates", ["weights", "physical"])
def test_pixel_map_with_pretrained_iae_components_stays_physical(coordinates):
    from bayes_unmix.data.cube import toy_remnant_cube
    from bayes_unmix.pretrained import load_component

    comps = tuple(load_component(f"xray_{n}", coordinates=coordinates) for n in ("thermal", "synchrotron"))
    cube = toy_remnant_cube(0, size=12, radius=41.0 * 12 / 94)
    counts = cube.counts[:, 3:7, 3:7]
    model = CubeModel(comps, 4, 4, spatial_prior="none")
    point = pixel_map_point(model, counts, config=PixelConfig(grid=32, block_size=16), progress=False)
    kt = np.asarray(comps[0].parameters(point["theta_thermal"]))[:, 0]
    gamma = np.asarray(comps[1].parameters(point["theta_synchrotron"]))[:, 0]
    for c in comps:  # within the box (weights: and on the simplex of the anchors)
        low, high = (np.asarray(b) for b in c.theta_bounds)
        theta = point[f"theta_{c.name}"]
        assert np.all((theta >= low) & (theta <= high))
        assert model.on_simplex(c) == (coordinates == "weights")
        if model.on_simplex(c):
            assert np.all(theta >= 0) and np.allclose(theta.sum(-1), 1.0)
    # the training ranges are kT 0.8-6 keV and Gamma 1-4; the box search gave kT ~ 1e4-1e5 keV
    assert np.all((kt > 0.7) & (kt < 7.0)) and np.all((gamma > 0.9) & (gamma < 4.1))
    truth = cube.truth.parameters["thermal"][0][3:7, 3:7].reshape(-1)
    present = np.isfinite(truth)
    assert np.median(np.abs(kt[present] - truth[present])) < 1.0


def test_cube_vi_pixel_guide_keeps_amplitude_correlations(noisy):
    model, truth, counts = noisy
    init = point_from_maps(model, truth["amplitude"], truth["theta"])
    tree = cube_vi(model, counts, key=jax.random.key(0), guide="pixel", steps=300, init=init, progress=False)
    assert tree.attrs["method"] == "vi-pixel"
    amp = tree["posterior"]["amplitude"].values[0]  # (draw, component, y, x)
    # the two amplitudes of a pixel trade counts: negatively correlated (zero under a mean-field guide)
    a, b = (amp[:, i].reshape(amp.shape[0], -1) for i in range(2))
    corr = np.mean((a - a.mean(0)) * (b - b.mean(0)), 0) / (a.std(0) * b.std(0))
    assert np.median(corr) < -0.2
    maps = summary_maps(tree)
    mean, sd = maps["amplitude"].sel(stat="mean").values, maps["amplitude"].sel(stat="sd").values
    assert np.mean(np.abs(mean - truth["amplitude"]) < 3.3 * sd) > 0.8
    assert np.isfinite(tree.attrs["elbo_gain_last_tenth"])
    with pytest.raises(ValueError, match="guide"):
        cube_vi(model, counts, key=jax.random.key(0), guide="full", init=init, progress=False)
    # a guide still climbing when the steps run out is flagged, not returned silently
    kw = {"steps": 500, "learning_rate": 3e-3, "init_scale": 1e-3, "init": init, "progress": False}
    with pytest.warns(ConvergenceWarning, match="VI has not converged"):
        cube_vi(model, counts, key=jax.random.key(0), **kw)


def test_spatial_guide_convolution_is_the_b3_smoothing_with_the_stated_log_det():
    from bayes_unmix.inference.cube_vi import _convolve_maps, _smoothing_eigenvalues

    h, w = 6, 8
    eig = _smoothing_eigenvalues(h, w)  # (2, H, W)
    delta = np.zeros((h, w, 1))
    delta[2, 3] = 1.0
    b3 = np.array([1, 4, 6, 4, 1]) / 16
    for j, dilation in enumerate((1, 2)):  # K_j e_p is the B3 kernel with holes of dilation - 1, wrapped round
        expected = np.zeros((h, w))
        for dy, ky in zip(range(-2, 3), b3):
            for dx, kx in zip(range(-2, 3), b3):
                expected[(2 + dilation * dy) % h, (3 + dilation * dx) % w] += ky * kx
        np.testing.assert_allclose(_convolve_maps(delta, eig[j][..., None])[..., 0], expected, atol=1e-12)
    # C = I + b1 K1 + b2 K2, applied to the basis: symmetric, log |det C| = sum log eigenvalues
    gain = 1.0 + 0.7 * eig[0] + 0.3 * eig[1]
    dense = np.stack([np.ravel(_convolve_maps(e.reshape(h, w, 1), gain[..., None])) for e in np.eye(h * w)], axis=1)
    np.testing.assert_allclose(dense, dense.T, atol=1e-12)
    assert np.linalg.slogdet(dense)[1] == pytest.approx(float(np.sum(np.log(gain))), rel=1e-10)
    # independent pixel variances through C: the diagonal of C diag(v) C^T (the empty pixels' expected total)
    from bayes_unmix.inference.cube_vi import _convolve_variance

    variance = np.random.default_rng(0).uniform(0.5, 2.0, (h, w))
    np.testing.assert_allclose(
        np.asarray(_convolve_variance(jnp.asarray(variance), gain)).ravel(),
        np.diag(dense @ np.diag(variance.ravel()) @ dense.T),
        rtol=1e-10,
    )


@pytest.mark.parametrize("guide", ["pixel", "spatial"])
def test_empty_pixels_enter_the_elbo_by_their_expected_total(noisy, guide):
    """Pixels without counts: the guide's factor swaps the drawn total for its expectation exp(loc + var / 2), so the
    ELBO is unchanged in expectation (checked against a Monte Carlo mean of the draws) and its draws stop
    depending on the total's draw there; pixels with counts are left alone."""
    from numpyro.handlers import seed, substitute, trace

    from bayes_unmix.inference.cube import _start
    from bayes_unmix.inference.cube_vi import _pixel_block_guide

    model, truth, counts = noisy
    counts = counts.copy()
    counts[:, :3, :3] = 0.0  # nine empty pixels
    x = model.to_pixels(counts)
    start = _start(model, counts, None, point_from_maps(model, truth["amplitude"], truth["theta"]), False)
    auto = substitute(_pixel_block_guide(model, start, 1.0, spatial=guide == "spatial"),
                      data={"spatial_strength": jnp.full((2, 5), 0.5)})  # fmt: skip

    def one(key):
        tr = trace(seed(auto, key)).get_trace(x)
        site = tr["_expected_total"]
        return site["fn"].log_prob(site["value"]), tr["amplitude"]["value"].sum(-1)

    factor, total = (np.asarray(v) for v in jax.vmap(one)(jax.random.split(jax.random.key(0), 4000)))
    empty = np.asarray(x.sum(-1) == 0)
    assert empty.sum() == 9 and np.all(factor[:, ~empty] == 0.0)
    expected = (factor + total)[:, empty]  # factor = E[total] - total: the same E[total] in every draw
    np.testing.assert_allclose(expected, np.broadcast_to(expected[0], expected.shape), rtol=1e-9)
    se = total[:, empty].std(0) / np.sqrt(len(total))
    expected = expected[0]
    assert np.all(np.abs(total[:, empty].mean(0) - expected) < 5 * se)


def test_spatial_guide_correlates_neighbours_under_a_smoothness_prior(noisy):
    _, truth, counts = noisy
    comps = _toys().scene(SIZE, SIZE)[0]
    model = CubeModel(comps, SIZE, SIZE, spatial_prior="smooth", spatial_scale=0.05)
    init = point_from_maps(model, truth["amplitude"], truth["theta"])
    fits = {}
    for guide in ("pixel", "spatial"):
        tree = cube_vi(model, counts, key=jax.random.key(0), guide=guide, steps=500, init=init, progress=False)
        gamma = tree["posterior"]["synchrotron_photon_index"].values[0]  # (draw, y, x)
        a, b = (g.reshape(len(g), -1) for g in (gamma[:, :, :-1], gamma[:, :, 1:]))
        corr = np.median(np.mean((a - a.mean(0)) * (b - b.mean(0)), 0) / (a.std(0) * b.std(0)))
        fits[guide] = (tree.attrs["final_elbo"], corr, gamma.std(0).mean())
    # measured: ELBO -11489.8 / -11470.2, neighbour correlation 0.00 / 0.40, photon-index sd 0.078 / 0.098
    assert fits["spatial"][0] > fits["pixel"][0] + 10.0
    assert abs(fits["pixel"][1]) < 0.1 and fits["spatial"][1] > 0.25
    assert fits["spatial"][2] > 1.15 * fits["pixel"][2]


def test_spatial_scales_are_chosen_by_cross_validation():
    """Held-out halves of the counts favour strong smoothing for flat latent maps, a weak prior for
    pixel-to-pixel noise in the maps, and so map by map."""
    toys = _toys()
    comps = (toys.Thermal(), toys.PowerLaw())
    rng = np.random.default_rng(2)
    flat = (np.full((2, SIZE, SIZE), 0.1), np.full((1, SIZE, SIZE), -0.1))
    rough = (rng.uniform(-0.8, 0.8, (2, SIZE, SIZE)), rng.uniform(-0.8, 0.8, (1, SIZE, SIZE)))
    mixed = (flat[0], rough[1])
    amp = np.full((2, SIZE, SIZE), 3000.0)
    chosen = {}
    for label, theta in (("flat", flat), ("rough", rough), ("mixed", mixed)):
        spectra = [np.asarray(c.spectra(jnp.moveaxis(jnp.asarray(t), 0, -1))) for c, t in zip(comps, theta)]
        cube = np.moveaxis(sum(a[..., None] * s for a, s in zip(amp, spectra)), -1, 0)
        counts = rng.poisson(cube).astype(float)
        model = CubeModel(comps, SIZE, SIZE)
        init = point_from_maps(model, amp, theta)
        kw = {"key": jax.random.key(0), "scales": (0.003, 0.3), "map_iter": 200, "init": init, "progress": False}
        best, held_out = select_spatial_scale(model, counts, per_latent=label == "mixed", **kw)
        chosen[label] = best.spatial_scale
        if label != "mixed":
            assert set(held_out) == {"0.003", "0.3"}
    assert chosen["flat"] == 0.003 and chosen["rough"] == 0.3
    assert chosen["mixed"] == {"thermal": (0.003, 0.003), "synchrotron": (0.3,)}
    with pytest.raises(ValueError, match="positive"):
        select_spatial_scale(model, counts, key=jax.random.key(0), scales=(0.0,), init=init, progress=False)
    with pytest.raises(CubeInputError, match="integer counts"):
        select_spatial_scale(model, counts + 0.5, key=jax.random.key(0), init=init, progress=False)


def _amplitude_scene(amp: np.ndarray, rng: np.random.Generator):
    """The two analytic components with flat latent maps, ``amp`` (2, SIZE, SIZE), and Poisson counts."""
    toys = _toys()
    comps = (toys.Thermal(), toys.PowerLaw())
    theta = (np.full((2, SIZE, SIZE), 0.1), np.full((1, SIZE, SIZE), -0.1))
    spectra = [np.asarray(c.spectra(jnp.moveaxis(jnp.asarray(t), 0, -1))) for c, t in zip(comps, theta)]
    counts = rng.poisson(np.moveaxis(sum(a[..., None] * s for a, s in zip(amp, spectra)), -1, 0)).astype(float)
    return comps, theta, counts


def test_amplitude_scale_is_chosen_by_cross_validation():
    """Flat amplitude maps make the spatial prior on the log amplitudes win on held-out counts; amplitudes
    rough from pixel to pixel (a factor e^+-1) make it lose."""
    rng = np.random.default_rng(3)
    chosen = {}
    for label, amp in (
        ("flat", np.full((2, SIZE, SIZE), 300.0)),
        ("rough", 300.0 * np.exp(rng.uniform(-1, 1, (2, SIZE, SIZE)))),
    ):
        comps, theta, counts = _amplitude_scene(amp, rng)
        model = CubeModel(comps, SIZE, SIZE)
        kw = {"key": jax.random.key(0), "scales": (0.003,), "map_iter": 200, "progress": False}
        best, held_out = select_spatial_scale(
            model, counts, amplitude_scales=(0.01,), init=point_from_maps(model, amp, theta), **kw
        )
        assert set(held_out) == {"0.003", "amplitude=0.01"}
        chosen[label] = best.amplitude_scale
    assert chosen == {"flat": 0.01, "rough": None}


def test_ratio_prior_is_chosen_where_only_the_pixel_totals_are_rough():
    """Both components scaled by one rough factor per pixel (e^+-1): the log amplitude maps are rough, their
    ratio flat, so the prior on the log ratio map wins on held-out counts and the one on each log amplitude
    map loses; ``scales=()`` keeps (and scores) the latent scales given."""
    rng = np.random.default_rng(4)
    amp = 300.0 * np.exp(rng.uniform(-1, 1, (SIZE, SIZE))) * np.ones((2, 1, 1))
    comps, theta, counts = _amplitude_scene(amp, rng)
    model = CubeModel(comps, SIZE, SIZE, spatial_scale=0.003)
    best, held_out = select_spatial_scale(
        model,
        counts,
        key=jax.random.key(0),
        scales=(),
        amplitude_scales=(0.01,),
        amplitude_priors=("log", "ratio"),
        map_iter=200,
        init=point_from_maps(model, amp, theta),
        progress=False,
    )
    assert set(held_out) == {"given", "amplitude=0.01", "ratio=0.01"}
    assert held_out["ratio=0.01"] > held_out["given"] > held_out["amplitude=0.01"]
    assert (best.amplitude_prior, best.amplitude_scale, best.spatial_scale) == ("ratio", 0.01, 0.003)
    with pytest.raises(ValueError, match="unknown amplitude prior kinds"):
        select_spatial_scale(model, counts, key=jax.random.key(0), amplitude_priors=("share",), progress=False)


def test_log_normal_amplitudes_keep_faint_components_in_the_point_estimates(monkeypatch):
    """With a wide log-normal amplitude prior the MAPs are modes over log a: a faint component keeps about its
    counts. The mode over a itself would drop it (the density grows as 1 / a towards 0)."""
    from bayes_unmix.inference import cube as cube_inference

    comps, truth, _ = _toys().scene(SIZE, SIZE, scale=300.0)
    amplitude = truth["amplitude"] * np.array([1.0, 0.05])[:, None, None]  # synchrotron: 5-10 of ~250 counts
    spectra = [np.asarray(c.spectra(jnp.moveaxis(jnp.asarray(t), 0, -1))) for c, t in zip(comps, truth["theta"])]
    expected = np.moveaxis(sum(a[..., None] * s for a, s in zip(amplitude, spectra)), -1, 0)
    counts = np.random.default_rng(2).poisson(expected).astype(float)
    model = CubeModel(comps, SIZE, SIZE, spatial_scale=0.5, amplitude_log_sd=10.0)
    config = CubeMAPConfig(max_iter=300)

    def faint(point) -> float:
        return float(np.median(point["amplitude"][:, 1] / amplitude[1].ravel()))

    cube_inference._MAP_CACHE.clear()
    assert 0.3 < faint(cube_map_point(model, counts, config=config, progress=False).point) < 3.0
    assert 0.3 < faint(pixel_map_point(model, counts, config=PIXEL, progress=False)) < 3.0
    monkeypatch.setattr(cube_inference, "point_log_jacobian", lambda m, a: jnp.zeros(()))
    cube_inference._MAP_CACHE.clear()
    assert faint(cube_map_point(model, counts, config=config, progress=False).point) < 0.1
    cube_inference._MAP_CACHE.clear()


def _poisson_counts(model: CubeModel, amplitude: np.ndarray, theta_maps, seed: int = 3) -> np.ndarray:
    """Poisson counts ``(E, H, W)`` at the expected counts of amplitude maps ``(C, H, W)`` and latent maps."""
    point = point_from_maps(model, amplitude, theta_maps)
    theta = {c.name: jnp.asarray(point[f"theta_{c.name}"]) for c in model.components}
    expected = model.to_maps(model.expected_counts(jnp.asarray(point["amplitude"]), theta))
    return np.random.default_rng(seed).poisson(expected).astype(float)


def test_presence_prior_lets_an_absent_component_reach_zero():
    # thermal emission only in the left half: with a presence prior the right half's thermal intervals
    # reach exactly 0 (absent draws) and stay small (an upper limit), while the left half's thermal and the
    # synchrotron (but in a few pixels where thermal alone can stand in for it) are present with probability
    # ~1; a positive amplitude prior keeps every interval above 0
    comps, truth, _ = _toys().scene(SIZE, SIZE, scale=300.0)
    amplitude = truth["amplitude"].copy()
    amplitude[0, :, SIZE // 2 :] = 0.0
    model = CubeModel(comps, SIZE, SIZE, spatial_scale=0.5, amplitude_log_sd=10.0, presence_prior=0.5)
    counts = _poisson_counts(model, amplitude, truth["theta"])
    init = point_from_maps(model, np.maximum(amplitude, 1.0), truth["theta"])
    left, right = np.s_[:, : SIZE // 2], np.s_[:, SIZE // 2 :]
    fits = {}
    for q in (0.5, None):
        fitted = dataclasses.replace(model, presence_prior=q)
        fits[q] = summary_maps(cube_vi(fitted, counts, key=jax.random.key(0), steps=300, init=init, progress=False))
    maps = fits[0.5]
    thermal = maps["amplitude"].sel(component="thermal")
    assert np.mean(thermal.sel(stat="q05").values[right] == 0.0) > 0.9
    assert np.median(thermal.sel(stat="q95").values[right]) < 0.05 * np.mean(amplitude[0][left])
    presence = maps["presence"].sel(stat="mean")
    assert presence.sel(component="thermal").values[left].min() > 0.99
    assert np.median(presence.sel(component="synchrotron").values) > 0.99
    lo, hi = (maps["amplitude"].sel(stat=s).values for s in ("q05", "q95"))
    covered = (lo <= amplitude) & (amplitude <= hi)
    assert covered[0][right].mean() > 0.9 and covered[0][left].mean() > 0.7 and covered[1].mean() > 0.7
    assert np.all(fits[None]["amplitude"].sel(component="thermal", stat="q05").values > 0)


def test_presence_prior_is_chosen_where_a_component_is_absent():
    """Thermal emission missing from the right half: held-out counts favour a presence prior over none; with
    both components in every pixel they favour none. Held-out configurations are weighted by their posterior
    given the fitted half: with their prior weights the presence prior would lose both scenes (by 133 and 202
    nats at q = 0.5)."""
    comps, truth, _ = _toys().scene(SIZE, SIZE, scale=300.0)
    chosen = {}
    for label in ("absent", "everywhere"):
        amplitude = truth["amplitude"].copy()
        if label == "absent":
            amplitude[0, :, SIZE // 2 :] = 0.0
        model = CubeModel(comps, SIZE, SIZE, spatial_scale=0.5, amplitude_log_sd=10.0)
        counts = _poisson_counts(model, amplitude, truth["theta"])
        best, held_out = select_spatial_scale(
            model,
            counts,
            key=jax.random.key(0),
            scales=(),
            presence_priors=(0.5, 0.9),
            map_iter=200,
            init=point_from_maps(model, np.maximum(amplitude, 1.0), truth["theta"]),
            progress=False,
        )
        assert set(held_out) == {"given", "presence=off", "presence=0.5", "presence=0.9"}
        chosen[label] = best.presence_prior
    assert chosen == {"absent": 0.5, "everywhere": None}
    with pytest.raises(ValueError, match="presence priors must be probabilities"):
        select_spatial_scale(model, counts, key=jax.random.key(0), presence_priors=(1.0,), progress=False)


def _gmrf_maps(h: int, w: int, sigmas, rng: np.random.Generator) -> np.ndarray:
    """Maps ``(k, h, w)`` drawn from the smoothness prior's Gaussian field at sds ``sigmas`` of neighbour
    differences (around level 0)."""
    d = _toys()._difference_matrix(h, w)
    eig, vec = np.linalg.eigh(d.T @ d)
    root = vec[:, 1:] / np.sqrt(eig[1:])  # the constant map (eigenvalue 0) is left out
    return np.stack([s * (root @ rng.standard_normal(h * w - 1)).reshape(h, w) for s in sigmas])


def test_learned_scales_recover_the_roughness_of_the_truth():
    """Latent maps drawn at scales 0.12 (kT), 0.04 (z) and 0.08 (photon index), bright pixels: VI and NUTS,
    started at 0.2, learn each map's scale to within 15 % of the truth maps' own (the mode of the scale given
    the maps) and of each other."""
    size = 12
    comps, truth, _ = _toys().scene(size, size, scale=30000.0)
    theta = _gmrf_maps(size, size, [2.0 * s for s in (0.12, 0.04, 0.08)], np.random.default_rng(0))  # range 2
    model = CubeModel(comps, size, size, spatial_prior="smooth", spatial_scale=0.2, scale_hyperprior=(0.001, 1.0))
    counts = _poisson_counts(model, truth["amplitude"], (theta[:2], theta[2:]))
    d = _toys()._difference_matrix(size, size)
    own = np.sqrt(np.sum((d @ theta.reshape(3, -1).T) ** 2, 0) / (size * size)) / 2.0
    init = point_from_maps(model, truth["amplitude"], (theta[:2], theta[2:]))
    # check=False: in pixels this bright the ELBO keeps gaining from the learning rate's decay (20 nats over the
    # last tenth at fixed scales too, after 1500 or 6000 steps), which the convergence check cannot tell apart
    vi = cube_vi(model, counts, key=jax.random.key(0), steps=1500, init=init, progress=False, check=False)
    nuts = cube_nuts(model, counts, key=jax.random.key(1), num_warmup=200, num_samples=200, num_chains=1,
                     init=init, progress=False, check=False)  # fmt: skip
    learned = []
    for tree in (vi, nuts):
        scales = json.loads(tree.attrs["learned_spatial_scale"])
        learned.append(scales["thermal"] + scales["synchrotron"])
        assert tree["posterior"]["scale_synchrotron"].dims == ("chain", "draw", "latent_synchrotron")
        assert "scale_thermal" not in tree["maps"]
    np.testing.assert_allclose(learned, [own, own], rtol=0.15)
    np.testing.assert_allclose(learned[0], learned[1], rtol=0.15)
    low, high = np.array([b for name in ("thermal", "synchrotron") for b in json.loads(
        nuts.attrs["learned_spatial_scale_interval"])[name]]).T  # fmt: skip
    assert np.all((low < own) & (own < high))
