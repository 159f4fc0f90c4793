"""Where the photon index's posterior misses on the toy cube: by synchrotron share, per spatial scale.

On the toy supernova-remnant cube (``--size`` pixels, seed ``--seed``) the cube MAP and the per-pixel-guide VI
are run for each photon-index scale in ``--scales`` (thermal scales fixed by ``--thermal-scales``), with the
shipped IAE components and, with ``--simulator``, with the exact simulator components that made the cube (which
separates surrogate error from the posterior's own behaviour). For the pixels where synchrotron is present it
reports, by synchrotron share of the pixel's expected counts, the bias of the MAP and of the posterior mean,
the posterior sd and the coverage of 90 % intervals, the coverage of the amplitude intervals, and the overall
coverage of every map. ``--amplitude-scales``
adds the spatial prior on the log amplitude maps (``CubeModel.amplitude_scale``; ``none``: off; ``--amplitude-prior
ratio``: on the log synchrotron / thermal ratio map instead), ``--n-scales`` the
starlet depths (``CubeModel.n_scales``) to try, ``--texture Z GAMMA`` pixel-scale texture of those sds on the true z
and photon-index maps (how coverage depends on the truth's roughness; default: the toy's smooth gradients).

Run ``.venv/bin/python benchmarks/photon_index_bias.py`` (about 3 minutes on 2 cores; ``--simulator`` adds
about 2 minutes per scale); prints a table and writes ``benchmarks/results/photon_index_bias.json``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import jax
import numpy as np
from hyperspectral import bounds_from_maps, coverage

import bayes_unmix  # noqa: F401  (float64)
from bayes_unmix.cube_workflow import load_components
from bayes_unmix.data.cube import toy_remnant_cube
from bayes_unmix.inference.cube import cube_map_point
from bayes_unmix.inference.cube_vi import cube_vi
from bayes_unmix.models.cube import CubeModel

RESULTS = Path(__file__).parent / "results" / "photon_index_bias.json"
SHARES = ((0.0, 0.1), (0.1, 0.2), (0.2, 0.4), (0.4, 1.0))
MODELS = {
    "iae": {"thermal": "xray_thermal", "synchrotron": "xray_synchrotron"},
    "simulator": {"thermal": "simulator:thermal", "synchrotron": "simulator:synchrotron"},
}


def share_bins(cube) -> dict[str, np.ndarray]:
    """Masks of the pixels with synchrotron, per bin of its share of the pixel's expected counts."""
    amplitudes = cube.truth.amplitudes
    share = amplitudes[1] / np.maximum(amplitudes.sum(0), 1e-300)
    present = amplitudes[1] > 0
    return {f"{low:g}-{high:g}": present & (share >= low) & ((share < high) | (high == 1.0)) for low, high in SHARES}


def by_share(cube, map_gamma, mean, lo, hi) -> list[dict]:
    """Bias of the MAP and of the posterior mean, sd (from the 90 % interval) and coverage per share bin."""
    gamma = cube.truth.parameters["synchrotron"][0]
    rows = []
    for label, m in share_bins(cube).items():
        m = m & np.isfinite(gamma)
        rows.append(
            {
                "share": label,
                "pixels": int(m.sum()),
                "map_bias": float(np.mean(map_gamma[m] - gamma[m])),
                "mean_bias": float(np.mean(mean[m] - gamma[m])),
                "sd": float(np.mean(hi[m] - lo[m]) / 3.29),
                "coverage": float(np.mean((lo[m] <= gamma[m]) & (gamma[m] <= hi[m]))),
            }
        )
    return rows


def amplitude_by_share(cube, lo: dict, hi: dict) -> list[dict]:
    """Coverage of the 90 % amplitude intervals per synchrotron-share bin (pixels with synchrotron)."""
    truth = cube.truth
    rows = []
    for label, m in share_bins(cube).items():
        row = {"share": label, "pixels": int(m.sum())}
        for i, comp in enumerate(truth.component_names):
            here = m & (truth.amplitudes[i] > 0)  # a zero truth is never inside a positive interval
            t, key = truth.amplitudes[i][here], f"amplitude_{comp}"
            row[comp] = float(np.mean((lo[key][here] <= t) & (t <= hi[key][here])))
        rows.append(row)
    return rows


