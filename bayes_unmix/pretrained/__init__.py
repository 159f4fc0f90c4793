"""Pretrained spectral models shipped with the package (trained on its own simulator library).

>>> sorted(available())
['nai3_steel_individual', 'nai3_steel_joint']

Reproduce them with ``python scripts/train_pretrained.py --seed 0`` (see that script).
"""

from __future__ import annotations

from pathlib import Path

from bayes_unmix.iae.spectral_model import SpectralModel

__all__ = ["PRETRAINED_DIR", "PRETRAINED_NETWORK", "PRETRAINED_NUCLIDES", "available", "load_pretrained"]

PRETRAINED_DIR = Path(__file__).parent
PRETRAINED_NUCLIDES = ("Co60", "Ba133", "Co57", "Cs137")
#: Small networks keep all shipped files under 5 MB together.
PRETRAINED_NETWORK = {"kind": "mlp", "n_layers": 3, "hidden_width": 64, "latent_width": 16, "activation": "gelu"}


def available() -> list[str]:
    """Names of the shipped models."""
    return sorted(p.stem for p in PRETRAINED_DIR.glob("*.npz"))


def load_pretrained(name: str) -> SpectralModel:
    """Load a shipped model by name (see :func:`available`)."""
    path = PRETRAINED_DIR / f"{name}.npz"
    if not path.is_file():
        raise KeyError(f"no pretrained model {name!r}; available: {available()}")
    return SpectralModel.load(path)
