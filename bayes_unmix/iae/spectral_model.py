"""A trained spectral model of a library: IAE(s) + preprocessing + physical calibrations.

This is what ``bayes-unmix train-iae`` writes and what the unmixing models consume:

* **joint**: one IAE whose ``C`` components are the nuclides, one set of weights shared by all
  (one shield seen by every source);
* **individual**: one single-component IAE per nuclide, each with its own weights.

:meth:`SpectralModel.signatures` maps weights to the unit-sum signatures ``(S, n)`` on the
preprocessed channel grid; it is a pure ``jax.numpy`` function (jit/grad/vmap-safe).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bayes_unmix.data.preprocess import Preprocessing
from bayes_unmix.iae.calibration import EfficiencyModel, ParameterMap
from bayes_unmix.iae.model import IAE
from bayes_unmix.iae.serialize import ModelFileError, load_bundle, save_bundle

__all__ = ["JOINT", "SpectralModel"]

JOINT = "joint"


@dataclasses.dataclass(frozen=True)
class SpectralModel:
    """IAE-based signatures of ``S`` nuclides over a physical parameter.

    Attributes
    ----------
    nuclides:
        Source names, in the order of the signature rows.
    iaes:
        ``{"joint": IAE}`` (``C = S``) or ``{nuclide: IAE}`` (``C = 1`` each).
    preprocessing:
        Window/binning applied to raw spectra; signatures live on its channel grid.
    parameter_name:
        Physical parameter with unit, e.g. ``"thickness_mm"``.
    parameter_maps:
        Weights -> parameter, per IAE name.
    efficiencies:
        Counts per decay in the window vs parameter, per nuclide (empty when unknown).
    training:
        Record of how the model was trained (command, seed, split, scores).
    """

    nuclides: tuple[str, ...]
    iaes: dict[str, IAE]
    preprocessing: Preprocessing
    parameter_name: str
    parameter_maps: dict[str, ParameterMap]
    efficiencies: dict[str, EfficiencyModel] = dataclasses.field(default_factory=dict)
    training: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def joint(self) -> bool:
        return JOINT in self.iaes

    @property
    def n_channels(self) -> int:
        return self.preprocessing.n_channels

    @property
    def n_anchors(self) -> int:
        return next(iter(self.iaes.values())).n_anchors

    @property
    def n_latents(self) -> int:
        """Number of independent weight vectors: 1 (joint) or ``S`` (individual)."""
        return 1 if self.joint else len(self.nuclides)

    def signatures(self, weights: jax.Array) -> jax.Array:
        """Unit-sum, non-negative signatures ``(S, n)`` for weights ``(n_latents, d)``.

        Decoded spectra are clipped at zero, restricted to each nuclide's support and renormalised,
        as the published unmixing does.
        """
        weights = jnp.asarray(weights)
        if self.joint:
            raw = self._decoders[JOINT](weights[0])
        else:
            raw = jnp.stack([self._decoders[n](w)[0] for n, w in zip(self.nuclides, weights)])
        raw = jnp.maximum(raw, 0.0) * self._support
        return raw / jnp.sum(raw, axis=-1, keepdims=True)

    def parameter(self, weights: jax.Array) -> jax.Array:
        """Physical parameter per latent, ``(n_latents,)``, from weights ``(n_latents, d)``."""
        weights = jnp.asarray(weights)
        names = [JOINT] if self.joint else list(self.nuclides)
        return jnp.stack([self.parameter_maps[n](w) for n, w in zip(names, weights)])

    def weights_at(self, parameter: float) -> np.ndarray:
        """Weights ``(n_latents, d)`` for a known parameter value (e.g. a measured shield thickness);
        pass them as ``GammaMixture(known_weights=...)`` for the known-shielding model."""
        names = [JOINT] if self.joint else list(self.nuclides)
        return np.stack([self.parameter_maps[n].inverse(parameter) for n in names])

    def counts_per_decay(self, parameter: jax.Array) -> jax.Array:
        """Detection efficiency ``(S,)`` at the per-nuclide parameter ``(S,)`` (or a scalar)."""
        if set(self.efficiencies) != set(self.nuclides):
            raise ValueError("this model has no efficiency model: activities are not defined")
        parameter = jnp.broadcast_to(jnp.asarray(parameter), (len(self.nuclides),))
        return jnp.stack([self.efficiencies[n](p) for n, p in zip(self.nuclides, parameter)])

    # Computed once, eagerly (also when first asked inside a jit trace), so the hot path of a
    # log-density never re-encodes the anchors.
    @functools.cached_property
    def _decoders(self) -> dict[str, Callable[[jax.Array], jax.Array]]:
        with jax.ensure_compile_time_eval():
            return {name: iae.decoder() for name, iae in self.iaes.items()}

    @functools.cached_property
    def _support(self) -> np.ndarray:
        return np.stack([self.preprocessing.support(n) for n in self.nuclides]).astype(np.float64)

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model to one file (see :mod:`bayes_unmix.iae.serialize`)."""
        metadata = {
            "kind": "spectral_model",
            "nuclides": list(self.nuclides),
            "preprocessing": self.preprocessing.to_dict(),
            "parameter_name": self.parameter_name,
            "parameter_maps": {k: v.to_dict() for k, v in self.parameter_maps.items()},
            "efficiencies": {k: v.to_dict() for k, v in self.efficiencies.items()},
            "training": self.training,
        }
        return save_bundle(self.iaes, path, metadata)

    @classmethod
    def load(cls, path: str | os.PathLike) -> SpectralModel:
        """Read a model written by :meth:`save`; raises :class:`ModelFileError` on bad files."""
        iaes, meta = load_bundle(path)
        if meta.get("kind") != "spectral_model":
            raise ModelFileError(f"{path}: holds IAEs but no spectral model (nuclides, preprocessing)")
        try:
            nuclides = tuple(meta["nuclides"])
            model = cls(
                nuclides=nuclides,
                iaes=iaes,
                preprocessing=Preprocessing.from_dict(meta["preprocessing"]),
                parameter_name=meta["parameter_name"],
                parameter_maps={k: ParameterMap.from_dict(v) for k, v in meta["parameter_maps"].items()},
                efficiencies={k: EfficiencyModel.from_dict(v) for k, v in meta["efficiencies"].items()},
                training=meta.get("training", {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"{path}: invalid spectral-model metadata: {exc}") from exc
        expected = {JOINT} if len(iaes) == 1 and JOINT in iaes else set(nuclides)
        if set(iaes) != expected or any(iae.n_channels != model.n_channels for iae in iaes.values()):
            raise ModelFileError(f"{path}: IAEs {sorted(iaes)} do not match nuclides {list(nuclides)} / channels")
        return model
