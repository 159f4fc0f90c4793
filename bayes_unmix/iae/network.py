"""Encoder and decoder networks of the IAE as pure functions of a parameter pytree.

Two families are provided, selected by :attr:`NetworkConfig.kind`:

``"mlp"``
    The residual MLP of Bobin et al. (2023): ``h_{l+1} = act(h_l W_l + b_l) + r_l * S_l(h_l)``
    with ``r_l = 0.1 (2^{l/(L-1)} - 1)`` (``r_l = 0`` when ``L = 1``) and ``S_l`` the identity when
    the widths match, a learned linear shortcut otherwise. Unlike the published code the latent
    width may be smaller than the input (compression).
``"cnn"``
    A 1-D convolutional encoder (strided convolutions, as in the gamma-spectrometry IAE of SEMSUN)
    followed by a dense map to the latent vector; the decoder mirrors it with transposed
    convolutions and a final linear resampling to the channel grid.

Spectra enter as arrays of shape ``(..., C, n)`` (``C`` components sharing one latent code, ``n``
channels); codes are flat vectors of shape ``(..., latent_width)``. Networks work on spectra already
divided by the per-channel scale held by :class:`bayes_unmix.iae.IAE`.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Literal

import jax
import jax.numpy as jnp

__all__ = ["ACTIVATIONS", "NetworkConfig", "decode", "encode", "init_network"]

Params = dict[str, Any]

ACTIVATIONS = {
    "lrelu": lambda x: jax.nn.leaky_relu(x, 0.01),
    "elu": jax.nn.elu,
    "mish": jax.nn.mish,
    "gelu": jax.nn.gelu,
    "tanh": jnp.tanh,
}


@dataclasses.dataclass(frozen=True)
class NetworkConfig:
    """Static architecture of an IAE encoder/decoder pair (hashable, JSON-serialisable).

    Parameters
    ----------
    n_channels:
        Number of spectral channels ``n``.
    n_components:
        Number of spectra ``C`` encoded together (``C > 1`` is the "joint" model).
    kind:
        ``"mlp"`` (residual MLP) or ``"cnn"`` (1-D convolutional).
    n_layers:
        MLP depth ``L`` on each side.
    hidden_width:
        MLP hidden width; ``None`` means ``C * n`` (the published choice).
    latent_width:
        Width of the latent code; ``None`` means the hidden width (MLP) or the flattened
        feature map (CNN). Smaller values compress.
    filters, kernels, strides:
        CNN layer specification, one entry per convolution.
    activation:
        One of :data:`ACTIVATIONS`.
    output:
        ``"linear"``; ``"nonnegative"`` (softplus); ``"unit_sum"`` (softplus, then each component
        divided by its sum, so the decoder output is a probability vector over channels).
    """

    n_channels: int
    n_components: int = 1
    kind: Literal["mlp", "cnn"] = "mlp"
    n_layers: int = 4
    hidden_width: int | None = None
    latent_width: int | None = None
    filters: tuple[int, ...] = (8, 16, 16, 32)
    kernels: tuple[int, ...] = (5, 5, 5, 5)
    strides: tuple[int, ...] = (1, 2, 2, 2)
    activation: str = "lrelu"
    output: Literal["linear", "nonnegative", "unit_sum"] = "linear"

    def __post_init__(self) -> None:
        if self.n_channels < 2 or self.n_components < 1:
            raise ValueError("need n_channels >= 2 and n_components >= 1")
        if self.kind not in ("mlp", "cnn"):
            raise ValueError(f"unknown network kind {self.kind!r}; use 'mlp' or 'cnn'")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {self.activation!r}; choose from {sorted(ACTIVATIONS)}")
        if self.output not in ("linear", "nonnegative", "unit_sum"):
            raise ValueError(f"unknown output {self.output!r}")
        if self.n_layers < 1:
            raise ValueError("n_layers must be >= 1")
        if not len(self.filters) == len(self.kernels) == len(self.strides) >= 1:
            raise ValueError("filters, kernels and strides must have the same, non-zero length")

    @property
    def input_width(self) -> int:
        return self.n_components * self.n_channels

    @property
    def mlp_widths(self) -> list[int]:
        """Encoder widths from input to latent (the decoder runs them in reverse)."""
        hidden = self.hidden_width or self.input_width
        latent = self.latent_width or hidden
        return [self.input_width] + [hidden] * (self.n_layers - 1) + [latent]

    @property
    def cnn_lengths(self) -> list[int]:
        """Feature-map lengths after each encoder convolution ("SAME" padding)."""
        lengths = [self.n_channels]
        for stride in self.strides:
            lengths.append(math.ceil(lengths[-1] / stride))
        return lengths

    @property
    def code_width(self) -> int:
        if self.kind == "mlp":
            return self.mlp_widths[-1]
        return self.latent_width or self.filters[-1] * self.cnn_lengths[-1]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NetworkConfig:
        d = dict(d)
        for key in ("filters", "kernels", "strides"):
            d[key] = tuple(d[key])
        return cls(**d)


def residual_weights(n_layers: int) -> list[float]:
    """Published residual weights ``r_l = 0.1 (2^{l/(L-1)} - 1)``; all zero for one layer."""
    if n_layers == 1:
        return [0.0]
    return [0.1 * (2.0 ** (l / (n_layers - 1)) - 1.0) for l in range(n_layers)]


def _dense(key: jax.Array, n_in: int, n_out: int) -> Params:
    w = jax.random.normal(key, (n_in, n_out)) * jnp.sqrt(1.0 / n_in)
    return {"w": w, "b": jnp.zeros(n_out)}


def _mlp_stack(key: jax.Array, widths: list[int], residual: list[float]) -> list[Params]:
    layers = []
    for key_l, n_in, n_out, r in zip(jax.random.split(key, len(widths) - 1), widths[:-1], widths[1:], residual):
        k1, k2 = jax.random.split(key_l)
        layer = _dense(k1, n_in, n_out)
        if n_in != n_out and r != 0.0:  # a shortcut with zero residual weight would be dead weight
            layer["shortcut"] = _dense(k2, n_in, n_out)["w"]
        layers.append(layer)
    return layers


def _conv_kernel(key: jax.Array, f_out: int, f_in: int, k: int) -> jax.Array:
    return jax.random.normal(key, (f_out, f_in, k)) * jnp.sqrt(1.0 / (f_in * k))


def init_network(key: jax.Array, config: NetworkConfig) -> Params:
    """Initialise encoder and decoder parameters (He-scaled normal weights, zero biases)."""
    k_enc, k_dec = jax.random.split(key)
    if config.kind == "mlp":
        widths, r = config.mlp_widths, residual_weights(config.n_layers)
        return {"encoder": _mlp_stack(k_enc, widths, r), "decoder": _mlp_stack(k_dec, widths[::-1], r[::-1])}

    chans = [config.n_components, *config.filters]
    flat = config.filters[-1] * config.cnn_lengths[-1]
    keys_e = jax.random.split(k_enc, len(config.filters) + 1)
    keys_d = jax.random.split(k_dec, len(config.filters) + 2)
    encoder = {
        "convs": [
            {"w": _conv_kernel(k, f_out, f_in, ks), "b": jnp.zeros(f_out)}
            for k, f_in, f_out, ks in zip(keys_e, chans[:-1], chans[1:], config.kernels)
        ],
        "dense": _dense(keys_e[-1], flat, config.code_width),
    }
    decoder = {
        "dense": _dense(keys_d[0], config.code_width, flat),
        # transposed convolutions from deep to shallow, mapping chans[i+1] -> chans[i] (i >= 1)
        "convs": [
            {"w": _conv_kernel(k, chans[i], chans[i + 1], config.kernels[i]), "b": jnp.zeros(chans[i])}
            for k, i in zip(keys_d[1:], range(len(config.filters) - 1, 0, -1))
        ],
        "head": _conv_kernel(keys_d[-1], config.n_components, chans[1], 1),
    }
    return {"encoder": encoder, "decoder": decoder}


def _mlp_apply(layers: list[Params], h: jax.Array, config: NetworkConfig, r: list[float]) -> jax.Array:
    act = ACTIVATIONS[config.activation]
    last = len(layers) - 1
    for l, layer in enumerate(layers):
        pre = h @ layer["w"] + layer["b"]
        # the last layer on each side is linear: latent codes and outputs are unconstrained
        out = pre if l == last else act(pre)
        if r[l] != 0.0:
            out = out + r[l] * (h @ layer["shortcut"] if "shortcut" in layer else h)
        h = out
    return h


_CONV_DIMS = ("NCH", "OIH", "NCH")


def _conv(x: jax.Array, w: jax.Array, stride: int) -> jax.Array:
    return jax.lax.conv_general_dilated(x, w, (stride,), "SAME", dimension_numbers=_CONV_DIMS)


def _conv_transpose(x: jax.Array, w: jax.Array, stride: int) -> jax.Array:
    # w has layout (out, in, k) of this upsampling layer
    return jax.lax.conv_transpose(x, w, (stride,), "SAME", dimension_numbers=_CONV_DIMS)


def _flatten_batch(x: jax.Array, n_trailing: int) -> tuple[jax.Array, tuple[int, ...]]:
    lead = x.shape[: x.ndim - n_trailing]
    return x.reshape((-1, *x.shape[x.ndim - n_trailing :])), lead


def encode(params: Params, config: NetworkConfig, x: jax.Array) -> jax.Array:
    """Encode scaled spectra ``x`` of shape ``(..., C, n)`` to codes of shape ``(..., code_width)``."""
    x, lead = _flatten_batch(x, 2)
    if config.kind == "mlp":
        h = x.reshape(x.shape[0], -1)
        code = _mlp_apply(params["encoder"], h, config, residual_weights(config.n_layers))
        return code.reshape(*lead, -1)
    act = ACTIVATIONS[config.activation]
    h = x
    for layer, stride in zip(params["encoder"]["convs"], config.strides):
        h = act(_conv(h, layer["w"], stride) + layer["b"][:, None])
    dense = params["encoder"]["dense"]
    code = h.reshape(h.shape[0], -1) @ dense["w"] + dense["b"]
    return code.reshape(*lead, -1)


def decode(params: Params, config: NetworkConfig, code: jax.Array) -> jax.Array:
    """Decode codes of shape ``(..., code_width)`` to scaled spectra ``(..., C, n)`` (before output map)."""
    code, lead = _flatten_batch(code, 1)
    if config.kind == "mlp":
        out = _mlp_apply(params["decoder"], code, config, residual_weights(config.n_layers)[::-1])
        return out.reshape(*lead, config.n_components, config.n_channels)
    act = ACTIVATIONS[config.activation]
    dense = params["decoder"]["dense"]
    h = act(code @ dense["w"] + dense["b"]).reshape(code.shape[0], config.filters[-1], config.cnn_lengths[-1])
    n_conv = len(config.filters)
    for layer, i in zip(params["decoder"]["convs"], range(n_conv - 1, 0, -1)):
        h = act(_conv_transpose(h, layer["w"], config.strides[i]) + layer["b"][:, None])
        h = jax.image.resize(h, (h.shape[0], h.shape[1], config.cnn_lengths[i]), "linear")
    h = jax.image.resize(h, (h.shape[0], h.shape[1], config.n_channels), "linear")
    out = jnp.einsum("oi,bil->bol", params["decoder"]["head"][:, :, 0], h)
    return out.reshape(*lead, config.n_components, config.n_channels)
