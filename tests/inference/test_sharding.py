"""Batched inference sharded over several (host) devices gives the single-device answer."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

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

    # per-pixel cube MAP: blocks of 8 pixels, each sharded over the devices (analytic toy components)
    from bayes_unmix.inference.cube_pixel import PixelConfig, pixel_map_point
    from bayes_unmix.models.cube import CubeModel

    sys.path.insert(0, sys.argv[1])
    from test_cube import scene

    comps, _, expected = scene(8, 8, scale=300.0)
    counts = np.random.default_rng(0).poisson(expected).astype(float)
    model = CubeModel(comps, 8, 8, spatial_prior="none")
    pixel = pixel_map_point(model, counts, config=PixelConfig(grid=16, block_size=8), progress=False)
    print(json.dumps({
        "devices": len(jax.devices()),
        "counts": out["count_nuclides"].tolist(),
        "kT": np.asarray(comps[0].parameters(pixel["theta_thermal"]))[:, 0].tolist(),
        "amplitude": pixel["amplitude"].tolist(),
    }))
    """
)


def run(devices: int) -> dict:
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", JAX_PLATFORMS="cpu")
    toys = str(Path(__file__).parents[1] / "models")
    done = subprocess.run([sys.executable, "-c", SCRIPT, toys], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_batched_map_and_cube_pixel_blocks_on_two_host_devices_match_one():
    one, two = run(1), run(2)
    assert one["devices"] == 1 and two["devices"] == 2
    np.testing.assert_allclose(two["counts"], one["counts"], rtol=1e-10)
    # Newton's reductions run in another order when sharded: agreement to its convergence, not to the bit
    np.testing.assert_allclose(two["kT"], one["kT"], rtol=1e-5)
    np.testing.assert_allclose(two["amplitude"], one["amplitude"], rtol=1e-5)
    assert len(one["kT"]) == 64 and np.all(np.isfinite(one["kT"]))
