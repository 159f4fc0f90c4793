"""Checks of the simplified X-ray simulator (bayes_unmix.data.xray) against known answers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import quad

from bayes_unmix.data import xray
from bayes_unmix.data.xray import (
    DEFAULT_INSTRUMENT,
    Instrument,
    SimulatorComponent,
    synchrotron_library,
    synchrotron_spectrum,
    thermal_library,
    thermal_spectrum,
)
from bayes_unmix.models.component import SpectralComponent

E = DEFAULT_INSTRUMENT.energies_kev
FLAT = Instrument(area_knee_kev=1e6)  # unit effective area


def test_channel_grid():
    assert E.shape == (375,)
    assert np.isclose(DEFAULT_INSTRUMENT.channel_edges[0], 3.0) and np.isclose(
        DEFAULT_INSTRUMENT.channel_edges[-1], 8.48
    )
    assert np.allclose(np.diff(E), 5.48 / 375)


def test_unit_sum_and_positive():
    s = np.asarray(thermal_spectrum(jnp.array([0.8, 2.0, 6.0]), jnp.array([-0.033, 0.0, 0.033])))
    assert s.shape == (3, 375) and np.all(s > 0) and np.allclose(s.sum(-1), 1.0, atol=1e-12)
    p = np.asarray(synchrotron_spectrum(jnp.array([[1.0], [4.0]])))
    assert p.shape == (2, 1, 375) and np.allclose(p.sum(-1), 1.0, atol=1e-12)


def test_power_law_matches_integral():
    """Unabsorbed, flat-area power law: channel counts are the integral of E^-Gamma (resolution
    redistributes a smooth continuum by far less than 0.1 % away from the band edges)."""
    gamma = 2.3
    s = np.asarray(synchrotron_spectrum(gamma, nh_1e22=0.0, instrument=FLAT))
    edges = FLAT.channel_edges
    exact = (edges[:-1] ** (1 - gamma) - edges[1:] ** (1 - gamma)) / (gamma - 1)
    exact /= exact.sum()
    assert np.allclose(s[30:-30], exact[30:-30], rtol=2e-3)


def test_line_flux_normalisation():
    """Line-to-continuum ratio of the whole band equals the designed equivalent widths."""
    kt, abundance = 3.0, 5.0
    with_lines = np.asarray(thermal_spectrum(kt, 0.0, abundance=abundance, nh_1e22=0.0, instrument=FLAT))
    continuum = np.asarray(thermal_spectrum(kt, 0.0, abundance=0.0, nh_1e22=0.0, instrument=FLAT))
    clean = np.abs(E - 5.3) < 0.2  # no line within 1 keV
    measured = np.mean(continuum[clean] / with_lines[clean]) - 1.0

    def brems(e, t):
        return (e / t) ** xray.GAUNT_EXPONENT * t**-0.5 / e * np.exp(-e / t)

    band = quad(brems, 3.0, 8.48, args=(kt,))[0]
    in_band = [line for line in xray.LINES if 3.0 < line[1] < 8.48]
    lines = sum(
        abundance * ew * np.exp(-0.5 * (np.log(kt / peak) / xray.LINE_LOG_WIDTH) ** 2) * brems(e, kt)
        for _, e, ew, peak in in_band
    )
    lines += xray.FE_K_EW * brems(6.4, 2.0)
    assert measured == pytest.approx(lines / band, rel=0.01)


@pytest.mark.parametrize("z", [-0.033, 0.0, 0.02])
def test_doppler_shift_of_fe_line(z):
    s = np.asarray(thermal_spectrum(5.0, z))
    window = np.abs(E - 6.7 / (1 + z)) < 0.15
    peak = E[window][np.argmax(s[window])]
    assert abs(peak - 6.7 / (1 + z)) < 1.5 * (E[1] - E[0])


def test_lines_visible_at_remnant_temperatures():
    s = np.asarray(thermal_spectrum(2.0, 0.0))
    for line, continuum in ((3.14, 3.6), (3.90, 3.6), (6.70, 6.1)):
        assert s[np.argmin(np.abs(E - line))] > 1.1 * s[np.argmin(np.abs(E - continuum))]


def test_hardness_orders_with_parameters():
    def hardness(s):
        return np.asarray(s)[..., E > 6.0].sum(-1) / np.asarray(s)[..., E < 4.0].sum(-1)

    assert np.all(np.diff(hardness(thermal_spectrum(jnp.geomspace(0.8, 6.0, 8), 0.0))) > 0)
    assert np.all(np.diff(hardness(synchrotron_spectrum(jnp.linspace(1.0, 4.0, 8)))) < 0)


def test_gradients_match_finite_differences():
    j = int(np.argmin(np.abs(E - 6.6)))

    def f(kt, z):
        return thermal_spectrum(kt, z)[j]

    g = jax.grad(f, argnums=(0, 1))(2.5, -0.01)
    h = 1e-6
    assert float(g[0]) == pytest.approx(float(f(2.5 + h, -0.01) - f(2.5 - h, -0.01)) / (2 * h), rel=1e-5)
    assert float(g[1]) == pytest.approx(float(f(2.5, -0.01 + h) - f(2.5, -0.01 - h)) / (2 * h), rel=1e-5)


def test_vmap_and_jit_agree_with_loop():
    kts, zs = jnp.array([1.0, 2.0, 4.0]), jnp.array([0.01, -0.02, 0.0])
    batched = jax.jit(jax.vmap(thermal_spectrum))(kts, zs)
    for i in range(3):
        assert np.allclose(batched[i], thermal_spectrum(kts[i], zs[i]), rtol=1e-12)


def test_simulator_component_contract():
    thermal, sync = SimulatorComponent.thermal(), SimulatorComponent.synchrotron()
    for comp in (thermal, sync):
        assert isinstance(comp, SpectralComponent)
        lo, hi = comp.theta_bounds
        assert lo.shape == hi.shape == (comp.n_latent,) and comp.initial_theta().shape == (comp.n_latent,)
    corners = np.asarray(thermal.parameters(jnp.array([[-1.0, -1.0], [1.0, 1.0]])))
    assert np.allclose(corners, [[0.8, -0.033], [6.0, 0.033]])
    assert np.allclose(thermal.parameters(jnp.zeros(2)), [np.sqrt(0.8 * 6.0), 0.0])
    theta = thermal.to_theta(jnp.array([2.0, -0.01]))
    assert np.allclose(thermal.spectra(theta), thermal_spectrum(2.0, -0.01), rtol=1e-12)
    assert np.allclose(sync.spectra(sync.to_theta(jnp.array([2.5]))), synchrotron_spectrum(2.5), rtol=1e-12)
    grads = jax.grad(lambda t: jnp.sum(thermal.spectra(t) ** 2))(jnp.zeros((5, 2)))
    assert grads.shape == (5, 2) and np.all(np.isfinite(grads))


def test_libraries():
    lib = thermal_library(4, 3)
    assert lib.spectra.shape == (12, 375) and lib.grid_shape == (4, 3)
    assert np.allclose(lib.parameters[0], [0.8, -0.033]) and np.allclose(lib.parameters[-1], [6.0, 0.033])
    assert np.allclose(lib.spectra[5], thermal_spectrum(*lib.parameters[5]), rtol=1e-12)
    sync = synchrotron_library(5)
    assert sync.parameters.shape == (5, 1) and np.allclose(sync.spectra.sum(-1), 1.0)


def test_bad_input():
    with pytest.raises(ValueError, match="emin_kev"):
        Instrument(emin_kev=5.0, emax_kev=3.0)
    with pytest.raises(ValueError, match="unknown simulator component"):
        SimulatorComponent("plasma", ((1.0, 2.0),))
    with pytest.raises(ValueError, match="ranges"):
        SimulatorComponent.thermal(kt_range=(6.0, 0.8))
