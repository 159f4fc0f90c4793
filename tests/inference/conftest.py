"""Small unmixing problems shared by the inference tests."""

import jax
import numpy as np
import pytest

from bayes_unmix.data.library import SpectralLibrary
from bayes_unmix.data.synthetic import shielded_line_family
from bayes_unmix.iae.library_fit import train_spectral_model
from bayes_unmix.iae.spectral_model import SpectralModel
from bayes_unmix.iae.train import TrainConfig

ENERGIES = 20.0 + 10.0 * np.arange(80)  # 20-810 keV
THICKNESS = np.linspace(0.0, 30.0, 16)


def toy_library() -> SpectralLibrary:
    lines = {"Cs137": 662.0, "Ba133": 356.0}
    spectra = np.stack([shielded_line_family(THICKNESS, ENERGIES, line_kev=e) for e in lines.values()])
    spectra = spectra * (1e-2 * np.exp(-0.03 * THICKNESS))[None, :, None]  # counts per decay
    return SpectralLibrary(spectra, tuple(lines), THICKNESS, ENERGIES, n_decays=np.ones((2, 16)), source="toy")


@pytest.fixture(scope="session")
def toy_model() -> SpectralModel:
    """A joint spectral model of two toy nuclides over shield thickness (trained in seconds)."""
    network = {"kind": "mlp", "n_layers": 2, "hidden_width": 48, "latent_width": 8, "activation": "gelu"}
    config = TrainConfig(epochs=300, batch_size=8, learning_rate=3e-3, loss="mse", eval_every=100)
    return train_spectral_model(
        toy_library(), joint=True, key=jax.random.key(0), network=network, config=config, progress=False
    )


@pytest.fixture(scope="session")
def flat_background() -> np.ndarray:
    b = 1.0 + 0.5 * np.cos(ENERGIES / 150.0)
    return b / b.sum()
