"""One-file save/load of trained IAEs: a ``.npz`` of arrays plus a JSON header inside it.

The file holds every parameter leaf under its pytree path (``params/encoder/0/w``), the anchors,
the scale and ``__header__``: JSON text with the network and interpolation configuration, user
metadata (energy grid, parameter names, preprocessing...), the package version, a format version
and a SHA-256 checksum of all arrays. Loading checks all of it and raises :class:`ModelFileError`
with a clear message for corrupt, truncated, tampered or mismatched files. No pickle is involved,
so files do not depend on Python, JAX or NumPy versions.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import jax
import numpy as np

import bayes_unmix
from bayes_unmix.iae.model import IAE, InterpolationConfig
from bayes_unmix.iae.network import NetworkConfig, init_network

__all__ = ["FORMAT_VERSION", "ModelFileError", "load", "save"]

FORMAT_VERSION = 1
_HEADER = "__header__"


class ModelFileError(ValueError):
    """A model file is missing pieces, corrupt, or does not match this package's expectations."""


def _leaf_name(path: tuple) -> str:
    parts = [str(getattr(p, "key", getattr(p, "idx", p))) for p in path]
    return "params/" + "/".join(parts)


def _arrays(iae: IAE) -> dict[str, np.ndarray]:
    arrays = {_leaf_name(path): np.asarray(leaf) for path, leaf in jax.tree_util.tree_leaves_with_path(iae.params)}
    arrays["anchors"] = np.asarray(iae.anchors)
    arrays["scale"] = np.asarray(iae.scale)
    return arrays


def _checksum(arrays: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{a.dtype.str}|{a.shape}".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def save(iae: IAE, path: str | os.PathLike) -> Path:
    """Write ``iae`` to ``path`` (one ``.npz`` file, written atomically). Returns the path."""
    path = Path(path)
    arrays = _arrays(iae)
    header = {
        "format": "bayes_unmix.iae",
        "format_version": FORMAT_VERSION,
        "package_version": bayes_unmix.__version__,
        "network": iae.network.to_dict(),
        "interpolation": {
            "rule": iae.interpolation.rule,
            "reg": iae.interpolation.reg,
            "simplex": iae.interpolation.simplex,
        },
        "metadata": iae.metadata,
        "checksum": _checksum(arrays),
    }
    buffer = io.BytesIO()
    np.savez(buffer, **arrays, **{_HEADER: np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)})
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(buffer.getvalue())
    os.replace(tmp, path)
    return path


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
    return header, arrays


def load(path: str | os.PathLike) -> IAE:
    """Read an IAE written by :func:`save`, verifying format, checksum and array shapes."""
    path = Path(path)
    header, arrays = _read(path)
    if header.get("format") != "bayes_unmix.iae":
        raise ModelFileError(f"{path}: not a bayes_unmix IAE file (format {header.get('format')!r})")
    if header.get("format_version", 0) > FORMAT_VERSION:
        raise ModelFileError(
            f"{path}: written with format {header['format_version']} by bayes_unmix "
            f"{header.get('package_version')}; this version ({bayes_unmix.__version__}) reads up to {FORMAT_VERSION}"
        )
    if _checksum(arrays) != header.get("checksum"):
        raise ModelFileError(f"{path}: checksum mismatch: the arrays were modified or damaged")
    try:
        network = NetworkConfig.from_dict(header["network"])
        interpolation = InterpolationConfig(**header["interpolation"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{path}: invalid architecture in header: {exc}") from exc

    skeleton = jax.eval_shape(lambda: init_network(jax.random.key(0), network))
    leaves_with_path, treedef = jax.tree_util.tree_flatten_with_path(skeleton)
    leaves = []
    for path_, spec in leaves_with_path:
        name = _leaf_name(path_)
        if name not in arrays or arrays[name].shape != spec.shape:
            found = arrays[name].shape if name in arrays else "nothing"
            raise ModelFileError(f"{path}: parameter {name} should have shape {spec.shape}, found {found}")
        leaves.append(jax.numpy.asarray(arrays[name]))
    expected = (network.n_components, network.n_channels)
    if "anchors" not in arrays or "scale" not in arrays:
        raise ModelFileError(f"{path}: anchors or scale missing")
    if arrays["anchors"].ndim != 3 or arrays["anchors"].shape[1:] != expected or arrays["scale"].shape != expected:
        raise ModelFileError(f"{path}: anchors/scale do not match the architecture {expected}")
    return IAE(
        params=jax.tree_util.tree_unflatten(treedef, leaves),
        anchors=jax.numpy.asarray(arrays["anchors"]),
        scale=jax.numpy.asarray(arrays["scale"]),
        network=network,
        interpolation=interpolation,
        metadata_json=json.dumps(header.get("metadata", {}), sort_keys=True),
    )
