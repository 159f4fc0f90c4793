"""The X-ray cube model: validation, likelihood against scipy, spatial priors, recovery by MAP."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from numpyro.infer.util import log_density
from scipy import special, stats

import bayes_unmix  # noqa: F401
from bayes_unmix.models.cube import (
    CubeInputError,
    CubeModel,
    make_cube_model,
    make_latent_prior_model,
    make_pixel_model,
    point_log_jacobian,
    poisson_cost,
)

ENERGIES = np.linspace(3.0, 8.0, 48)


@dataclasses.dataclass(frozen=True)
class Thermal:
    """Exponential continuum (kT = 2 exp(0.69 theta_0) keV) plus a line at 6.7 / (1 + z), z = 0.05 theta_1."""

    name: str = "thermal"
    n_latent: int = 2
    n_channels: int = ENERGIES.size
    parameter_names: tuple[str, ...] = ("kT_keV", "z")

    @property
    def theta_bounds(self):
        return -jnp.ones(2), jnp.ones(2)

    def initial_theta(self):
        return jnp.zeros(2)

    def parameters(self, theta):
        theta = jnp.asarray(theta)
        return jnp.stack([2.0 * jnp.exp(0.69 * theta[..., 0]), 0.05 * theta[..., 1]], -1)

    def spectra(self, theta):
        p, e = self.parameters(theta), jnp.asarray(ENERGIES)
        cont = jnp.exp(-e / p[..., :1])
        line = jnp.exp(-0.5 * ((e - 6.7 / (1 + p[..., 1:])) / 0.15) ** 2)
        s = cont / cont.sum(-1, keepdims=True) + 0.5 * line / line.sum(-1, keepdims=True)
        return s / s.sum(-1, keepdims=True)


@dataclasses.dataclass(frozen=True)
class PowerLaw:
    """E^-Gamma, Gamma = 2.5 + 1.5 theta."""

    name: str = "synchrotron"
    n_latent: int = 1
    n_channels: int = ENERGIES.size
    parameter_names: tuple[str, ...] = ("photon_index",)

    @property
    def theta_bounds(self):
        return -jnp.ones(1), jnp.ones(1)

    def initial_theta(self):
        return jnp.zeros(1)

    def parameters(self, theta):
        return 2.5 + 1.5 * jnp.asarray(theta)

    def spectra(self, theta):
        s = jnp.asarray(ENERGIES) ** -self.parameters(theta)
        return s / s.sum(-1, keepdims=True)


def scene(height=12, width=12, scale=400.0):
    """Components, truth (amplitude (C, H, W), theta maps) and the expected cube (E, H, W)."""
    yy, xx = np.mgrid[0:height, 0:width] / max(height - 1, 1)
    theta = (np.stack([0.4 * xx - 0.2, 0.5 * yy - 0.3]), (0.3 * xx - 0.2 * yy)[None])
    amp = np.stack([scale * (0.6 + 0.4 * xx), scale * (0.3 + 0.4 * yy)])
    comps = (Thermal(), PowerLaw())
    spectra = [np.asarray(c.spectra(jnp.moveaxis(jnp.asarray(t), 0, -1))) for c, t in zip(comps, theta)]
    expected = sum(a[..., None] * s for a, s in zip(amp, spectra))
    return comps, {"amplitude": amp, "theta": theta}, np.moveaxis(expected, -1, 0)


def test_protocol_and_validation():
    comps, _, cube = scene()
    model = CubeModel(comps, 12, 12)
    assert model.check_counts(cube).shape == (48, 12, 12)
    with pytest.raises(CubeInputError, match="channels"):
        model.check_counts(cube[:40])
    with pytest.raises(CubeInputError, match="cube"):
        model.check_counts(cube[:, 0])
    with pytest.raises(CubeInputError, match="pixels"):
        model.check_counts(cube[:, :10])
    with pytest.raises(CubeInputError, match="non-negative"):
        model.check_counts(-cube)
    with pytest.raises(CubeInputError, match="different channel"):
        CubeModel((Thermal(), dataclasses.replace(PowerLaw(), n_channels=40)), 12, 12)
    with pytest.raises(CubeInputError, match="unique"):
        CubeModel((Thermal(), Thermal()), 12, 12)
    with pytest.raises(CubeInputError, match="too small"):
        CubeModel(comps, 4, 12)
    with pytest.raises(CubeInputError, match="protocol"):
        CubeModel((object(),), 12, 12)


def test_spatial_scales_per_latent():
    comps, truth, cube = scene()
    per_latent = CubeModel(comps, 12, 12, spatial_scale={"thermal": (0.1, 0.01), "synchrotron": 0.05})
    assert per_latent.spatial_scale == {"thermal": (0.1, 0.01), "synchrotron": (0.05,)}
    np.testing.assert_array_equal(per_latent.latent_scales(comps[0]), [0.1, 0.01])
    np.testing.assert_array_equal(CubeModel(comps, 12, 12, spatial_scale=0.3).latent_scales(comps[0]), [0.3, 0.3])
    # each latent map is scored with its own scale: a rough first map prefers the wide scale, the smooth
    # second map the narrow one, and the two maps' terms add up
    smooth = jnp.asarray(truth["theta"][0].reshape(2, -1).T)
    noise = 0.3 * jax.random.normal(jax.random.key(0), (144,))
    theta = smooth.at[:, 0].set(jnp.clip(smooth[:, 0] + noise, -0.95, 0.95))
    sites = {"amplitude": jnp.ones((144, 2)), "theta_synchrotron": jnp.zeros((144, 1)), "theta_thermal": theta}

    def spatial(thermal_scales):
        model = CubeModel(comps, 12, 12, spatial_scale={"thermal": thermal_scales, "synchrotron": 0.05})
        site = log_density(make_cube_model(model), (model.to_pixels(cube), None), {}, sites)[1]["spatial_thermal"]
        return float(site["fn"].log_prob(site["value"]))

    assert spatial((0.1, 0.01)) > spatial((0.01, 0.1)) + 50.0
    assert spatial((0.1, 0.01)) + spatial((0.01, 0.1)) == pytest.approx(spatial((0.1, 0.1)) + spatial((0.01, 0.01)))
    for bad in ({"thermal": 0.1}, {"thermal": (0.1, 0.2, 0.3), "synchrotron": 0.1}, {"thermal": -1, "synchrotron": 1},
                {"thermal": "x", "synchrotron": 1}, 0.0, float("nan"), "auto"):  # fmt: skip
        with pytest.raises(CubeInputError, match="spatial_scale"):
            CubeModel(comps, 12, 12, spatial_scale=bad)


def test_learned_scales_are_the_fixed_scale_model_times_a_log_uniform_hyperprior():
    """With a scale hyperprior the joint log density at any scales is the fixed-scale model's at those scales plus
    the log-uniform's log density: the spatial prior's s^-(P - 1) normaliser is what makes scales comparable."""
    comps, truth, cube = scene()
    sites = {"amplitude": jnp.asarray(truth["amplitude"].reshape(2, -1).T)}
    sites |= {f"theta_{c.name}": jnp.asarray(t.reshape(len(t), -1).T) for c, t in zip(comps, truth["theta"])}
    x = jnp.asarray(np.moveaxis(cube, 0, -1).reshape(144, -1))
    for prior in ("starlet", "smooth"):
        learned = CubeModel(comps, 12, 12, spatial_prior=prior, scale_hyperprior=(0.001, 1.0))
        for thermal, synchrotron in (((0.1, 0.01), (0.05,)), ((0.3, 0.3), (0.002,))):
            scales = {"scale_thermal": jnp.asarray(thermal), "scale_synchrotron": jnp.asarray(synchrotron)}
            joint = log_density(make_cube_model(learned), (x, None), {}, sites | scales)[0]
            fixed = dataclasses.replace(
                learned, scale_hyperprior=None, spatial_scale={"thermal": thermal, "synchrotron": synchrotron}
            )
            hyper = -np.sum(np.log(np.r_[thermal, synchrotron])) - 3 * np.log(np.log(1000.0))
            assert float(joint) == pytest.approx(float(log_density(make_cube_model(fixed), (x, None), {}, sites)[0])
                                                 + hyper, abs=1e-6)  # fmt: skip
    for bad in ((0.1, 0.01), (0.0, 1.0), (0.1, float("inf")), "x", (1.0,)):
        with pytest.raises(CubeInputError, match="scale_hyperprior"):
            CubeModel(comps, 12, 12, scale_hyperprior=bad)
    with pytest.raises(CubeInputError, match="spatial prior"):
        CubeModel(comps, 12, 12, spatial_prior="none", scale_hyperprior=(0.001, 1.0))
    assert learned.with_prior("none").scale_hyperprior is None


def test_flattening_round_trip():
    comps, _, cube = scene(10, 14)
    model = CubeModel(comps, 10, 14)
    pixels = np.asarray(model.to_pixels(cube))
    assert pixels.shape == (140, 48)
    np.testing.assert_array_equal(pixels[3 * 14 + 5], cube[:, 3, 5])  # p = y * W + x
    np.testing.assert_array_equal(model.to_maps(pixels), np.moveaxis(cube, 0, 0).transpose(0, 1, 2))


def _truth_sites(truth) -> dict[str, jax.Array]:
    """The scene's true maps as the model's sites ``(P, ...)``."""
    return {
        "amplitude": jnp.asarray(truth["amplitude"].reshape(2, -1).T),
        "theta_thermal": jnp.asarray(truth["theta"][0].reshape(2, -1).T),
        "theta_synchrotron": jnp.asarray(truth["theta"][1].reshape(1, -1).T),
    }


def test_log_likelihood_matches_scipy_and_pixel_model():
    comps, truth, cube = scene(10, 10)
    model = CubeModel(comps, 10, 10, spatial_prior="none")
    counts = np.random.default_rng(0).poisson(cube).astype(float)
    point = _truth_sites(truth)
    _, trace = log_density(make_cube_model(model), (model.to_pixels(counts), None), {}, point)
    obs = trace["obs"]
    loglik = float(jnp.sum(obs["fn"].log_prob(obs["value"])))
    assert loglik == pytest.approx(stats.poisson.logpmf(counts, cube).sum(), rel=1e-10)
    # the single-pixel program gives the same joint density, pixel by pixel
    total, _ = log_density(make_cube_model(model), (model.to_pixels(counts), None), {}, point)
    pixel = make_pixel_model(model)
    per_pixel = jax.vmap(
        lambda x, a, t1, t2: log_density(
            pixel, (x, None), {}, {"amplitude": a, "theta_thermal": t1, "theta_synchrotron": t2}
        )[0]
    )(model.to_pixels(counts), *point.values())
    assert float(total) == pytest.approx(float(per_pixel.sum()), rel=1e-12)
    # SUSHI's cost is the negative log-likelihood without log x!
    rate = model.expected_counts(
        point["amplitude"], {"thermal": point["theta_thermal"], "synchrotron": point["theta_synchrotron"]}
    )
    expected_cost = -stats.poisson.logpmf(counts, cube).sum() - np.sum(special.gammaln(counts + 1))
    assert float(poisson_cost(rate, model.to_pixels(counts))) == pytest.approx(expected_cost, rel=1e-8)


@pytest.mark.parametrize("prior", ["starlet", "smooth"])
def test_spatial_prior_prefers_smooth_maps(prior):
    comps, truth, cube = scene()
    model = CubeModel(comps, 12, 12, spatial_prior=prior)
    program = make_cube_model(model)
    base = {"amplitude": jnp.ones((144, 2)), "theta_synchrotron": jnp.zeros((144, 1))}
    smooth = jnp.asarray(truth["theta"][0].reshape(2, -1).T)
    rough = jnp.clip(smooth + 0.3 * jax.random.normal(jax.random.key(0), smooth.shape), -0.95, 0.95)

    def factor(theta):
        trace = log_density(program, (model.to_pixels(cube), None), {}, {**base, "theta_thermal": theta})[1]
        site = trace["spatial_thermal"]
        return float(site["fn"].log_prob(site["value"]))

    assert factor(smooth) > factor(rough) + 50.0
    # constant maps are not penalised beyond the normalisation: only details are
    const = jnp.full_like(smooth, 0.4)
    assert factor(const) == pytest.approx(factor(jnp.zeros_like(smooth)), rel=1e-12)


def _difference_matrix(h: int, w: int) -> np.ndarray:
    """The differences of horizontally and vertically adjacent pixels of an ``h`` x ``w`` map, ``(pairs, h w)``."""
    grid = np.arange(h * w).reshape(h, w)
    pairs = list(zip(grid[:, :-1].ravel(), grid[:, 1:].ravel())) + list(zip(grid[:-1].ravel(), grid[1:].ravel()))
    d = np.zeros((len(pairs), h * w))
    for row, (a, b) in enumerate(pairs):
        d[row, a], d[row, b] = -1.0, 1.0
    return d


def test_smoothness_prior_is_a_normalised_density_of_the_map():
    """The smoothness prior equals the Gaussian density of the map on the non-constant directions (its
    normaliser is s^-(P - 1), whatever the number of differences), up to a constant that does not depend on s."""
    from bayes_unmix.models.cube import _spatial_log_prior

    comp = PowerLaw()
    low, high = (float(np.ravel(b)[0]) for b in comp.theta_bounds)
    h, w = 2, 3
    d = _difference_matrix(h, w)
    q = d.T @ d
    eig = np.linalg.eigvalsh(q)
    log_pdet = np.sum(np.log(eig[eig > 1e-9]))
    rng = np.random.default_rng(0)
    gaps = []
    for scale in (0.01, 0.1, 0.5):
        model = CubeModel((comp,), h, w, spatial_prior="smooth", spatial_scale=scale)
        sigma = scale * (high - low)
        for _ in range(2):
            theta = rng.uniform(-0.2, 0.2, h * w)
            exact = -theta @ q @ theta / (2 * sigma**2) - 0.5 * (h * w - 1) * np.log(2 * np.pi * sigma**2)
            exact += 0.5 * log_pdet
            gaps.append(float(_spatial_log_prior(model, comp, jnp.asarray(theta)[:, None])) - exact)
    assert np.ptp(gaps) < 1e-9


def test_latent_prior_draws_have_the_smoothness_priors_spread():
    """NUTS on the latent prior alone: neighbours differ as the Gaussian Markov random field of the smoothness
    prior says, E (x_a - x_b)^2 = s^2 d^T Q^+ d (the box bound is 25 s away), and the photon index maps follow."""
    from numpyro.infer import MCMC, NUTS

    comp = PowerLaw()
    h = w = 5
    d = _difference_matrix(h, w)
    expected = np.mean(np.einsum("kp,pq,kq->k", d, np.linalg.pinv(d.T @ d), d))
    model = CubeModel((comp,), h, w, spatial_prior="smooth", spatial_scale=0.02)
    mcmc = MCMC(NUTS(make_latent_prior_model(model)), num_warmup=300, num_samples=500, num_chains=2,
                chain_method="vectorized", progress_bar=False)  # fmt: skip
    mcmc.run(jax.random.key(0))
    draws = mcmc.get_samples()
    theta = np.asarray(draws["theta_synchrotron"])[..., 0]  # (draws, P)
    sigma = 0.02 * 2.0
    assert np.mean((d @ theta.T) ** 2) / (sigma**2 * expected) == pytest.approx(1.0, abs=0.1)
    np.testing.assert_allclose(draws["synchrotron_parameters"][..., 0], comp.parameters(theta), rtol=1e-12)


def _amplitude_case():
    """A 6x5 two-component scene at its truth: ``(truth, point, data, plain smooth-prior model)``."""
    comps, truth, cube = scene(6, 5)
    p = 30
    point = {
        "amplitude": jnp.asarray(truth["amplitude"].reshape(2, p).T),
        "theta_thermal": jnp.asarray(truth["theta"][0].reshape(2, p).T),
        "theta_synchrotron": jnp.asarray(truth["theta"][1].reshape(1, p).T),
    }
    data = (CubeModel(comps, 6, 5).to_pixels(cube), None)
    return truth, point, data, CubeModel(comps, 6, 5, spatial_prior="smooth")


def _amplitude_factor(model, data, point, amplitude) -> float:
    """The ``spatial_amplitude`` factor's log density at ``amplitude``."""
    sites = log_density(make_cube_model(model), data, {}, {**point, "amplitude": amplitude})[1]
    return float(sites["spatial_amplitude"]["fn"].log_prob(0.0))