def run(cube, models: dict, scale: dict, amplitude_scale: float | None, n_scales: int, args) -> dict:
    comps = load_components(models)
    model = CubeModel(
        comps,
        args.size,
        args.size,
        n_scales=n_scales,
        spatial_scale=scale,
        amplitude_scale=amplitude_scale,
        amplitude_prior=args.amplitude_prior,
        amplitude_log_sd=args.amplitude_log_sd,
    )
    t0 = time.perf_counter()
    trace = cube_map_point(model, cube.counts, progress=False)
    map_gamma = model.to_maps(comps[1].parameters(trace.point["theta_synchrotron"]))[0]
    tree = cube_vi(
        model, cube.counts, key=jax.random.key(args.seed), steps=args.vi_steps, init=trace.point, progress=False
    )
    maps = tree["maps"].to_dataset()["synchrotron_photon_index"].squeeze()
    mean, lo, hi = (maps.sel(stat=s).values for s in ("mean", "q05", "q95"))
    bounds = bounds_from_maps(tree)
    return {
        "seconds": time.perf_counter() - t0,
        "coverage_90": coverage(*bounds, cube),
        "by_share": by_share(cube, map_gamma, mean, lo, hi),
        "amplitude_coverage_by_share": amplitude_by_share(cube, *bounds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--scales", type=float, nargs="+", default=[0.1, 0.03, 0.01], help="photon-index scales")
    parser.add_argument("--thermal-scales", type=float, nargs=2, default=[0.1, 0.03], help="kT and z scales")
    parser.add_argument(
        "--amplitude-scales", nargs="+", default=["none"], help="log-amplitude spatial scales ('none': off)"
    )
    parser.add_argument(
        "--amplitude-prior", choices=("log", "ratio"), default="log", help="log amplitude maps or log ratio maps"
    )
    parser.add_argument(
        "--amplitude-log-sd",
        type=float,
        default=None,
        help="log-normal pixel amplitudes of this sd (default: exponential)",
    )
    parser.add_argument("--n-scales", type=int, nargs="+", default=[2], help="starlet detail planes")
    parser.add_argument("--vi-steps", type=int, default=1000)
    parser.add_argument(
        "--texture",
        type=float,
        nargs=2,
        default=[0.0, 0.0],
        metavar=("Z", "GAMMA"),
        help="sd of pixel-scale texture added to the true z and photon-index maps (default: smooth)",
    )
    parser.add_argument("--simulator", action="store_true", help="also fit with the exact simulator components")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    cube = toy_remnant_cube(
        args.seed, size=args.size, radius=41.0 * args.size / 94, parameter_texture=tuple(args.texture)
    )
    results = []
    for name in ("iae", "simulator") if args.simulator else ("iae",):
        for s in args.scales:
            for a, j in itertools.product(
                [None if a == "none" else float(a) for a in args.amplitude_scales], args.n_scales
            ):
                scale = {"thermal": list(args.thermal_scales), "synchrotron": [s]}
                row = {"components": name, "photon_index_scale": s, "amplitude_scale": a, "n_scales": j}
                results.append(row | run(cube, MODELS[name], scale, a, j, args))
                print(f"done: {name} scale {s} amplitude scale {a} J={j} ({results[-1]['seconds']:.0f} s)", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"settings": vars(args) | {"out": str(args.out)}, "results": results}, indent=2))
    print(
        f"\n{'components':>10} {'scale':>6} {'amp.':>5} {'J':>2} {'share':>8} {'pixels':>6} {'MAP bias':>9} {'mean bias':>9} "
        f"{'sd':>6} {'cover':>6}"
    )
    for r in results:
        for b in r["by_share"]:
            print(
                f"{r['components']:>10} {r['photon_index_scale']:>6g} {r['amplitude_scale'] or '-':>5} {r['n_scales']:>2} {b['share']:>8} "
                f"{b['pixels']:>6} {b['map_bias']:>+9.3f} {b['mean_bias']:>+9.3f} {b['sd']:>6.3f} {b['coverage']:>6.2f}"
            )
        print(f"{'':>10} 90 % coverage of every map:", {k: round(v, 3) for k, v in r["coverage_90"].items()})
        amplitudes = {
            b["share"]: (round(b["thermal"], 2), round(b["synchrotron"], 2)) for b in r["amplitude_coverage_by_share"]
        }
        print(f"{'':>10} amplitude coverage (thermal, synchrotron) by synchrotron share:", amplitudes)


if __name__ == "__main__":
    main()
