"""Batched inference sharded over several (host) devices gives the single-device answer."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np

SCRIPT = textwrap.dedent(
    """
    import json, sys
    import jax, numpy as np
    import bayes_unmix
    from bayes_unmix.inference.map import map_batch
    from bayes_unmix.models.gamma import GammaMixture

    x = np.arange(60)
    sig = np.stack([np.exp(-0.5 * ((x - c) / 3.0) ** 2) + 0.01 for c in (15, 40)])
    sig /= sig.sum(-1, keepdims=True)
    bkg = np.full(60, 1 / 60)
    mix = GammaMixture(nuclides=("A", "B"), n_channels=60, background=bkg, signatures=sig)
    rate = np.array([500.0, 300.0, 200.0]) @ np.vstack([bkg, sig])
    ys = np.random.default_rng(0).poisson(rate, size=(4, 60)).astype(float)
    out = map_batch(mix, ys)
    print(json.dumps({"devices": len(jax.devices()), "counts": out["count_nuclides"].tolist()}))
    """
)


def run(devices: int) -> dict:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_map_batch_on_two_host_devices_matches_one():
    one, two = run(1), run(2)
    assert one["devices"] == 1 and two["devices"] == 2
    np.testing.assert_allclose(two["counts"], one["counts"], rtol=1e-10)