def test_amplitude_prior_is_the_smoothness_density_of_the_log_amplitude_maps():
    truth, point, data, plain = _amplitude_case()
    p = 30
    with_amp = dataclasses.replace(plain, amplitude_scale=0.2)
    gap = (
        log_density(make_cube_model(with_amp), data, {}, point)[0]
        - log_density(make_cube_model(plain), data, {}, point)[0]
    )
    logs = np.log(truth["amplitude"])  # (C, H, W)
    squares = np.sum(np.diff(logs, axis=1) ** 2) + np.sum(np.diff(logs, axis=2) ** 2)
    assert float(gap) == pytest.approx(-squares / (2 * 0.2**2) - 2 * (p - 1) * np.log(0.2), rel=1e-10)
    # a rough amplitude map costs more than a smooth one under the prior, and nothing without it
    rough = point["amplitude"] * jnp.exp(0.5 * jax.random.normal(jax.random.key(0), (p, 2)))
    smooth_factor = _amplitude_factor(with_amp, data, point, point["amplitude"])
    assert smooth_factor > _amplitude_factor(with_amp, data, point, rough) + 50.0
    assert "spatial_amplitude" not in log_density(make_cube_model(plain), data, {}, point)[1]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"amplitude_scale": -0.1},
        {"amplitude_scale": {"thermal": 0.1}},
        {"amplitude_scale": 0.1, "spatial_prior": "none"},
    ],
)
def test_amplitude_scale_validation(kwargs):
    with pytest.raises(CubeInputError, match="amplitude_scale"):
        CubeModel((Thermal(), PowerLaw()), 8, 8, **kwargs)


