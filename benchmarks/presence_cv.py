"""Which presence prior the cross-validation picks, on the toy cube and on the sGMCA scene.

On the toy supernova-remnant cube (thermal emission in every remnant pixel) or the sGMCA scene (``--scene
sgmca``: regions without thermal emission; needs ``../shared/data/xray_sgmca``), with the shipped IAE
components at the demo's fixed priors (latent scales ``--latent-scales``, ratio prior at ``--amplitude-scale``,
log-normal pixel totals of sd 10), runs :func:`~bayes_unmix.inference.cube.select_spatial_scale` with
``scales=()`` over the presence priors ``--candidates`` against none, from the per-pixel MAP and with the
workflow's key (as ``fit-cube --presence-prior auto``). Held-out halves weigh each pixel's presence
configurations by their posterior given the fitted half. Prints every candidate's held-out Poisson
log-likelihood against no presence prior.

Run ``.venv/bin/python benchmarks/presence_cv.py --scene toy`` (or ``sgmca``; 15-30 minutes each on 2 cores at
94x94); writes ``benchmarks/results/presence_cv_<scene>.json``. Coverage at a given presence prior:
``benchmarks/hyperspectral.py --presence-prior Q``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from hyperspectral import scene_cube, workflow_scale_selection

import bayes_unmix  # noqa: F401  (float64)
from bayes_unmix.cube_workflow import PRESENCE_CANDIDATES, load_components
from bayes_unmix.models.cube import CubeModel

RESULTS = Path(__file__).parent / "results"
MODELS = {"thermal": "xray_thermal", "synchrotron": "xray_synchrotron"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scene", choices=("toy", "sgmca"), default="toy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=94)
    parser.add_argument(
        "--latent-scales", type=json.loads, default={"thermal": [0.1, 0.03], "synchrotron": [0.1]}, help="JSON"
    )
    parser.add_argument("--amplitude-scale", type=float, default=1.0, help="scale of the ratio prior")
    parser.add_argument("--candidates", type=float, nargs="+", default=list(PRESENCE_CANDIDATES))
    parser.add_argument("--map-iter", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=None, help="default: results/presence_cv_<scene>.json")
    args = parser.parse_args()

    cube = scene_cube(args.scene, args.seed, args.size)
    model = CubeModel(
        load_components(MODELS),
        args.size,
        args.size,
        spatial_scale=args.latent_scales,
        amplitude_scale=args.amplitude_scale,
        amplitude_prior="ratio",
        amplitude_log_sd=10.0,
    )
    start = time.perf_counter()
    chosen, held_out = workflow_scale_selection(
        model, cube.counts, args.seed, presence_priors=tuple(args.candidates), map_iter=args.map_iter
    )
    seconds = time.perf_counter() - start
    out = args.out or RESULTS / f"presence_cv_{args.scene}.json"
    result = {
        "settings": vars(args) | {"out": str(out)},
        "held_out_loglik": held_out,
        "chosen_presence_prior": chosen.presence_prior,
        "seconds": seconds,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"\n{'candidate':>14} {'held-out log-lik':>18} {'vs none':>10}")
    for label, value in held_out.items():
        if label.startswith("presence="):
            print(f"{label:>14} {value:>18.1f} {value - held_out['presence=off']:>+10.1f}")
    print(f"chosen: presence prior {chosen.presence_prior} ({seconds / 60:.1f} min)")


if __name__ == "__main__":
    main()
