"""Which amplitude prior the cross-validation picks on the toy cube, at fixed latent scales.

On the toy supernova-remnant cube (``--size`` pixels, seed ``--seed``) with the shipped IAE components and
the latent scales ``--latent-scales`` (default: the full cross-validation's choice on the 94x94 cube), runs
:func:`~bayes_unmix.inference.cube.select_spatial_scale` with ``scales=()`` over the amplitude priors
``--kinds`` (``log``: each log amplitude map; ``ratio``: the log synchrotron / thermal map) at each of
``--amplitude-scales``, from the per-pixel MAP and with the workflow's key (as ``fit-cube --amplitude-scale
auto``). Prints the held-out Poisson log-likelihood of every candidate against no amplitude prior.

Run ``.venv/bin/python benchmarks/amplitude_prior_cv.py`` (about 20 minutes on 2 cores at 94x94); writes
``benchmarks/results/amplitude_prior_cv.json``. Coverage of a chosen prior: ``benchmarks/photon_index_bias.py``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from hyperspectral import workflow_scale_selection

import bayes_unmix  # noqa: F401  (float64)
from bayes_unmix.cube_workflow import load_components
from bayes_unmix.data.cube import toy_remnant_cube
from bayes_unmix.models.cube import CubeModel

RESULTS = Path(__file__).parent / "results" / "amplitude_prior_cv.json"
MODELS = {"thermal": "xray_thermal", "synchrotron": "xray_synchrotron"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=94)
    parser.add_argument(
        "--latent-scales", type=json.loads, default={"thermal": [0.1, 0.03], "synchrotron": [0.1]}, help="JSON"
    )
    parser.add_argument("--amplitude-scales", type=float, nargs="+", default=[0.3, 0.5, 1.0, 3.0])
    parser.add_argument("--kinds", nargs="+", choices=("log", "ratio"), default=["log", "ratio"])
    parser.add_argument("--map-iter", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    cube = toy_remnant_cube(args.seed, size=args.size, radius=41.0 * args.size / 94)
    model = CubeModel(load_components(MODELS), args.size, args.size, spatial_scale=args.latent_scales)
    start = time.perf_counter()
    chosen, held_out = workflow_scale_selection(
        model,
        cube.counts,
        args.seed,
        amplitude_scales=tuple(args.amplitude_scales),
        amplitude_priors=tuple(args.kinds),
        map_iter=args.map_iter,
    )
    seconds = time.perf_counter() - start
    result = {
        "settings": vars(args) | {"out": str(args.out)},
        "held_out_loglik": held_out,
        "chosen": {"amplitude_prior": chosen.amplitude_prior, "amplitude_scale": chosen.amplitude_scale},
        "seconds": seconds,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(f"\n{'candidate':>14} {'held-out log-lik':>18} {'vs no prior':>12}")
    for label, value in held_out.items():
        print(f"{label:>14} {value:>18.1f} {value - held_out['given']:>+12.1f}")
    print(f"chosen: {result['chosen']} ({seconds / 60:.1f} min)")


if __name__ == "__main__":
    main()
