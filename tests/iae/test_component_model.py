"""IAE X-ray components: parameter polynomial, training, save/load, and the shipped models."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayes_unmix.data.xray import SimulatorComponent, synchrotron_library, thermal_library
from bayes_unmix.iae.component_model import (
    XRAY_TRAINING,
    IAEComponent,
    ParameterPolynomial,
    PhysicalIAEComponent,
    PhysicalMap,
    corner_anchors,
    train_component,
)
from bayes_unmix.iae.serialize import ModelFileError
from bayes_unmix.models.component import SpectralComponent
from bayes_unmix.pretrained import available, load_component

TINY_NETWORK = {"kind": "mlp", "n_layers": 2, "hidden_width": 32, "latent_width": 4, "activation": "gelu"}


@pytest.fixture(scope="module")
def tiny_sync() -> IAEComponent:
    config = dataclasses.replace(XRAY_TRAINING, epochs=300, batch_size=8, learning_rate=1e-2, eval_every=100)
    return train_component(
        synchrotron_library(80), key=jax.random.key(0), network=TINY_NETWORK, config=config, progress=False
    )


def test_polynomial_reproduces_a_polynomial():
    rng = np.random.default_rng(0)
    free = rng.uniform(-0.2, 1.2, (200, 2))
    weights = np.column_stack([free, 1 - free.sum(1)])
    values = np.column_stack([np.exp(0.3 + free[:, 0] - 0.5 * free[:, 1] ** 2), free[:, 0] * free[:, 1] + 2])
    poly = ParameterPolynomial.fit(weights, values, degree=2, log_parameters=(True, False))
    assert np.allclose(poly(jnp.asarray(weights)), values, rtol=1e-9)
    # weights off the sum-one plane are moved onto it first
    assert np.allclose(poly(jnp.asarray(weights[:3] + 0.1)), values[:3], rtol=1e-9)
    assert ParameterPolynomial.from_dict(poly.to_dict()) == poly
    assert len(poly.exponents) == 6


def test_physical_map_reproduces_a_polynomial_manifold():
    rng = np.random.default_rng(1)
    params = np.column_stack([np.exp(rng.uniform(np.log(0.8), np.log(6.0), 300)), rng.uniform(-0.03, 0.03, 300)])
    m = PhysicalMap(((0.8, 6.0), (-0.03, 0.03)), (True, False), ParameterPolynomial._exponents(2, 2), ())
    u = np.asarray(m.to_unit(params))
    assert np.all(np.abs(u) <= 1) and np.allclose(m.parameters(u), params, rtol=1e-12)
    free = np.column_stack([1 + u[:, 0] ** 2 - 3 * u[:, 1], -2 * u[:, 0] * u[:, 1]])  # far off the simplex
    weights = np.column_stack([free, 1 - free.sum(1)])
    fitted = PhysicalMap.fit(weights, params, log_parameters=(True, False), degree=2)
    assert np.allclose(fitted.weights(fitted.to_unit(params)), weights, atol=1e-9)
    assert PhysicalMap.from_dict(fitted.to_dict()) == fitted


def test_corner_anchors():
    lib = thermal_library(5, 4)
    assert lib.parameters[corner_anchors(lib)].tolist() == [[0.8, -0.033], [0.8, 0.033], [6.0, -0.033], [6.0, 0.033]]


def test_trained_component(tiny_sync):
    comp = tiny_sync
    assert isinstance(comp, SpectralComponent) and comp.n_latent == 2 and comp.n_channels == 375
    test = comp.training["test"]
    assert test["nmse_db_median_q1_q3"][0] > 35 and test["faint_relative_error_median_p90"][1] < 0.05
    assert test["parameter_rmse"]["photon_index"] < 0.01
    # the anchors decode to the two extreme photon indices
    assert np.allclose(comp.parameters(jnp.eye(2)), [[1.0], [4.0]], atol=0.05)
    theta = jnp.array([[0.3, 0.7], [0.9, 0.1]])
    spectra = comp.spectra(theta)
    assert spectra.shape == (2, 375) and np.allclose(spectra.sum(-1), 1.0) and np.all(spectra > 0)
    lo, hi = comp.theta_bounds
    assert np.all(lo < 0.05) and np.all(hi > 0.95)
    grad = jax.grad(lambda t: jnp.sum(comp.spectra(t)[..., :50]) + jnp.sum(comp.parameters(t)))(theta)
    assert np.all(np.isfinite(grad))


def test_save_load_round_trip(tiny_sync, tmp_path):
    path = tiny_sync.save(tmp_path / "sync.npz")
    loaded = IAEComponent.load(path)
    theta = jnp.array([[0.25, 0.75]])
    assert np.array_equal(loaded.spectra(theta), tiny_sync.spectra(theta))
    assert np.array_equal(loaded.parameters(theta), tiny_sync.parameters(theta))
    assert loaded.training["test"] == tiny_sync.training["test"] and loaded.parameter_names == ("photon_index",)
    from bayes_unmix.iae.serialize import save

    save(tiny_sync.iae, tmp_path / "plain.npz")
    with pytest.raises(ModelFileError, match="not an IAEComponent"):
        IAEComponent.load(tmp_path / "plain.npz")


def test_rejects_non_positive_library():
    lib = synchrotron_library(10)
    bad = dataclasses.replace(lib, spectra=lib.spectra * 0.0)
    with pytest.raises(ValueError, match="positive"):
        train_component(bad, key=jax.random.key(0), progress=False)


@pytest.mark.parametrize(
    ("name", "sim", "nmse_db", "tolerance"),
    [
        ("xray_thermal", SimulatorComponent.thermal(), 30.0, {"kT_keV": 0.1, "z": 0.002}),
        ("xray_synchrotron", SimulatorComponent.synchrotron(), 40.0, {"photon_index": 0.01}),
    ],
)
def test_pretrained_components(name, sim, nmse_db, tolerance):
    """Shipped models reproduce fresh simulator spectra off the training grid, and their parameters."""
    assert name in available()
    comp = load_component(name, coordinates="weights")
    assert isinstance(comp, SpectralComponent) and comp.parameter_names == sim.parameter_names
    assert np.allclose(comp.energies_kev, sim.energies_kev)
    theta = jax.random.uniform(jax.random.key(7), (40, sim.n_latent), minval=-0.9, maxval=0.9)
    truth = np.asarray(sim.parameters(theta))
    spectra = np.asarray(sim.spectra(theta))
    weights = comp.fit_weights(spectra)
    fitted = np.asarray(comp.spectra(weights))
    nmse = -10 * np.log10(np.sum((fitted - spectra) ** 2, -1) / np.sum(spectra**2, -1))
    assert np.median(nmse) > nmse_db
    errors = np.abs(np.asarray(comp.parameters(weights)) - truth)
    for i, pname in enumerate(comp.parameter_names):
        assert np.median(errors[:, i]) < tolerance[pname], pname
    with pytest.raises(KeyError, match="no pretrained X-ray component"):
        load_component("nai3_steel_joint")


@pytest.mark.parametrize(
    ("name", "sim", "nmse_db"),
    [
        ("xray_thermal", SimulatorComponent.thermal(), 30.0),
        ("xray_synchrotron", SimulatorComponent.synchrotron(), 40.0),
    ],
)
def test_pretrained_components_in_physical_coordinates(name, sim, nmse_db):
    """theta = standardised physical parameters: decoded spectra match the simulator at those parameters
    (no projection), the parameters are exact, and the whole box stays on the learned manifold."""
    comp = load_component(name)
    assert isinstance(comp, PhysicalIAEComponent) and isinstance(comp, SpectralComponent)
    assert comp.n_latent == sim.n_latent and np.array_equal(comp.theta_bounds[0], -np.ones(sim.n_latent))
    params = np.asarray(sim.parameters(jax.random.uniform(jax.random.key(8), (40, sim.n_latent), minval=-1, maxval=1)))
    theta = comp.to_theta(params)
    assert np.allclose(comp.parameters(theta), params, rtol=1e-12)
    spectra = np.asarray(sim.spectra(sim.to_theta(params)))
    decoded = np.asarray(comp.spectra(theta))
    assert np.median(-10 * np.log10(np.sum((decoded - spectra) ** 2, -1) / np.sum(spectra**2, -1))) > nmse_db
    weights = load_component(name, coordinates="weights")
    assert isinstance(weights, IAEComponent) and weights.n_latent == 2**sim.n_latent
    assert comp.training == weights.training