def test_ratio_amplitude_prior_is_the_smoothness_density_of_the_log_ratio_map():
    truth, point, data, plain = _amplitude_case()
    p = 30
    ratio = dataclasses.replace(plain, amplitude_scale=0.2, amplitude_prior="ratio")
    gap = (
        log_density(make_cube_model(ratio), data, {}, point)[0]
        - log_density(make_cube_model(plain), data, {}, point)[0]
    )
    logs = np.log(truth["amplitude"][1]) - np.log(truth["amplitude"][0])  # (H, W)
    squares = np.sum(np.diff(logs, axis=0) ** 2) + np.sum(np.diff(logs, axis=1) ** 2)
    assert float(gap) == pytest.approx(-squares / (2 * 0.2**2) - (p - 1) * np.log(0.2), rel=1e-10)
    # blind to each pixel's total: scaling both amplitudes of a pixel leaves the factor unchanged
    scaled = point["amplitude"] * jnp.exp(jax.random.normal(jax.random.key(1), (p, 1)))
    assert _amplitude_factor(ratio, data, point, scaled) == pytest.approx(
        _amplitude_factor(ratio, data, point, point["amplitude"]), rel=1e-10
    )
    with pytest.raises(CubeInputError, match="two or more components"):
        CubeModel((Thermal(),), 8, 8, amplitude_scale=0.5, amplitude_prior="ratio")
    with pytest.raises(CubeInputError, match="unknown amplitude_prior"):
        CubeModel((Thermal(), PowerLaw()), 8, 8, amplitude_prior="share")


