"""Train joint or individual IAEs on a spectral library, with calibrations: library -> SpectralModel."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from bayes_unmix.data.library import SpectralLibrary
from bayes_unmix.data.preprocess import Preprocessing
from bayes_unmix.iae.calibration import EfficiencyModel, ParameterMap
from bayes_unmix.iae.model import IAE, create_iae
from bayes_unmix.iae.network import NetworkConfig
from bayes_unmix.iae.project import project
from bayes_unmix.iae.spectral_model import JOINT, SpectralModel
from bayes_unmix.iae.train import TrainConfig, fit

__all__ = ["GAMMA_NETWORK", "GAMMA_TRAINING", "default_preprocessing", "train_spectral_model"]

#: Architecture used for gamma libraries unless told otherwise (see benchmarks/iae_gamma.py).
GAMMA_NETWORK: dict[str, Any] = {
    "kind": "mlp",
    "n_layers": 3,
    "hidden_width": 128,
    "latent_width": 16,
    "activation": "gelu",
}
#: Training recipe used for gamma libraries unless told otherwise.
GAMMA_TRAINING = TrainConfig(epochs=3000, batch_size=16, learning_rate=2e-3, loss="mse", mu=0.1, eval_every=250)


def default_preprocessing(
    library: SpectralLibrary, emin_kev: float | None = None, emax_kev: float | None = None, rebin: int = 1
) -> Preprocessing:
    """A preprocessing for ``library``'s raw grid with an optional energy window (keV)."""
    e = library.energies_kev
    return Preprocessing(
        raw_channels=e.size,
        first_channel_kev=float(e[0]),
        kev_per_channel=float(e[1] - e[0]),
        emin_kev=emin_kev,
        emax_kev=emax_kev,
        rebin=rebin,
    )


def train_spectral_model(
    library: SpectralLibrary,
    *,
    joint: bool,
    key: jax.Array,
    preprocessing: Preprocessing | None = None,
    train_indices: Sequence[int] | None = None,
    network: dict[str, Any] | None = None,
    config: TrainConfig = GAMMA_TRAINING,
    progress: bool = True,
    record: dict[str, Any] | None = None,
    efficiency_degree: int | None = 3,
) -> SpectralModel:
    """Train a joint or individual spectral model of ``library``.

    Parameters
    ----------
    joint:
        One IAE for all nuclides (shared weights) or one per nuclide.
    preprocessing:
        Window/binning/normalisation; default: the library's whole range, 1 raw channel per channel.
    train_indices:
        Parameter-grid indices used for training (default: all). The anchors are the training
        spectra at the smallest and largest parameter values.
    network, config:
        Architecture overrides (keyword arguments of :class:`NetworkConfig`) and training recipe.
    record:
        Extra entries for the model's training record (command line, seed...).
    efficiency_degree:
        Degree of the polynomial in ``log eta`` of the efficiency models; ``None``: ``log eta``
        interpolated between the library's parameter values (see :class:`EfficiencyModel`), for
        efficiencies with kinks (e.g. Co57 behind lead).
    """
    preprocessing = preprocessing or default_preprocessing(library)
    idx = np.arange(library.parameter_values.size) if train_indices is None else np.sort(np.asarray(train_indices))
    if idx.size < 2:
        raise ValueError("need at least two training spectra (the anchors)")
    values = library.parameter_values[idx]
    signatures = np.stack(
        [preprocessing.signatures(library.spectra[s][idx], n) for s, n in enumerate(library.nuclides)], axis=1
    )  # (T, S, n)
    groups = {JOINT: signatures} if joint else {n: signatures[:, [s]] for s, n in enumerate(library.nuclides)}

    iaes, maps = {}, {}
    for name, data in groups.items():
        key, k_init, k_fit = jax.random.split(key, 3)
        arch = NetworkConfig(n_channels=data.shape[-1], n_components=data.shape[1], **(network or GAMMA_NETWORK))
        iae = create_iae(k_init, data[[0, -1]], arch, scale=data.mean(axis=0))
        iae = iae.with_metadata(anchor_parameter_values=[float(values[0]), float(values[-1])])
        iaes[name], _ = fit(iae, data, None, config, key=k_fit, progress=progress)
        maps[name] = _calibrate(iaes[name], data, values)

    efficiencies = {}
    if library.n_decays is not None:
        eta = preprocessing.window(library.spectra).sum(axis=-1) / library.n_decays  # (S, T)
        efficiencies = {
            n: EfficiencyModel.fit(library.parameter_values, eta[s], degree=efficiency_degree)
            for s, n in enumerate(library.nuclides)
        }
    training = {
        "library": library.source,
        "parameter_values": values.tolist(),
        "network": network or GAMMA_NETWORK,
        "epochs": config.epochs,
        "learning_rate": config.learning_rate,
        **(record or {}),
    }
    return SpectralModel(
        nuclides=library.nuclides,
        iaes=iaes,
        preprocessing=preprocessing,
        parameter_name=library.parameter_name,
        parameter_maps=maps,
        efficiencies=efficiencies,
        training=training,
    )


def _calibrate(iae: IAE, data: np.ndarray, values: np.ndarray) -> ParameterMap:
    """Project the training spectra and map their weights to the parameter values."""
    weights = np.asarray(project(iae, data).weights)
    return ParameterMap.fit(weights, values)
