"""How decisively do held-out counts reject smoother photon-index and z maps? Differences with standard errors.

Cross-validation (``select_spatial_scale``) picks the photon-index scale 0.1 on the toy remnant cube, whose
photon-index truth is a smooth gradient; its intervals then over-cover (0.997). This script refits the demo's
model (shipped IAE components, or with ``--components simulator`` the exact simulator, so that surrogate error can
be ruled out; ratio prior 1.0, log-normal pixel totals) on the same two binomial halves as the cross-validation
(the workflow's key), at the chosen scales (kT 0.1, z 0.03, photon index 0.1) and with one latent smoothed more,
and prints each change's held-out Poisson log-likelihood against the chosen scales with the standard error of
that difference: from the per-pixel differences summed over square blocks of 1, 2, 4 and 8 pixels (neighbours
share the prior, so single pixels understate it).

Run ``.venv/bin/python benchmarks/scale_cv_error.py --size 94`` (10 minutes on 2 cores with the IAE; the
simulator's thermal gradient is seven times slower: use ``--size 48``); writes
``benchmarks/results/scale_cv_error_<components>_<size>.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import jax
import numpy as np
from hyperspectral import CV_SCALES, scene_cube

import bayes_unmix  # noqa: F401  (float64)
from bayes_unmix.cube_workflow import load_components
from bayes_unmix.inference.cube import CubeMAPConfig, cube_map_point, held_out_log_likelihood
from bayes_unmix.inference.cube_pixel import pixel_map_point
from bayes_unmix.models.cube import CubeModel

RESULTS = Path(__file__).parent / "results"
COMPONENTS = {
    "iae": {"thermal": "xray_thermal", "synchrotron": "xray_synchrotron"},
    "simulator": {"thermal": "simulator:thermal", "synchrotron": "simulator:synchrotron"},
}
CHANGES = {
    "photon index 0.03": {**CV_SCALES, "synchrotron": [0.03]},
    "z 0.01": {**CV_SCALES, "thermal": [0.1, 0.01]},
    "kT 0.03": {**CV_SCALES, "thermal": [0.03, 0.03]},
}
BLOCKS = (1, 2, 4, 8)


def held_out_per_pixel(model: CubeModel, folds, starts, config: CubeMAPConfig) -> np.ndarray:
    """Held-out Poisson log-likelihood per pixel ``(P,)``, summed over both folds (as the cross-validation)."""
    total = np.zeros(model.n_pixels)
    for (x_fit, x_test), start in zip(folds, starts, strict=True):
        point = cube_map_point(model, x_fit, init=start, config=config, progress=False).point
        log_lik = held_out_log_likelihood(model, point, x_fit, x_test)
        total += np.asarray(log_lik).reshape(model.n_pixels, -1).sum(-1)
    return total


def block_standard_error(diff: np.ndarray, side: int) -> float:
    """Standard error of ``diff.sum()`` (``diff``: ``(H, W)``) from its sums over ``side`` x ``side`` blocks."""
    ny, nx = diff.shape[0] // side, diff.shape[1] // side
    blocks = diff[: ny * side, : nx * side].reshape(ny, side, nx, side).sum((1, 3)).ravel()
    return float(blocks.std(ddof=1) * np.sqrt(blocks.size))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scene", choices=("toy", "sgmca"), default="toy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=94)
    parser.add_argument("--components", choices=tuple(COMPONENTS), default="iae")
    parser.add_argument("--changes", nargs="+", choices=tuple(CHANGES), default=list(CHANGES))
    parser.add_argument("--map-iter", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    cube = scene_cube(args.scene, args.seed, args.size)
    model = CubeModel(
        load_components(COMPONENTS[args.components]),
        args.size,
        args.size,
        spatial_scale=CV_SCALES,
        amplitude_scale=1.0,
        amplitude_prior="ratio",
        amplitude_log_sd=10.0,
    )
    x = model.check_counts(cube.counts)
    half = np.asarray(jax.random.binomial(jax.random.fold_in(jax.random.key(args.seed), 1), x, 0.5))
    folds = ((half, x - half), (x - half, half))
    config = CubeMAPConfig(max_iter=args.map_iter, tol=1e-7)
    init = pixel_map_point(model, cube.counts, progress=False)
    init = {**init, "amplitude": 0.5 * np.asarray(init["amplitude"])}
    starts = [cube_map_point(model, x_fit, init=init, config=config, progress=False).point for x_fit, _ in folds]

    t0 = time.perf_counter()
    reference = held_out_per_pixel(model, folds, starts, config)
    rows = {"chosen (kT 0.1, z 0.03, photon index 0.1)": {"held_out": float(reference.sum())}}
    for label in args.changes:
        per_pixel = held_out_per_pixel(dataclasses.replace(model, spatial_scale=CHANGES[label]), folds, starts, config)
        diff = (per_pixel - reference).reshape(args.size, args.size)
        errors = {f"block {b}": block_standard_error(diff, b) for b in BLOCKS}
        rows[label] = {"held_out": float(per_pixel.sum()), "difference": float(diff.sum()), "standard_error": errors}
        print(f"{label:>18}: {diff.sum():+9.1f} nats, SE " + ", ".join(f"{v:.1f}" for v in errors.values()), flush=True)

    print(f"\n| change | held-out difference (nats) | SE, blocks of {', '.join(map(str, BLOCKS))} px |\n|---|---|---|")
    for label, row in list(rows.items())[1:]:
        errors = " / ".join(f"{v:.1f}" for v in row["standard_error"].values())
        print(f"| {label} | {row['difference']:+.1f} | {errors} |")
    out = args.out or RESULTS / f"scale_cv_error_{args.components}_{args.size}.json"
    settings = {**vars(args), "out": str(out), "seconds": time.perf_counter() - t0}
    out.write_text(json.dumps({"settings": settings, "results": rows}, indent=1, default=str))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
