"""``cube_summary``: RMSE and interval coverage of the maps against a cube's truth, on hand-made maps."""

import numpy as np
import pytest
import xarray as xr

from bayes_unmix.cube_workflow import cube_summary
from bayes_unmix.data.cube import CubeTruth


def _tree(amplitude_bounds, gamma_bounds):
    """Maps on a 1 x 4 image: amplitude (thermal, synchrotron) and the photon index, stats mean/sd/q05/q95."""
    stack = lambda lo, hi: np.stack([(lo + hi) / 2, (hi - lo) / 3.29, lo, hi])
    amp = np.stack([stack(*b) for b in amplitude_bounds], axis=1)  # (stat, C, y, x)
    ds = xr.Dataset(
        {
            "amplitude": (("stat", "component", "y", "x"), amp),
            "synchrotron_photon_index": (("stat", "y", "x"), stack(*gamma_bounds)),
        },
        coords={"stat": ["mean", "sd", "q05", "q95"], "component": ["thermal", "synchrotron"]},
    )
    return xr.DataTree.from_dict({"maps": ds})


def test_amplitude_coverage_counts_only_pixels_where_the_component_is_present():
    # synchrotron is absent in the last two pixels: a positive interval there must not count as a miss
    true_amp = np.array([[[10.0, 10.0, 10.0, 10.0]], [[5.0, 5.0, 0.0, 0.0]]])
    true_gamma = np.array([[[2.5, 2.5, np.nan, np.nan]]])
    truth = CubeTruth(
        component_names=("thermal", "synchrotron"),
        amplitudes=true_amp,
        parameters={"thermal": np.full((2, 1, 4), np.nan), "synchrotron": true_gamma},
        parameter_names={"thermal": ("kT_keV", "z"), "synchrotron": ("photon_index",)},
        expected=np.zeros((2, 3, 1, 4)),
        mask=np.ones((1, 4), bool),
    )
    ones = np.ones((1, 4))
    thermal = (9.0 * ones, np.array([[11.0, 11.0, 11.0, 9.5]]))  # misses the last pixel
    synchrotron = (np.array([[4.0, 6.0, 0.5, 0.5]]), np.array([[6.0, 7.0, 2.0, 2.0]]))  # misses the 2nd
    gamma = (np.array([[2.0, 2.6, 0.0, 0.0]]), np.array([[3.0, 3.0, 9.0, 9.0]]))
    summary = cube_summary(_tree([thermal, synchrotron], gamma), truth)

    assert summary["amplitude[thermal]"]["coverage"] == pytest.approx(0.75)
    assert summary["amplitude[synchrotron]"]["coverage"] == pytest.approx(0.5)  # 1 of 2 present, not 1 of 4
    # RMSE still over every pixel with a finite truth (a zero truth is a valid amplitude to estimate)
    sy_mean = np.array([5.0, 6.5, 1.25, 1.25])
    assert summary["amplitude[synchrotron]"]["rmse"] == pytest.approx(np.sqrt(np.mean((sy_mean - [5, 5, 0, 0]) ** 2)))
    # parameters: only where the component is present and the truth finite
    assert summary["synchrotron_photon_index"]["coverage"] == pytest.approx(0.5)
    assert summary["synchrotron_photon_index"]["rmse"] == pytest.approx(np.sqrt((0.0**2 + 0.3**2) / 2))