def _prior_log_a_density(model, data, point, amplitude) -> float:
    """The prior's log density over ``log a`` (the coordinates of VI and NUTS) at ``amplitude``: the joint one
    without the likelihood site."""
    density, sites = log_density(make_cube_model(model), data, {}, {**point, "amplitude": amplitude})
    likelihood = jnp.sum(sites["obs"]["fn"].log_prob(sites["obs"]["value"]))
    return float(density - likelihood + jnp.sum(jnp.log(amplitude)))


def test_ratio_prior_with_log_normal_amplitudes_puts_the_pixel_prior_on_the_total():
    """Under the ratio prior, log-normal amplitudes constrain each pixel's total, not its shares: moving the share
    of every pixel together changes the prior only through the ratio maps' one level term, however many pixels
    (independent log-normals would pull it with a weight growing with the pixel count)."""
    _, point, data, plain = _amplitude_case()
    counts = np.asarray(data[0]).sum(-1)
    sd, delta = 3.0, 2.0
    ratio = dataclasses.replace(plain, amplitude_scale=0.2, amplitude_prior="ratio", amplitude_log_sd=sd)
    a = point["amplitude"]
    shifted = a * jnp.exp(jnp.array([0.0, delta]))  # every log ratio + delta ...
    shifted = shifted * (a.sum(-1) / shifted.sum(-1))[:, None]  # ... at each pixel's total
    gap = _prior_log_a_density(ratio, data, point, shifted) - _prior_log_a_density(ratio, data, point, a)
    level = np.mean(np.log(a[:, 1] / a[:, 0]))
    expected = stats.norm(0, np.sqrt(2) * sd).logpdf(level + delta) - stats.norm(0, np.sqrt(2) * sd).logpdf(level)
    assert gap == pytest.approx(expected, rel=1e-8)
    # the pixel term is the log-normal of the total (centred on the pixel's counts) over log a
    pixel = log_density(make_cube_model(ratio), data, {}, point)[1]["amplitude"]
    site = float(jnp.sum(pixel["fn"].log_prob(a))) + float(jnp.sum(jnp.log(a)))
    assert site == pytest.approx(np.sum(stats.norm(np.log(np.maximum(counts, 1)), sd).logpdf(np.log(a.sum(-1)))))


