"""Shared fixtures: strict numerics and small trained models (built once per session)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import bayes_unmix  # noqa: F401  (enables float64)
from bayes_unmix.data import gaussian_line_family
from bayes_unmix.iae import IAE, NetworkConfig, TrainConfig, create_iae, fit


def pytest_configure(config: pytest.Config) -> None:
    jax.config.update("jax_enable_x64", True)


@pytest.fixture(scope="session")
def line_data() -> dict[str, np.ndarray]:
    """A one-parameter family: Gaussian lines whose centre moves from channel 10 to 40."""
    rng = np.random.default_rng(0)
    anchors = gaussian_line_family(np.array([10.0, 40.0]), 50)
    return {
        "anchors": anchors,
        "train": gaussian_line_family(rng.uniform(10, 40, 120), 50),
        "valid": gaussian_line_family(rng.uniform(10, 40, 40), 50),
    }


@pytest.fixture(scope="session")
def trained_iae(line_data) -> IAE:
    network = NetworkConfig(n_channels=50, n_layers=2, hidden_width=64, latent_width=16)
    iae = create_iae(jax.random.key(0), line_data["anchors"][:, None, :], network, scale=line_data["train"].mean(0))
    config = TrainConfig(epochs=400, batch_size=32, learning_rate=3e-3, eval_every=100)
    iae, _ = fit(iae, line_data["train"], line_data["valid"], config, key=jax.random.key(1), progress=False)
    return iae
