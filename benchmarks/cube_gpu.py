"""The toy X-ray cube on an accelerator: iteration speed, and NUTS on the joint model of the whole cube.

One run sized for a lent GPU's short lease, on whatever device JAX finds (the JSON names it):

1. timing: SUSHI (published, on the IAE weights, and on physical coordinates; up to ``--sushi-iter``
   iterations or its stopping rule; cost after 600/1000/3000 iterations, map RMSE), the cube MAP from a cold start for ``--map-iter`` (time to SUSHI's final
   cost, seconds per 1000 iterations), the per-pixel-guide VI (90 % coverage, photon index by synchrotron
   share), and a NUTS probe (two short runs whose difference gives the seconds per leapfrog step without
   compilation);
2. NUTS on the joint model of the whole cube (``--chains`` vectorised chains from the cube MAP), with as many
   draws (up to ``--warmup`` + ``--samples``) as the probe says fit before ``--deadline-s``: 90 % coverage
   against the truth, R-hat/ESS, steps per draw, and the photon index by synchrotron share (as
   ``photon_index_bias.py``).

The spatial scales default to those the 94x94 benchmark chose by cross-validation (kT 0.1, z 0.03, photon
index 0.1). Run ``python benchmarks/cube_gpu.py --out r.json``; the JSON is rewritten after each stage.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np
from hyperspectral import REFERENCE_S_PER_ITER, bounds_from_maps, coverage, physical_maps, scores
from photon_index_bias import by_share

import bayes_unmix  # noqa: F401  (float64)
from bayes_unmix.data.cube import toy_remnant_cube
from bayes_unmix.inference.checks import convergence_report
from bayes_unmix.inference.cube import CubeMAPConfig, cube_map_point, cube_nuts, point_from_maps
from bayes_unmix.inference.cube_convert import summary_maps
from bayes_unmix.inference.cube_vi import cube_vi
from bayes_unmix.inference.sushi import SushiConfig, sushi
from bayes_unmix.models.cube import CubeModel
from bayes_unmix.pretrained import load_component

CV_SCALES = '{"thermal": [0.1, 0.03], "synchrotron": 0.1}'


def save(args, report: dict) -> None:
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=float))


def gamma_bounds(tree) -> tuple[np.ndarray, ...]:
    gamma = summary_maps(tree)["synchrotron_photon_index"]
    return tuple(gamma.sel(stat=s).values for s in ("mean", "q05", "q95"))


def timing_part(args, cube, model: CubeModel, report: dict) -> dict:
    """SUSHI, cube MAP, VI and the NUTS probe; returns the cube MAP point."""
    total = cube.counts.sum(0)
    low = total <= np.median(total[cube.truth.mask])
    for label, coords in (("sushi", "weights"), ("sushi_physical", "physical")):
        comps = tuple(load_component(f"xray_{n}", coordinates=coords) for n in ("thermal", "synchrotron"))
        res = sushi(cube.counts, comps, config=SushiConfig(max_iter=args.sushi_iter), progress=False)
        sushi_model = CubeModel(comps, args.size, args.size)
        point = point_from_maps(sushi_model, res.amplitudes, res.theta)
        report[label] = {
            "s": res.wall_time_s,
            "iterations": res.n_iterations,
            "converged": res.converged,
            "s_per_1000_iter": 1000 * res.wall_time_s / res.n_iterations,
            "final_cost": float(res.cost_history[-1]),
            "cost_at": {k: float(res.cost_history[k - 1]) for k in (600, 1000, 3000) if k <= res.n_iterations},
            "rmse": scores(physical_maps(sushi_model, point), cube, low),
        }
        print("done:", label, report[label], flush=True)
    trace = cube_map_point(model, cube.counts, config=CubeMAPConfig(max_iter=args.map_iter), progress=False)
    reached = np.flatnonzero(trace.cost <= report["sushi"]["final_cost"])
    report["cube_map"] = {
        "s": trace.wall_time_s,
        "iterations": trace.iterations,
        "final_cost": float(trace.cost[-1]),
        "s_per_1000_iter": 1000 * float(trace.seconds[-1]) / max(trace.iterations, 1),
        "s_to_sushi_cost": float(trace.seconds[reached[0]]) if reached.size else None,
        "rmse": scores(physical_maps(model, trace.point), cube, low),
    }
    print("done: cube MAP", report["cube_map"], flush=True)
    save(args, report)
    t0 = time.perf_counter()
    tree = cube_vi(
        model, cube.counts, key=jax.random.key(args.seed), steps=args.vi_steps, init=trace.point, progress=False
    )
    map_gamma = physical_maps(model, trace.point)["photon_index"]
    report["vi_pixel"] = {
        "s": time.perf_counter() - t0,
        "coverage_90": coverage(*bounds_from_maps(tree), cube),
        "photon_index_by_share": by_share(cube, map_gamma, *gamma_bounds(tree)),
    }
    print("done: VI", report["vi_pixel"], flush=True)
    probes = []
    for n in (5, 25):  # the difference of two runs: seconds per leapfrog step without compilation
        t0 = time.perf_counter()
        tree = cube_nuts(
            model, cube.counts, key=jax.random.key(1), num_warmup=n, num_samples=n, num_chains=args.chains,
            max_tree_depth=args.max_tree_depth, init=trace.point, progress=False, check=False,
        )  # fmt: skip
        steps = tree["sample_stats"]["n_steps"].values  # sampling phase only
        probes.append({"draws": n, "s": time.perf_counter() - t0, "mean_steps": float(steps.mean())})
    d_steps = 2 * 25 * probes[1]["mean_steps"] - 2 * 5 * probes[0]["mean_steps"]  # warmup ~ sampling steps
    report["nuts_probe"] = {"runs": probes, "s_per_step": (probes[1]["s"] - probes[0]["s"]) / max(d_steps, 1.0)}
    print("done: NUTS probe", report["nuts_probe"], flush=True)
    save(args, report)
    return trace.point


def nuts_part(args, cube, model: CubeModel, start: dict, report: dict, seconds_left: float) -> None:
    """Whole-cube NUTS with as many draws as fit in ``seconds_left`` at the probe's cost per draw."""
    probe = report["nuts_probe"]
    per_draw = probe["s_per_step"] * max(r["mean_steps"] for r in probe["runs"])
    n = max(0, int((seconds_left - probe["runs"][0]["s"]) / per_draw))  # the short probe run ~ compilation
    warmup = min(args.warmup, n // 2)
    samples = min(args.samples, n - warmup)
    report["nuts_plan"] = {"seconds_left": seconds_left, "s_per_draw": per_draw, "warmup": warmup, "samples": samples}
    print("NUTS plan", report["nuts_plan"], flush=True)
    if samples < 20:
        return
    t0 = time.perf_counter()
    tree = cube_nuts(
        model, cube.counts, key=jax.random.key(args.seed + 1), num_warmup=warmup, num_samples=samples,
        num_chains=args.chains, max_tree_depth=args.max_tree_depth, init=start, progress=False, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    health = convergence_report(tree, ess_min=100.0, warn=False)
    steps = tree["sample_stats"]["n_steps"].values
    map_gamma = physical_maps(model, start)["photon_index"]
    report["nuts"] = {
        "s": wall,
        "mean_steps": float(steps.mean()),
        "max_steps": int(steps.max()),
        "divergences": health.get("divergences"),
        "health": {k: v for k, v in health.items() if isinstance(v, dict)},
        "coverage_90": coverage(*bounds_from_maps(tree), cube),
        "photon_index_by_share": by_share(cube, map_gamma, *gamma_bounds(tree)),
    }
    print("done: NUTS", report["nuts"], flush=True)


def main() -> None:
    t0 = time.perf_counter()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=94)
    parser.add_argument("--prior-scale", default=CV_SCALES, help="JSON: a number or scales per latent")
    parser.add_argument("--sushi-iter", type=int, default=10_000, help="most SUSHI iterations (or its stopping rule)")
    parser.add_argument("--map-iter", type=int, default=500)
    parser.add_argument("--vi-steps", type=int, default=1000)
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--max-tree-depth", type=int, default=8)
    parser.add_argument("--deadline-s", type=float, default=540.0, help="wall-time budget of the whole run")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    cube = toy_remnant_cube(args.seed, size=args.size, radius=41.0 * args.size / 94)
    comps = tuple(load_component(f"xray_{n}") for n in ("thermal", "synchrotron"))
    model = CubeModel(comps, args.size, args.size, spatial_scale=json.loads(args.prior_scale))
    report = {
        "settings": vars(args) | {"out": str(args.out)},
        "devices": [str(d) for d in jax.devices()],
        "jax": jax.__version__,
        "reference_sushi_s_per_iter_2cpu": REFERENCE_S_PER_ITER,
    }
    start = timing_part(args, cube, model, report)
    nuts_part(args, cube, model, start, report, args.deadline_s - (time.perf_counter() - t0))
    save(args, report)


if __name__ == "__main__":
    main()