def test_independent_pixels_drop_the_amplitude_prior():
    """The pixel-by-pixel baseline (``with_prior("none")``) of a model with a log-amplitude prior is valid."""
    model = CubeModel((Thermal(), PowerLaw()), 8, 8, amplitude_scale=0.5)
    assert model.with_prior("none").amplitude_scale is None
    assert model.with_prior("smooth").amplitude_scale == 0.5


def test_log_normal_amplitude_prior_and_its_point_estimate_coordinates():
    """``amplitude_log_sd``: each amplitude is LogNormal(log(counts / C), sd); point estimates add the log
    Jacobian of ``a = exp(u)`` (modes over log a); the exponential default adds nothing."""
    _, point, data, plain = _amplitude_case()
    log_normal = dataclasses.replace(plain, amplitude_log_sd=3.0)
    a = np.asarray(point["amplitude"])
    mean = np.maximum(np.asarray(data[0]).sum(-1), 1.0)[:, None] / 2
    site = log_density(make_cube_model(log_normal), data, {}, point)[1]["amplitude"]
    np.testing.assert_allclose(site["fn"].log_prob(site["value"]), stats.lognorm.logpdf(a, 3.0, scale=mean).sum(-1))
    site = log_density(make_cube_model(plain), data, {}, point)[1]["amplitude"]
    np.testing.assert_allclose(site["fn"].log_prob(site["value"]), stats.expon.logpdf(a, scale=mean).sum(-1))
    assert float(point_log_jacobian(plain, point["amplitude"])) == 0.0
    assert float(point_log_jacobian(log_normal, point["amplitude"])) == pytest.approx(np.log(a).sum(), rel=1e-12)
    for bad in (0.0, -1.0, float("nan"), "3"):
        with pytest.raises(CubeInputError, match="amplitude_log_sd"):
            CubeModel((Thermal(), PowerLaw()), 8, 8, amplitude_log_sd=bad)


