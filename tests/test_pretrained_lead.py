"""The shipped lead-shield gamma model: it loads, matches the steel model's grid, calibrates monotonically,
predicts the simulator's efficiencies, and tells lead from steel on simulated spectra (MAP)."""

import jax.numpy as jnp
import numpy as np
import pytest

from bayes_unmix.data.simulate import simulate_signature
from bayes_unmix.iae.calibration import EfficiencyModel
from bayes_unmix.inference.map import map_batch
from bayes_unmix.models.gamma import GammaMixture
from bayes_unmix.pretrained import gamma_models, load_pretrained
from bayes_unmix.workflow import default_background

FRACTIONS = {"background": 0.25, "Co60": 0.25, "Ba133": 0.2, "Co57": 0.1, "Cs137": 0.2}


@pytest.fixture(scope="module")
def models():
    return load_pretrained("nai3_lead_joint"), load_pretrained("nai3_steel_joint")


def test_lead_model_loads_with_the_steel_grid(models):
    lead, steel = models
    assert "nai3_lead_joint" in gamma_models()
    assert lead.joint and lead.nuclides == steel.nuclides == ("Co60", "Ba133", "Co57", "Cs137")
    assert lead.preprocessing == steel.preprocessing and lead.n_channels == steel.n_channels == 400
    np.testing.assert_array_equal(lead.preprocessing.energies_kev, steel.preprocessing.energies_kev)
    assert lead.training["library"] == "bayes_unmix.data.simulate (lead shell)"
    assert set(lead.efficiencies) == set(lead.nuclides)


def test_lead_thickness_map_is_monotone_over_its_grid(models):
    lead, _ = models
    pmap = lead.parameter_maps["joint"]
    grid = np.asarray(lead.training["parameter_values"])
    assert grid[0] == pytest.approx(0.0005) and grid[-1] == pytest.approx(15.0) and grid.size == 96
    # every grid thickness keeps its own knot: the projected weights grow strictly with the thickness
    # (isotonic regression would pool the knots of any non-monotone stretch)
    np.testing.assert_allclose(pmap.knots_p, grid)
    assert np.all(np.diff(pmap.knots_u) > 0)
    u = jnp.linspace(pmap.knots_u[0], pmap.knots_u[-1], 501)
    thickness = np.asarray(pmap(jnp.stack([1 - u, u], -1)))
    assert np.all(np.diff(thickness) > 0) and thickness[0] == pytest.approx(0.0005) and thickness[-1] == 15.0


def test_lead_efficiencies_match_the_simulator_between_grid_points(models):
    lead, _ = models
    pre = lead.preprocessing
    energies = pre.first_channel_kev + pre.kev_per_channel * np.arange(pre.raw_channels)
    thickness = np.array([0.175, 1.7, 4.1, 12.1])  # between grid points; 1.7 mm: Co57's kink
    for i, nuclide in enumerate(lead.nuclides):
        eta = pre.window(simulate_signature(nuclide, thickness, material="lead", energies_kev=energies)).sum(-1)
        predicted = np.asarray(lead.efficiencies[nuclide](jnp.asarray(thickness)))
        np.testing.assert_allclose(predicted, eta, rtol=0.03, err_msg=nuclide)
    efficiency = lead.efficiencies["Co57"]
    assert efficiency.knots_p and EfficiencyModel.from_dict(efficiency.to_dict()) == efficiency


def _spectra(material: str, thickness_mm: float, total: float, background: np.ndarray, pre, seed: int) -> np.ndarray:
    energies = pre.first_channel_kev + pre.kev_per_channel * np.arange(pre.raw_channels)
    rate = FRACTIONS["background"] * total * background
    for nuclide in ("Co60", "Ba133", "Co57", "Cs137"):
        signature = pre.window(simulate_signature(nuclide, thickness_mm, material=material, energies_kev=energies)[0])
        rate = rate + FRACTIONS[nuclide] * total * signature / signature.sum()
    return np.random.default_rng(seed).poisson(rate, size=(4, rate.size)).astype(np.float64)


def test_map_likelihood_prefers_the_true_shield_material(models):
    lead, steel = models
    background = default_background(lead.preprocessing)
    mixes = {m: GammaMixture.from_spectral_model(sm, background) for m, sm in (("lead", lead), ("steel", steel))}
    for material, thickness, seed in (("lead", 3.0, 0), ("steel", 8.0, 1)):
        y = _spectra(material, thickness, 1e5, background, lead.preprocessing, seed)
        fits = {m: map_batch(mix, y) for m, mix in mixes.items()}
        # same flat priors (same widths) in both mixtures: the difference of -log posterior at the MAP is
        # the difference of the maximised Poisson log-likelihoods
        other = "steel" if material == "lead" else "lead"
        gain = fits[other]["neg_log_posterior"] - fits[material]["neg_log_posterior"]
        assert np.all(gain > 500.0), (material, gain)  # measured: 1583-1820
        u = fits[material]["u"][:, 0]
        fitted = np.asarray(mixes[material].spectral_model.parameter_maps["joint"](jnp.stack([1 - u, u], -1)))
        np.testing.assert_allclose(fitted, thickness, rtol=0.2)
