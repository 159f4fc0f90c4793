"""What `fit-cube` gives without cross-validation: fixed prior settings against the ground truth.

`fit-cube` without ``auto`` runs at fixed prior settings; cross-validating them (the demo's path) costs
30 minutes on a 94x94 cube on 2 cores. This script fits the toy remnant cube or the sGMCA scene (``--scene
sgmca``; needs ``../shared/data/xray_sgmca``) through the user's path, :func:`~bayes_unmix.cube_workflow.fit_cube`
with ``method="vi"`` (cube MAP, then the per-pixel-guide VI), once per setting, and prints the RMSE of the
posterior means and the coverage of the 90 % intervals of every map against the truth (amplitude coverage:
where the component is present). Settings (``--settings``, any of):

* ``scale0.02``: the spatial scale 0.02 of every latent, no amplitude prior (the defaults before 2026-12);
* ``scale0.03+ratio1``: scale 0.03 (the best single scale of the toy's cross-validation) and the log-ratio
  prior at 1.0 (cross-validation's choice on both scenes);
* ``scale0.1+ratio1``: scale 0.1 (cross-validation's choice for kT and the photon index) and the same ratio prior;
* ``cv``: the cross-validated latent scales of both scenes (kT 0.1, z 0.03, photon index 0.1) and ratio prior,
  the settings the demo's 30-minute selection reaches, for reference;
* ``cv+gamma0.03``: the same with the photon index smoothed at 0.03, a scale the held-out counts reject (by
  78.6 nats on the 94x94 toy, twice its standard error) although the photon index's truth is smoother still;
* ``learned``: every latent scale learned with the maps (``learn_scales=True``, started at 0.1) and the ratio
  prior: one fit in place of the cross-validation.

Run ``.venv/bin/python benchmarks/cube_defaults.py --scene toy`` (about 4 minutes per setting at 94x94 on 2 cores);
writes ``benchmarks/results/cube_defaults_<scene>.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from hyperspectral import CV_SCALES, learned_scales, scene_cube
from hyperspectral import SUMMARY_MAPS as MAPS

import bayes_unmix  # noqa: F401  (float64)
from bayes_unmix.cube_workflow import cube_summary, fit_cube, load_components

RESULTS = Path(__file__).parent / "results"
MODELS = {"thermal": "xray_thermal", "synchrotron": "xray_synchrotron"}
RATIO = {"amplitude_scale": 1.0, "amplitude_prior": "ratio"}
SETTINGS = {
    "scale0.02": {"spatial_scale": 0.02},
    "scale0.03+ratio1": {"spatial_scale": 0.03, **RATIO},
    "scale0.1+ratio1": {"spatial_scale": 0.1, **RATIO},
    "cv": {"spatial_scale": CV_SCALES, **RATIO},
    "cv+gamma0.03": {"spatial_scale": {**CV_SCALES, "synchrotron": [0.03]}, **RATIO},
    "learned": {"spatial_scale": 0.1, "learn_scales": True, **RATIO},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scene", choices=("toy", "sgmca"), default="toy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=94)
    parser.add_argument("--settings", nargs="+", choices=tuple(SETTINGS), default=list(SETTINGS))
    parser.add_argument("--vi-steps", type=int, default=1500)
    parser.add_argument("--out", type=Path, default=None, help="default: results/cube_defaults_<scene>.json")
    args = parser.parse_args()

    cube = scene_cube(args.scene, args.seed, args.size)
    components = dict(zip(MODELS, load_components(MODELS), strict=True))
    rows = []
    for label in args.settings:
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as out_dir:
            tree, _ = fit_cube(
                cube, components, out_dir, method="vi", vi_steps=args.vi_steps, seed=args.seed, progress=False,
                **SETTINGS[label],
            )  # fmt: skip
        summary = cube_summary(tree, cube.truth)
        rows.append({"setting": label, "seconds": time.perf_counter() - start, "maps": summary, **learned_scales(tree)})
        if "learned_scales" in rows[-1]:
            print("learned scales", rows[-1]["learned_scales"], rows[-1]["learned_scale_intervals"])
        print(_row(rows[-1]), flush=True)

    print("\nRMSE of the posterior mean (coverage of 90 % intervals):", " | ".join(MAPS))
    for row in rows:
        print(_row(row))
    out = args.out or RESULTS / f"cube_defaults_{args.scene}.json"
    out.write_text(json.dumps({"settings": {**vars(args), "out": str(out)}, "results": rows}, indent=1, default=str))
    print(f"wrote {out}")


def _row(row: dict) -> str:
    cells = [f"{row['maps'][m]['rmse']:.4g} ({row['maps'][m]['coverage']:.2f})" for m in MAPS]
    return f"| {row['setting']} | " + " | ".join(cells) + f" | {row['seconds'] / 60:.1f} min |"


if __name__ == "__main__":
    main()
