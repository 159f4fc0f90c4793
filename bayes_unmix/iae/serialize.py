"""One-file save/load of trained IAEs: a ``.npz`` of arrays plus a JSON header inside it.

A file holds one or several named IAEs (a joint model, or one model per nuclide): every parameter
leaf under its pytree path (``Co60/params/encoder/0/w``), the anchors, the scale, and
``__header__``: JSON text with each model's network and interpolation configuration and metadata,
shared metadata (preprocessing, parameter maps...), the package version, a format version and a
SHA-256 checksum of all arrays. Loading checks all of it and raises :class:`ModelFileError`
with a clear message for corrupt, truncated, tampered or mismatched files. No pickle is involved,
so files do not depend on Python, JAX or NumPy versions.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import bayes_unmix
from bayes_unmix.iae.model import IAE, InterpolationConfig
from bayes_unmix.iae.network import NetworkConfig, init_network

__all__ = ["FORMAT_VERSION", "ModelFileError", "load", "save"]

FORMAT_VERSION = 1
_HEADER = "__header__"


class ModelFileError(ValueError):
    """A model file is missing pieces, corrupt, or does not match this package's expectations."""


def _leaf_name(prefix: str, path: tuple) -> str:
    parts = [str(getattr(p, "key", getattr(p, "idx", p))) for p in path]
    return f"{prefix}/params/" + "/".join(parts)


def _arrays(prefix: str, iae: IAE) -> dict[str, np.ndarray]:
    arrays = {
        _leaf_name(prefix, path): np.asarray(leaf) for path, leaf in jax.tree_util.tree_leaves_with_path(iae.params)
    }
    arrays[f"{prefix}/anchors"] = np.asarray(iae.anchors)
    arrays[f"{prefix}/scale"] = np.asarray(iae.scale)
    return arrays


def _checksum(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{a.dtype.str}|{a.shape}".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def _describe(iae: IAE) -> dict[str, Any]:
    return {
        "network": iae.network.to_dict(),
        "interpolation": dataclasses.asdict(iae.interpolation),
        "metadata": iae.metadata,
    }


def save_bundle(models: Mapping[str, IAE], path: str | os.PathLike, metadata: Mapping[str, Any] | None = None) -> Path:
    """Write several named IAEs and shared ``metadata`` to one ``.npz`` file (written atomically)."""
    path = Path(path)
    bad = [name for name in models if not name or "/" in name]
    if bad or not models:
        raise ValueError(f"model names must be non-empty and contain no '/': {bad}")
    arrays = {k: v for name, iae in models.items() for k, v in _arrays(name, iae).items()}
    header = {
        "format": "bayes_unmix.iae",
        "format_version": FORMAT_VERSION,
        "package_version": bayes_unmix.__version__,
        "models": {name: _describe(iae) for name, iae in models.items()},
        "metadata": dict(metadata or {}),
        "checksum": _checksum(arrays),
    }
    buffer = io.BytesIO()
    np.savez(buffer, **arrays, **{_HEADER: np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)})
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buffer.getvalue())
    os.replace(tmp, path)
    return path


def save(iae: IAE, path: str | os.PathLike) -> Path:
    """Write one IAE to ``path`` (a bundle holding the single model ``"iae"``). Returns the path."""
    return save_bundle({"iae": iae}, path)


def _read(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    raw = path.read_bytes()  # read once ourselves: np.load leaks its handle when a file is corrupt
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise ModelFileError(f"{path}: not a readable model file (corrupt or truncated): {exc}") from exc
    if _HEADER not in arrays:
        raise ModelFileError(f"{path}: not a bayes_unmix model file (no header)")
    try:
        header = json.loads(arrays.pop(_HEADER).tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path}: model header is not valid JSON: {exc}") from exc
    if header.get("format") != "bayes_unmix.iae":
        raise ModelFileError(f"{path}: not a bayes_unmix IAE file (format {header.get('format')!r})")
    if header.get("format_version", 0) > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: written with format {header['format_version']} by bayes_unmix "
            f"{header.get('package_version')}; this version ({bayes_unmix.__version__}) reads up to {FORMAT_VERSION}"
        )
    if _checksum(arrays) != header.get("checksum"):
        raise ModelFileError(f"{path}: checksum mismatch: the arrays were modified or damaged")
    return header, arrays


def _rebuild(path: Path, name: str, description: dict[str, Any], arrays: dict[str, np.ndarray]) -> IAE:
    try:
        network = NetworkConfig.from_dict(description["network"])
        interpolation = InterpolationConfig(**description["interpolation"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: invalid architecture of model {name!r}: {exc}") from exc
    skeleton = jax.eval_shape(lambda: init_network(jax.random.key(0), network))
    leaves_with_path, treedef = jax.tree_util.tree_flatten_with_path(skeleton)
    leaves = []
    for leaf_path, spec in leaves_with_path:
        key = _leaf_name(name, leaf_path)
        if key not in arrays or arrays[key].shape != spec.shape:
            found = arrays[key].shape if key in arrays else "nothing"
            raise ModelFileError(f"{path}: parameter {key} should have shape {spec.shape}, found {found}")
        leaves.append(jnp.asarray(arrays[key]))
    expected = (network.n_components, network.n_channels)
    anchors, scale = arrays.get(f"{name}/anchors"), arrays.get(f"{name}/scale")
    if (
        anchors is None
        or scale is None
        or anchors.ndim != 3
        or anchors.shape[1:] != expected
        or scale.shape != expected
    ):
        raise ModelFileError(f"{path}: anchors/scale of model {name!r} missing or not matching {expected}")
    return IAE(
        params=jax.tree_util.tree_unflatten(treedef, leaves),
        anchors=jnp.asarray(anchors),
        scale=jnp.asarray(scale),
        network=network,
        interpolation=interpolation,
        metadata_json=json.dumps(description.get("metadata", {}), sort_keys=True),
    )


def load_bundle(path: str | os.PathLike) -> tuple[dict[str, IAE], dict[str, Any]]:
    """Read every IAE of a file written by :func:`save_bundle` or :func:`save`, and its shared metadata,
    verifying format, checksum and array shapes."""
    path = Path(path)
    header, arrays = _read(path)
    descriptions = header.get("models")
    if not isinstance(descriptions, dict) or not descriptions:
        raise ModelFileError(f"{path}: the header lists no models")
    models = {name: _rebuild(path, name, d, arrays) for name, d in descriptions.items()}
    return models, header.get("metadata", {})


def load(path: str | os.PathLike) -> IAE:
    """Read a single-IAE file written by :func:`save` (see :func:`load_bundle` for several)."""
    models, _ = load_bundle(path)
    if len(models) != 1:
        raise ModelFileError(f"{path}: holds {len(models)} models {sorted(models)}; use load_bundle")
    return next(iter(models.values()))
