"""Helpers shared by the inference drivers."""

from __future__ import annotations

import jax
import numpy as np

from bayes_unmix.models.gamma import GammaMixture


def sample_sites(mix: GammaMixture) -> tuple[str, ...]:
    """Names of the sample (non-deterministic, unobserved) sites of the mixture's model."""
    sites = ("count_nuclides",) + (("count_background",) if mix.background is not None else ())
    if mix.latent:
        sites += ("u",) if mix.spectral_model.n_anchors == 2 else ("weights",)
    return sites


def shard(*arrays: jax.Array):
    """Place the leading (batch) axis across all devices when it divides evenly."""
    devices = jax.devices()
    if len(devices) == 1 or arrays[0].shape[0] % len(devices):
        return arrays
    mesh = jax.sharding.Mesh(np.array(devices), ("batch",))
    sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("batch"))
    return tuple(jax.device_put(a, sharding) for a in arrays)
