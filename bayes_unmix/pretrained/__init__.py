"""Pretrained spectral models shipped with the package (trained on its own simulator libraries).

>>> sorted(available())
['nai3_lead_joint', 'nai3_steel_individual', 'nai3_steel_joint', 'xray_synchrotron', 'xray_thermal']

Gamma spectrometry (:func:`load_pretrained`), Co60, Ba133, Co57, Cs137 behind a spherical shield:
``"nai3_steel_joint"`` and ``"nai3_steel_individual"`` (steel, 0.001-30 mm), reproduce with
``python scripts/train_pretrained.py --seed 0``; ``"nai3_lead_joint"`` (lead, 0.0005-15 mm), with
``python scripts/train_pretrained.py --material lead --seed 0``. X-ray cube components (:func:`load_component`,
``"xray_thermal"`` over kT 0.8-6 keV x z +-0.033, ``"xray_synchrotron"`` over photon index 1-4, on
the 375-channel 3-8.48 keV grid of :mod:`bayes_unmix.data.xray`): reproduce with
``python scripts/train_pretrained_xray.py --seed 0``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from bayes_unmix.iae.component_model import IAEComponent, PhysicalIAEComponent
from bayes_unmix.iae.spectral_model import SpectralModel

__all__ = [
    "PRETRAINED_DIR",
    "PRETRAINED_NETWORK",
    "PRETRAINED_NUCLIDES",
    "XRAY_COMPONENTS",
    "available",
    "gamma_models",
    "load_component",
    "load_pretrained",
]

PRETRAINED_DIR = Path(__file__).parent
PRETRAINED_NUCLIDES = ("Co60", "Ba133", "Co57", "Cs137")
#: Small networks keep all shipped files under 5 MB together.
PRETRAINED_NETWORK = {"kind": "mlp", "n_layers": 3, "hidden_width": 64, "latent_width": 16, "activation": "gelu"}
#: Shipped X-ray cube components.
XRAY_COMPONENTS = ("xray_thermal", "xray_synchrotron")


def available() -> list[str]:
    """Names of the shipped models."""
    return sorted(p.stem for p in PRETRAINED_DIR.glob("*.npz"))


def _path(name: str) -> Path:
    path = PRETRAINED_DIR / f"{name}.npz"
    if not path.is_file():
        raise KeyError(f"no pretrained model {name!r}; available: {available()}")
    return path


def load_pretrained(name: str) -> SpectralModel:
    """Load a shipped gamma-spectrometry model by name (see :func:`gamma_models`)."""
    if name in XRAY_COMPONENTS:
        raise KeyError(f"{name!r} is an X-ray cube component (use load_component); gamma models: {gamma_models()}")
    return SpectralModel.load(_path(name))


def gamma_models() -> list[str]:
    """Names of the shipped gamma-spectrometry models."""
    return [name for name in available() if name not in XRAY_COMPONENTS]


def load_component(
    name: str, *, coordinates: Literal["physical", "weights"] = "physical"
) -> PhysicalIAEComponent | IAEComponent:
    """Load a shipped X-ray cube component (``"xray_thermal"`` or ``"xray_synchrotron"``).

    ``coordinates="physical"`` (default): ``theta`` = standardised physical parameters on the learned
    manifold (:class:`~bayes_unmix.iae.component_model.PhysicalIAEComponent`); ``"weights"``: the IAE's
    barycentric weights, as in the published SUSHI. Both satisfy
    :class:`~bayes_unmix.models.component.SpectralComponent`.
    """
    if name not in XRAY_COMPONENTS:
        raise KeyError(f"no pretrained X-ray component {name!r}; choose from {list(XRAY_COMPONENTS)}")
    if coordinates not in ("physical", "weights"):
        raise ValueError(f"coordinates must be 'physical' or 'weights', got {coordinates!r}")
    component = IAEComponent.load(_path(name))
    return component.in_physical_coordinates() if coordinates == "physical" else component
