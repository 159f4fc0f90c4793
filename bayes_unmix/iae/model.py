"""The trained IAE as data: a pytree of arrays plus static configuration.

An :class:`IAE` holds the network parameters, the anchor spectra and a per-channel scale. All of its
methods are pure functions of those arrays, so an ``IAE`` can be passed through ``jax.jit``,
``jax.grad`` and ``jax.vmap`` like any pytree, and a NumPyro model can close over
:meth:`IAE.decoder`.

Shapes: ``C`` components (``C > 1`` for a joint model), ``n`` channels, ``d`` anchors.
Spectra are ``(..., C, n)``; for single-component models ``(..., n)`` is accepted too by the
functions of :mod:`bayes_unmix.iae.project`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

from bayes_unmix.iae import network as net
from bayes_unmix.iae.interpolator import Rule, barycentric_weights

__all__ = ["IAE", "InterpolationConfig", "create_iae"]


@dataclasses.dataclass(frozen=True)
class InterpolationConfig:
    """How codes become anchor weights (see :func:`barycentric_weights`)."""

    rule: Rule = "exact"
    reg: float = 1e-8
    simplex: bool = False


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class IAE:
    """An Interpolatory AutoEncoder: encoder, decoder, anchors and scale.

    Attributes
    ----------
    params:
        Network parameters (pytree of arrays), see :func:`bayes_unmix.iae.network.init_network`.
    anchors:
        Anchor spectra, ``(d, C, n)``, in the same normalisation as the training data.
    scale:
        Positive per-channel scale ``(C, n)`` (the mean training spectrum): the encoder sees
        ``x / scale``, the decoder output is multiplied by it, so all channels, bright or faint,
        are learned with the same relative accuracy.
    network, interpolation:
        Static configuration.
    metadata_json:
        JSON text with user metadata (energy grid, parameter names, preprocessing, training record).
    """

    params: dict[str, Any]
    anchors: jax.Array
    scale: jax.Array
    network: net.NetworkConfig = dataclasses.field(metadata={"static": True})
    interpolation: InterpolationConfig = dataclasses.field(default=InterpolationConfig(), metadata={"static": True})
    metadata_json: str = dataclasses.field(default="{}", metadata={"static": True})

    @property
    def metadata(self) -> dict[str, Any]:
        return json.loads(self.metadata_json)

    @property
    def n_anchors(self) -> int:
        return self.anchors.shape[0]

    @property
    def n_components(self) -> int:
        return self.network.n_components

    @property
    def n_channels(self) -> int:
        return self.network.n_channels

    def replace(self, **changes: Any) -> IAE:
        return dataclasses.replace(self, **changes)

    def with_metadata(self, **entries: Any) -> IAE:
        """A copy whose metadata is updated with ``entries`` (JSON-serialisable values)."""
        return self.replace(metadata_json=json.dumps({**self.metadata, **entries}, sort_keys=True))

    def encode(self, spectra: jax.Array) -> jax.Array:
        """Codes ``(..., D)`` of spectra ``(..., C, n)``."""
        return net.encode(self.params, self.network, spectra / self.scale)

    def decode(self, codes: jax.Array) -> jax.Array:
        """Spectra ``(..., C, n)`` of codes ``(..., D)``, with the configured output map."""
        out = net.decode(self.params, self.network, codes)
        if self.network.output == "linear":
            return out * self.scale
        out = jax.nn.softplus(out) * self.scale
        if self.network.output == "unit_sum":
            out = out / jnp.sum(out, axis=-1, keepdims=True)
        return out

    def anchor_codes(self) -> jax.Array:
        """Codes of the anchors, ``(d, D)``."""
        return self.encode(self.anchors)

    def weights(self, spectra: jax.Array) -> jax.Array:
        """Barycentric weights ``(..., d)`` of spectra ``(..., C, n)`` (encode and interpolate)."""
        return self.weights_of_codes(self.encode(spectra), self.anchor_codes())

    def weights_of_codes(self, codes: jax.Array, anchor_codes: jax.Array) -> jax.Array:
        cfg = self.interpolation
        return barycentric_weights(codes, anchor_codes, reg=cfg.reg, rule=cfg.rule, simplex=cfg.simplex)

    def synthesize(self, weights: jax.Array) -> jax.Array:
        """Spectra ``(..., C, n)`` on the barycentric span: ``decode(weights @ anchor_codes)``."""
        return self.decode(weights @ self.anchor_codes())

    def reconstruct(self, spectra: jax.Array) -> jax.Array:
        """Auto-encode spectra through the barycentric bottleneck."""
        return self.synthesize(self.weights(spectra))

    def decoder(self) -> Callable[[jax.Array], jax.Array]:
        """A pure function ``weights (..., d) -> spectra (..., C, n)`` with the anchor codes precomputed.

        It is jit/grad/vmap-safe and is what probabilistic models close over.
        """
        anchor_codes = self.anchor_codes()

        def decode_weights(weights: jax.Array) -> jax.Array:
            return self.decode(weights @ anchor_codes)

        return decode_weights


def create_iae(
    key: jax.Array,
    anchors: jax.Array,
    network: net.NetworkConfig,
    *,
    scale: jax.Array | None = None,
    interpolation: InterpolationConfig = InterpolationConfig(),
    metadata: dict[str, Any] | None = None,
) -> IAE:
    """A freshly initialised IAE for ``anchors`` of shape ``(d, C, n)``.

    ``scale`` defaults to the mean anchor spectrum; :func:`bayes_unmix.iae.train.fit` users normally
    pass the mean training spectrum. Non-positive scale entries are floored at a small fraction of
    the maximum so that the network input stays finite.
    """
    anchors = jnp.asarray(anchors, dtype=jnp.float64)
    expected = (network.n_components, network.n_channels)
    if anchors.ndim != 3 or anchors.shape[1:] != expected:
        raise ValueError(f"anchors must have shape (d, {expected[0]}, {expected[1]}), got {anchors.shape}")
    if anchors.shape[0] < 2:
        raise ValueError("an IAE needs at least two anchors")
    scale = jnp.mean(jnp.abs(anchors), axis=0) if scale is None else jnp.asarray(scale, dtype=jnp.float64)
    scale = jnp.broadcast_to(scale, expected)
    scale = jnp.maximum(scale, 1e-3 * jnp.max(scale, axis=-1, keepdims=True))
    return IAE(
        params=net.init_network(key, network),
        anchors=anchors,
        scale=scale,
        network=network,
        interpolation=interpolation,
        metadata_json=json.dumps(metadata or {}, sort_keys=True),
    )