@pytest.mark.parametrize("q", [0.0, 1.0, -0.2, "half"])
def test_presence_prior_validation(q):
    with pytest.raises(CubeInputError, match="presence_prior"):
        CubeModel((Thermal(), PowerLaw()), 8, 8, presence_prior=q)


def test_presence_likelihood_sums_the_configurations_out():
    # two components: {thermal}, {synchrotron}, {both} with prior weights q(1-q), (1-q)q, q^2 renormalised;
    # the counts' density is the weighted sum of the three Poisson likelihoods, pixel by pixel
    comps, truth, cube = scene(4, 4, scale=30.0)
    q = 0.3
    model = CubeModel(comps, 4, 4, spatial_prior="none", presence_prior=q)
    counts = np.random.default_rng(2).poisson(cube).astype(float)
    point = _truth_sites(truth)
    _, trace = log_density(make_cube_model(model), (model.to_pixels(counts), None), {}, point)
    got = np.asarray(trace["obs"]["fn"].log_prob(trace["obs"]["value"]))
    theta = {"thermal": point["theta_thermal"], "synchrotron": point["theta_synchrotron"]}
    parts = np.asarray(model.component_counts(point["amplitude"], theta))  # (P, C, E)
    x = model.to_pixels(counts)
    weights = np.array([q * (1 - q), (1 - q) * q, q * q])
    weights = weights / weights.sum()
    likelihoods = [stats.poisson.logpmf(x, parts[:, 0]), stats.poisson.logpmf(x, parts[:, 1])]
    likelihoods.append(stats.poisson.logpmf(x, parts.sum(1)))
    expected = special.logsumexp([np.log(w) + ll.sum(-1) for w, ll in zip(weights, likelihoods)], axis=0)
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    # the single-pixel program agrees, and without a presence prior the model is the plain Poisson
    pixel = make_pixel_model(model)
    per_pixel = [log_density(pixel, (x[p], None), {}, {k: v[p] for k, v in point.items()})[1]["obs"] for p in range(16)]
    np.testing.assert_allclose([float(o["fn"].log_prob(o["value"])) for o in per_pixel], expected, rtol=1e-10)
    # posterior predictive draws: a configuration per pixel with its prior weight, then Poisson counts
    draws = trace["obs"]["fn"].sample(jax.random.key(0), (4000,))
    expected_mean = np.einsum("s,sc,pce->pe", weights, np.array([[1, 0], [0, 1], [1, 1]]), parts)
    np.testing.assert_allclose(np.asarray(draws).mean(0), expected_mean, rtol=0.05, atol=0.1)
    plain = dataclasses.replace(model, presence_prior=None)
    _, trace = log_density(make_cube_model(plain), (x, None), {}, point)
    np.testing.assert_allclose(np.asarray(trace["obs"]["fn"].log_prob(x)), likelihoods[2].sum(-1), rtol=1e-10)


