"""Train the X-ray cube components shipped in ``bayes_unmix/pretrained/`` and time their decoders.

Libraries come from the package's simplified simulator (:mod:`bayes_unmix.data.xray`, 375 channels
on 3-8.48 keV): thermal on a 100 x 100 grid (kT 0.8-6 keV log-spaced, z +-0.033; anchors: the four
corners), synchrotron on 300 photon indices 1-4 (anchors: the two extremes). Deterministic given
the seed. Reproduce with

    OMP_NUM_THREADS=1 .venv/bin/python scripts/train_pretrained_xray.py --seed 0

(the shipped files come from that command; XLA's thread count changes the order of float reductions, so
a multi-threaded run trains slightly different weights)

The script prints the held-out accuracy (recorded in each file's metadata) and the time of one
``jax.jit(jax.value_and_grad(sum of decoder outputs))`` over 94 x 94 = 8836 pixels (wall and
process-CPU time; on a shared machine the CPU time is the more stable number).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp

import bayes_unmix  # noqa: F401  (float64)
from bayes_unmix.data.xray import synchrotron_library, thermal_library
from bayes_unmix.iae.component_model import XRAY_TRAINING, IAEComponent, train_component
from bayes_unmix.pretrained import PRETRAINED_DIR

#: Per component: library builder and training recipe (the synchrotron library is small: smaller batches).
RECIPES = {
    "thermal": (thermal_library, XRAY_TRAINING),
    "synchrotron": (
        synchrotron_library,
        dataclasses.replace(XRAY_TRAINING, epochs=2000, batch_size=32, eval_every=200),
    ),
}


def decoder_seconds(component: IAEComponent, n_pixels: int = 8836, repeats: int = 9) -> tuple[float, float]:
    """Median wall and process-CPU seconds of one jitted value-and-gradient of the summed spectra
    over ``n_pixels`` (the component is passed as a pytree argument, as cube algorithms should)."""
    theta = jnp.broadcast_to(component.initial_theta(), (n_pixels, component.n_latent))
    weights = jnp.linspace(0.0, 1.0, component.n_channels)
    step = jax.jit(jax.value_and_grad(lambda t, c: jnp.sum(c.spectra(t) * weights)))
    jax.block_until_ready(step(theta, component))
    wall, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        jax.block_until_ready(step(theta, component))
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return sorted(wall)[repeats // 2], sorted(cpu)[repeats // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs-scale", type=float, default=1.0, help="multiply the epochs (quick checks)")
    parser.add_argument("--out", type=Path, default=PRETRAINED_DIR)
    parser.add_argument("--only", choices=sorted(RECIPES), default=None)
    args = parser.parse_args()
    for name, (builder, config) in RECIPES.items():
        if args.only and name != args.only:
            continue
        config = dataclasses.replace(config, epochs=max(int(config.epochs * args.epochs_scale), 1))
        start = time.perf_counter()
        component = train_component(
            builder(),
            key=jax.random.key(args.seed),
            config=config,
            record={
                "command": f"scripts/train_pretrained_xray.py --seed {args.seed} --epochs-scale {args.epochs_scale}",
                "seed": args.seed,
            },
        )
        path = component.save(args.out / f"xray_{name}.npz")
        print(f"xray_{name}: {time.perf_counter() - start:.0f} s, {path.stat().st_size / 1e6:.2f} MB -> {path}")
        loaded = IAEComponent.load(path)
        for dtype in ("float64", "float32"):
            wall, cpu = decoder_seconds(loaded.with_compute_dtype(dtype))
            print(f"  {dtype} decoder value+grad over 8836 pixels: {1e3 * wall:.1f} ms wall, {1e3 * cpu:.1f} ms CPU")
        print("  held-out:", json.dumps(component.training["test"]))


if __name__ == "__main__":
    main()
