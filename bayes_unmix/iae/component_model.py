"""IAE spectral components for hyperspectral cubes: a decoder plus a map to physical parameters.

An :class:`IAEComponent` satisfies :class:`~bayes_unmix.models.component.SpectralComponent`:
``theta`` holds the barycentric weights of the anchors (``n_latent = d``), the spectrum is

    f(theta) = softmax(decode(theta @ E))        (E: encoded anchors, computed once)

and the physical parameters come from a least-squares polynomial :class:`ParameterPolynomial` of
the weights, fitted on the projected training library. The IAE is trained on the **natural log of
the unit-sum spectra**: a squared error in log space is a relative error in every channel, so faint
high-energy channels are learned as accurately as bright ones (``shared/notes/iae.md`` §6.12), the
decoded spectrum is positive by construction, and the output map is one softmax (cheap to
differentiate over whole cubes).

The weights live in a ``d``-dimensional affine space, but the spectra of a ``p``-parameter library
(``p < d``) form a curved ``p``-dimensional manifold in it whose weights leave the anchors' simplex
(thermal: weights from -6 to 6.8). A :class:`PhysicalMap` (polynomial from the standardised physical
parameters to the weights) gives the manifold itself; :meth:`IAEComponent.in_physical_coordinates`
returns the component with ``theta`` = standardised physical parameters in ``[-1, 1]^p``
(:class:`PhysicalIAEComponent`), where a uniform prior is a prior on the physics and no sampler or
optimiser can leave the manifold. :func:`train_component` builds one from an
:class:`~bayes_unmix.data.xray.XrayLibrary`; :meth:`IAEComponent.save` / :meth:`IAEComponent.load`
use one ``.npz`` (:func:`bayes_unmix.iae.serialize.save_bundle`).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import os
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from bayes_unmix.data.xray import XrayLibrary, from_unit_box, to_unit_box
from bayes_unmix.iae import network as net
from bayes_unmix.iae.model import IAE, create_iae
from bayes_unmix.iae.network import NetworkConfig
from bayes_unmix.iae.project import project
from bayes_unmix.iae.serialize import ModelFileError, load_bundle, save_bundle
from bayes_unmix.iae.train import TrainConfig, fit

__all__ = [
    "XRAY_NETWORK",
    "XRAY_TRAINING",
    "IAEComponent",
    "ParameterPolynomial",
    "PhysicalIAEComponent",
    "PhysicalMap",
    "corner_anchors",
    "evaluate",
    "train_component",
]

#: Small decoder: one cube iteration evaluates it (value and gradient) at every pixel.
XRAY_NETWORK = {"kind": "mlp", "n_layers": 3, "hidden_width": 64, "latent_width": 8, "activation": "gelu"}
XRAY_TRAINING = TrainConfig(epochs=900, batch_size=128, learning_rate=3e-3, loss="mse", mu=0.1, eval_every=50)
_LOG_FLOOR = 1e-300


def _free_coordinates(theta: jax.Array) -> jax.Array:
    """First ``d - 1`` coordinates after moving ``theta`` orthogonally onto the sum-one plane."""
    theta = jnp.asarray(theta)
    d = theta.shape[-1]
    return (theta + (1.0 - jnp.sum(theta, axis=-1, keepdims=True)) / d)[..., : d - 1]


def _monomials(u: jax.Array, exponents: tuple[tuple[int, ...], ...]) -> jax.Array:
    return jnp.prod(jnp.asarray(u)[..., None, :] ** jnp.asarray(exponents), axis=-1)


@dataclasses.dataclass(frozen=True)
class ParameterPolynomial:
    """Polynomial map from barycentric weights ``(..., d)`` to physical parameters ``(..., p)``.

    The weights are moved onto the sum-one plane, reduced to their first ``d - 1`` coordinates,
    standardised (``centre``, ``scale``) and expanded in all monomials of total degree at most
    ``degree``; parameters flagged in ``log_parameters`` are fitted in log space. Plain numbers
    (JSON-serialisable); ``__call__`` is pure ``jax.numpy``.
    """

    degree: int
    exponents: tuple[tuple[int, ...], ...]
    coefficients: tuple[tuple[float, ...], ...]
    centre: tuple[float, ...]
    scale: tuple[float, ...]
    log_parameters: tuple[bool, ...]

    @staticmethod
    def _exponents(n_vars: int, degree: int) -> tuple[tuple[int, ...], ...]:
        combos = itertools.product(range(degree + 1), repeat=n_vars)
        return tuple(sorted((c for c in combos if sum(c) <= degree), key=lambda c: (sum(c), c[::-1])))

    @classmethod
    def fit(
        cls, weights: np.ndarray, values: np.ndarray, *, degree: int, log_parameters: tuple[bool, ...]
    ) -> ParameterPolynomial:
        """Least-squares fit on weights ``(N, d)`` and physical parameters ``(N, p)``."""
        u = np.asarray(_free_coordinates(np.asarray(weights, np.float64)))
        values = np.asarray(values, np.float64)
        if values.ndim != 2 or values.shape[0] != u.shape[0] or len(log_parameters) != values.shape[1]:
            raise ValueError("weights (N, d), values (N, p) and log_parameters (p,) do not match")
        target = np.where(np.asarray(log_parameters), np.log(np.abs(values) + _LOG_FLOOR), values)
        centre, scale = u.mean(0), np.maximum(u.std(0), 1e-12)
        exponents = cls._exponents(u.shape[1], degree)
        design = np.asarray(_monomials((u - centre) / scale, exponents))
        coefficients, *_ = np.linalg.lstsq(design, target, rcond=None)
        return cls(
            degree,
            exponents,
            tuple(map(tuple, coefficients.tolist())),
            tuple(centre.tolist()),
            tuple(scale.tolist()),
            tuple(bool(b) for b in log_parameters),
        )

    def __call__(self, theta: jax.Array) -> jax.Array:
        u = (_free_coordinates(theta) - jnp.asarray(self.centre)) / jnp.asarray(self.scale)
        out = _monomials(u, self.exponents) @ jnp.asarray(self.coefficients)
        return jnp.where(jnp.asarray(self.log_parameters), jnp.exp(out), out)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ParameterPolynomial:
        return cls(
            int(d["degree"]),
            tuple(map(tuple, d["exponents"])),
            tuple(map(tuple, d["coefficients"])),
            tuple(d["centre"]),
            tuple(d["scale"]),
            tuple(d["log_parameters"]),
        )


@dataclasses.dataclass(frozen=True)
class PhysicalMap:
    """Standardised physical parameters ``u`` in ``[-1, 1]^p`` -> barycentric weights ``(..., d)``.

    ``u = 2 (g(p) - low) / (high - low) - 1`` with ``g = log`` for the ``log_parameters`` (e.g. kT) and
    the identity otherwise, ``(low, high)`` the library's range of ``g(p)`` (``ranges`` holds it in
    physical units). The first ``d - 1`` weights are a least-squares polynomial of total degree
    ``degree`` in ``u``, the last one makes them sum to one. Plain numbers (JSON-serialisable).

    >>> m = PhysicalMap.fit(np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]]), np.array([[1.0], [2.0], [4.0]]),
    ...                     log_parameters=(True,), degree=1)
    >>> [round(float(v), 6) for v in m.parameters(m.to_unit(jnp.array([2.0])))]
    [2.0]
    """

    ranges: tuple[tuple[float, float], ...]
    log_parameters: tuple[bool, ...]
    exponents: tuple[tuple[int, ...], ...]
    coefficients: tuple[tuple[float, ...], ...]

    def to_unit(self, parameters: jax.Array) -> jax.Array:
        """Standardised ``u`` ``(..., p)`` of physical parameters ``(..., p)``."""
        return to_unit_box(parameters, self.ranges, self.log_parameters)

    def parameters(self, u: jax.Array) -> jax.Array:
        """Physical parameters ``(..., p)`` of standardised ``u`` ``(..., p)`` (inverse of :meth:`to_unit`)."""
        return from_unit_box(u, self.ranges, self.log_parameters)

    def weights(self, u: jax.Array) -> jax.Array:
        """Barycentric weights ``(..., d)`` on the learned manifold at ``u`` ``(..., p)``."""
        free = _monomials(u, self.exponents) @ jnp.asarray(self.coefficients)
        return jnp.concatenate([free, 1.0 - jnp.sum(free, axis=-1, keepdims=True)], axis=-1)

    @classmethod
    def fit(
        cls, weights: np.ndarray, parameters: np.ndarray, *, log_parameters: tuple[bool, ...], degree: int = 7
    ) -> PhysicalMap:
        """Least squares on projected weights ``(N, d)`` of spectra with known parameters ``(N, p)``."""
        weights, parameters = np.asarray(weights, np.float64), np.asarray(parameters, np.float64)
        ranges = tuple((float(lo), float(hi)) for lo, hi in zip(parameters.min(0), parameters.max(0)))
        draft = cls(
            ranges, tuple(bool(b) for b in log_parameters), ParameterPolynomial._exponents(len(ranges), degree), ()
        )
        design = np.asarray(_monomials(draft.to_unit(parameters), draft.exponents))
        coefficients, *_ = np.linalg.lstsq(design, weights[:, :-1], rcond=None)
        return dataclasses.replace(draft, coefficients=tuple(map(tuple, coefficients.tolist())))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PhysicalMap:
        return cls(
            tuple(map(tuple, d["ranges"])),
            tuple(d["log_parameters"]),
            tuple(map(tuple, d["exponents"])),
            tuple(map(tuple, d["coefficients"])),
        )


@functools.partial(
    jax.tree_util.register_dataclass,
    data_fields=["iae", "anchor_codes"],
    meta_fields=[
        "name",
        "parameter_names",
        "parameter_map",
        "bounds",
        "energies_kev",
        "training_json",
        "compute_dtype",
        "physical_map",
    ],
)
@dataclasses.dataclass(frozen=True, eq=False)
class IAEComponent:
    """An IAE-based :class:`~bayes_unmix.models.component.SpectralComponent`.

    A pytree (its arrays are leaves, so it can be passed *into* ``jax.jit`` instead of being baked
    in as constants) that also hashes by identity (so it can be a static argument).

    Attributes
    ----------
    name:
        Component name, e.g. ``"thermal"``.
    iae:
        The IAE, trained on log unit-sum spectra (single component).
    parameter_names:
        Physical parameters, e.g. ``("kT_keV", "z")``.
    parameter_map:
        Weights -> parameters.
    bounds:
        ``(low, high)`` per weight: the box of projected training weights plus a margin.
    energies_kev:
        Channel centres ``(n_channels,)``.
    training_json:
        JSON record of training (command, seed, split, accuracy), see :attr:`training`.
    compute_dtype:
        ``"float64"`` (default) or ``"float32"``: precision of the decoder arithmetic. float32 is
        several times faster on CPU and its relative error (~1e-6) is far below the model error;
        inputs and outputs stay float64.
    anchor_codes:
        Encoded anchors ``(d, D)``, computed once when omitted.
    physical_map:
        Physical parameters -> weights on the learned manifold (see :meth:`in_physical_coordinates`),
        ``None`` for files written before it existed.
    """

    name: str
    iae: IAE
    parameter_names: tuple[str, ...]
    parameter_map: ParameterPolynomial
    bounds: tuple[tuple[float, ...], tuple[float, ...]]
    energies_kev: tuple[float, ...]
    training_json: str = "{}"
    compute_dtype: str = "float64"
    anchor_codes: jax.Array | None = None
    physical_map: PhysicalMap | None = None

    def __post_init__(self) -> None:
        if self.compute_dtype not in ("float64", "float32"):
            raise ValueError(f"compute_dtype must be 'float64' or 'float32', got {self.compute_dtype!r}")
        # pytree unflattening may pass placeholders: only validate and encode real arrays
        if isinstance(self.iae, IAE) and isinstance(self.iae.anchors, jax.Array | np.ndarray):
            if self.iae.n_components != 1:
                raise ValueError("an IAEComponent needs a single-component IAE")
            if self.anchor_codes is None:
                object.__setattr__(self, "anchor_codes", self.iae.anchor_codes())

    @property
    def training(self) -> dict[str, Any]:
        return json.loads(self.training_json)

    @property
    def n_latent(self) -> int:
        return self.iae.n_anchors

    @property
    def n_channels(self) -> int:
        return self.iae.n_channels

    @property
    def theta_bounds(self) -> tuple[jax.Array, jax.Array]:
        return jnp.asarray(self.bounds[0]), jnp.asarray(self.bounds[1])

    def with_compute_dtype(self, dtype: str) -> IAEComponent:
        """A copy computing its decoder in ``dtype`` (``"float32"`` or ``"float64"``)."""
        return dataclasses.replace(self, compute_dtype=dtype)

    def initial_theta(self) -> jax.Array:
        """The barycentre of the anchors, ``(d,)``."""
        return jnp.full(self.n_latent, 1.0 / self.n_latent)

    def _logits(self, theta: jax.Array) -> jax.Array:
        dtype = jnp.dtype(self.compute_dtype)
        params = jax.tree_util.tree_map(lambda a: a.astype(dtype), self.iae.params)
        codes = jnp.asarray(theta).astype(dtype) @ self.anchor_codes.astype(dtype)
        return net.decode(params, self.iae.network, codes)[..., 0, :] * self.iae.scale[0].astype(dtype)

    def log_spectra(self, theta: jax.Array) -> jax.Array:
        """Log of the unit-sum spectra, ``(..., n_channels)``."""
        return jax.nn.log_softmax(self._logits(theta), axis=-1).astype(jnp.float64)

    def spectra(self, theta: jax.Array) -> jax.Array:
        """Unit-sum spectra ``(..., n_channels)`` at barycentric weights ``theta`` ``(..., d)``."""
        return jax.nn.softmax(self._logits(theta), axis=-1).astype(jnp.float64)

    def parameters(self, theta: jax.Array) -> jax.Array:
        """Physical parameters ``(..., p)`` at ``theta`` ``(..., d)``."""
        return self.parameter_map(theta)

    def in_physical_coordinates(self) -> PhysicalIAEComponent:
        """This component with ``theta`` = standardised physical parameters (the learned manifold only)."""
        if self.physical_map is None:
            raise ValueError(f"component {self.name!r} has no physical map (retrain it with train_component)")
        return PhysicalIAEComponent(self)

    def fit_weights(self, spectra: jax.Array, *, max_iter: int = 100) -> jax.Array:
        """Barycentric weights ``(..., d)`` of noiseless unit-sum spectra (least squares in log space)."""
        logs = jnp.log(jnp.maximum(jnp.asarray(spectra, jnp.float64), _LOG_FLOOR))
        return project(self.iae, logs, fit_amplitude=False, max_iter=max_iter).weights

    def save(self, path: str | os.PathLike) -> Path:
        """Write one ``.npz`` (IAE arrays + JSON header with the parameter map and training record)."""
        meta = {
            "kind": "bayes_unmix.IAEComponent",
            "name": self.name,
            "parameter_names": list(self.parameter_names),
            "parameter_map": self.parameter_map.to_dict(),
            "bounds": [list(b) for b in self.bounds],
            "energies_kev": list(self.energies_kev),
            "training": self.training,
            "compute_dtype": self.compute_dtype,
        }
        if self.physical_map is not None:
            meta["physical_map"] = self.physical_map.to_dict()
        return save_bundle({self.name: self.iae}, path, metadata={"component": meta})

    @classmethod
    def load(cls, path: str | os.PathLike) -> IAEComponent:
        """Read a file written by :meth:`save` (raises :class:`ModelFileError` on mismatch)."""
        models, metadata = load_bundle(path)
        meta = metadata.get("component")
        if not isinstance(meta, dict) or meta.get("kind") != "bayes_unmix.IAEComponent":
            raise ModelFileError(f"{path}: not an IAEComponent file")
        try:
            return cls(
                name=meta["name"],
                iae=models[meta["name"]],
                parameter_names=tuple(meta["parameter_names"]),
                parameter_map=ParameterPolynomial.from_dict(meta["parameter_map"]),
                bounds=(tuple(meta["bounds"][0]), tuple(meta["bounds"][1])),
                energies_kev=tuple(meta["energies_kev"]),
                training_json=json.dumps(meta.get("training", {}), sort_keys=True),
                compute_dtype=meta.get("compute_dtype", "float64"),
                physical_map=PhysicalMap.from_dict(meta["physical_map"]) if "physical_map" in meta else None,
            )
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise ModelFileError(f"{path}: invalid IAEComponent metadata: {exc}") from exc


@functools.partial(jax.tree_util.register_dataclass, data_fields=["component"], meta_fields=[])
@dataclasses.dataclass(frozen=True, eq=False)
class PhysicalIAEComponent:
    """An :class:`IAEComponent` parametrised by its physical parameters (a ``SpectralComponent``).

    ``theta`` ``(..., p)`` are the standardised physical parameters of :class:`PhysicalMap` (``log kT``
    and ``z`` for the thermal model, the photon index for the synchrotron one), ``[-1, 1]^p`` is the
    training library's box (:attr:`theta_bounds`), and ``spectra(theta)`` decodes the weights
    ``physical_map.weights(theta)``. Unlike the barycentric weights, every ``theta`` in the box is a
    point of the learned manifold, so a uniform prior on the box is a prior on the physics.
    """

    component: IAEComponent

    @property
    def name(self) -> str:
        return self.component.name

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return self.component.parameter_names

    @property
    def n_latent(self) -> int:
        return len(self.component.parameter_names)

    @property
    def n_channels(self) -> int:
        return self.component.n_channels

    @property
    def energies_kev(self) -> tuple[float, ...]:
        return self.component.energies_kev

    @property
    def training(self) -> dict[str, Any]:
        return self.component.training

    @property
    def theta_bounds(self) -> tuple[jax.Array, jax.Array]:
        return -jnp.ones(self.n_latent), jnp.ones(self.n_latent)

    def initial_theta(self) -> jax.Array:
        return jnp.zeros(self.n_latent)

    def with_compute_dtype(self, dtype: str) -> PhysicalIAEComponent:
        return PhysicalIAEComponent(self.component.with_compute_dtype(dtype))

    def spectra(self, theta: jax.Array) -> jax.Array:
        return self.component.spectra(self.component.physical_map.weights(theta))

    def parameters(self, theta: jax.Array) -> jax.Array:
        return self.component.physical_map.parameters(theta)

    def to_theta(self, parameters: jax.Array) -> jax.Array:
        """Standardised ``theta`` of physical parameters (inverse of :meth:`parameters`)."""
        return self.component.physical_map.to_unit(parameters)


def corner_anchors(library: XrayLibrary) -> np.ndarray:
    """Indices of the library spectra nearest to the corners of the parameter box (``2^p`` anchors).

    kT is compared in log space. Order: ``itertools.product`` over (low, high) of each parameter.
    """
    logs = np.array([name.startswith("kT") for name in library.parameter_names])
    g = np.where(logs, np.log(np.abs(library.parameters) + _LOG_FLOOR), library.parameters)
    g = (g - g.min(0)) / np.maximum(np.ptp(g, axis=0), 1e-300)
    corners = np.array(list(itertools.product((0.0, 1.0), repeat=g.shape[1])))
    return np.array([int(np.argmin(np.sum((g - c) ** 2, axis=1))) for c in corners])


def _split(n: int, key: jax.Array, fractions: tuple[float, float]) -> tuple[np.ndarray, ...]:
    order = np.asarray(jax.random.permutation(key, n))
    n_train, n_valid = int(fractions[0] * n), int(fractions[1] * n)
    return order[:n_train], order[n_train : n_train + n_valid], order[n_train + n_valid :]


def evaluate(component: IAEComponent, spectra: np.ndarray, parameters: np.ndarray, *, faint_kev: float = 6.2) -> dict:
    """Accuracy on held-out spectra ``(N, n)`` with known parameters ``(N, p)``.

    Returns median [Q1, Q3] NMSE (dB) of the projected spectra, the median and 90th percentile of
    the relative L2 error in the channels above ``faint_kev``, and the RMSE of each parameter
    (physical units) through the parameter map.
    """
    weights = component.fit_weights(spectra)
    fitted = np.asarray(component.spectra(weights))
    err = np.sum((fitted - spectra) ** 2, -1) / np.sum(spectra**2, -1)
    nmse = -10 * np.log10(err)
    faint = np.asarray(component.energies_kev) > faint_kev
    rel = np.linalg.norm((fitted - spectra)[:, faint], axis=-1) / np.linalg.norm(spectra[:, faint], axis=-1)
    estimated = np.asarray(component.parameters(weights))
    rmse = np.sqrt(np.mean((estimated - parameters) ** 2, axis=0))
    out = {
        "n": int(spectra.shape[0]),
        "nmse_db_median_q1_q3": _quartiles(nmse),
        "faint_relative_error_median_p90": [float(np.median(rel)), float(np.quantile(rel, 0.9))],
        "faint_kev": faint_kev,
        "parameter_rmse": dict(zip(component.parameter_names, map(float, rmse))),
    }
    if component.physical_map is not None:  # spectra decoded at the true parameters, no projection
        physical = component.in_physical_coordinates()
        decoded = np.asarray(physical.spectra(physical.to_theta(parameters)))
        nmse = -10 * np.log10(np.sum((decoded - spectra) ** 2, -1) / np.sum(spectra**2, -1))
        out["physical_nmse_db_median_q1_q3"] = _quartiles(nmse)
    return out


def _quartiles(x: np.ndarray) -> list[float]:
    return [float(np.median(x)), *map(float, np.quantile(x, [0.25, 0.75]))]


def train_component(
    library: XrayLibrary,
    *,
    key: jax.Array,
    network: dict[str, Any] | None = None,
    config: TrainConfig = XRAY_TRAINING,
    fractions: tuple[float, float] = (0.7, 0.15),
    degree: int | None = None,
    margin: float = 0.05,
    progress: bool = True,
    record: dict[str, Any] | None = None,
) -> IAEComponent:
    """Train an :class:`IAEComponent` on a library (anchors: the corners of its parameter box).

    Parameters
    ----------
    library:
        Unit-sum spectra ``(N, n)`` and their physical parameters.
    key:
        Split, initialisation and training randomness.
    network:
        :class:`NetworkConfig` fields (default :data:`XRAY_NETWORK`); ``output`` is always linear.
    config:
        Training recipe (default :data:`XRAY_TRAINING`: MSE on log spectra).
    fractions:
        Training and validation fractions; the rest is the held-out test set scored in
        ``training["test"]`` (see :func:`evaluate`).
    degree:
        Degree of the parameter polynomial (default 5 for two anchors, 3 otherwise).
    margin:
        Relative margin added on each side of the box of projected training weights.
    """
    k_split, k_init, k_fit = jax.random.split(key, 3)
    spectra = np.asarray(library.spectra, np.float64)
    if np.any(spectra <= 0) or not np.all(np.isfinite(spectra)):
        raise ValueError("library spectra must be positive and finite (they are modelled in log space)")
    logs = np.log(spectra)
    train, valid, test = _split(spectra.shape[0], k_split, fractions)
    anchors = corner_anchors(library)
    net_cfg = NetworkConfig(n_channels=spectra.shape[1], **{**(network or XRAY_NETWORK), "output": "linear"})
    iae = create_iae(k_init, logs[anchors][:, None, :], net_cfg, scale=np.abs(logs[train]).mean(0))
    start = time.perf_counter()
    iae, history = fit(iae, logs[train], logs[valid], config, key=k_fit, progress=progress)
    seconds = time.perf_counter() - start

    d = iae.n_anchors
    log_params = tuple(name.startswith("kT") for name in library.parameter_names)
    draft = IAEComponent(
        library.name,
        iae,
        library.parameter_names,
        ParameterPolynomial(
            0, ((0,) * (d - 1),), ((0.0,) * len(log_params),), (0.0,) * (d - 1), (1.0,) * (d - 1), log_params
        ),
        ((-np.inf,) * d, (np.inf,) * d),
        tuple(library.energies_kev.tolist()),
    )
    weights = np.asarray(draft.fit_weights(spectra[train]))
    poly = ParameterPolynomial.fit(
        weights, library.parameters[train], degree=degree or (5 if d == 2 else 3), log_parameters=log_params
    )
    lo, hi = weights.min(0), weights.max(0)
    pad = margin * (hi - lo)
    component = dataclasses.replace(
        draft,
        parameter_map=poly,
        bounds=(tuple((lo - pad).tolist()), tuple((hi + pad).tolist())),
        physical_map=PhysicalMap.fit(weights, library.parameters[train], log_parameters=log_params),
    )
    training = {
        **(record or {}),
        "anchors_parameters": library.parameters[anchors].tolist(),
        "network": net_cfg.to_dict(),
        "config": dataclasses.asdict(config),
        "split": {"train": len(train), "valid": len(valid), "test": len(test)},
        "train_seconds": seconds,
        "best_epoch": history.best_epoch,
        "valid_log_nmse_db": history.valid_nmse_db[-1] if history.valid_nmse_db else None,
        "test": evaluate(component, spectra[test], library.parameters[test]),
    }
    return dataclasses.replace(component, training_json=json.dumps(training, sort_keys=True))