def test_held_out_counts_weigh_the_configurations_by_the_fitted_half():
    # cross-validation scores one half of a thinned cube given the other: each pixel's configurations weighted
    # by their posterior given the fitted half, so that a model is not charged for prior doubt the data settled
    comps, truth, cube = scene(4, 4, scale=300.0)
    q = 0.3
    model = CubeModel(comps, 4, 4, spatial_prior="none", presence_prior=q)
    rng = np.random.default_rng(5)
    fitted, test = (model.to_pixels(rng.poisson(cube).astype(float)) for _ in range(2))
    point = _truth_sites(truth)
    theta = {"thermal": point["theta_thermal"], "synchrotron": point["theta_synchrotron"]}
    parts = model.component_counts(point["amplitude"], theta)
    got = np.asarray(model.held_out_observation(parts, None, fitted).log_prob(test))
    rates = np.einsum("sc,pce->pse", np.array([[1, 0], [0, 1], [1, 1]]), np.asarray(parts))
    prior = np.log([q * (1 - q), (1 - q) * q, q * q])
    fit_ll, test_ll = (stats.poisson.logpmf(x[:, None], rates).sum(-1) for x in (fitted, test))
    posterior = prior + fit_ll - special.logsumexp(prior + fit_ll, axis=-1, keepdims=True)
    np.testing.assert_allclose(got, special.logsumexp(posterior + test_ll, axis=-1), rtol=1e-10)
    # both components are bright in every pixel: the held-out mass is that of "both", not log(q^2 / Z) below it
    np.testing.assert_allclose(got, test_ll[:, 2], atol=1e-6)
    plain = dataclasses.replace(model, presence_prior=None)
    np.testing.assert_allclose(
        np.asarray(plain.held_out_observation(parts, None, fitted).log_prob(test)), test_ll[:, 2], rtol=1e-10
    )
