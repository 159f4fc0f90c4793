"""Toy X-ray cube: pixel-by-pixel fit vs SUSHI vs the Bayesian cube model (MAP, VI posterior mean).

For the toy supernova-remnant cube (:func:`bayes_unmix.data.cube.toy_remnant_cube`, thermal +
synchrotron, shipped IAE components) it reports

* RMSE against the truth of the kT, z, photon-index and amplitude maps, over the pixels where the
  component is present, and in the low-count half of those pixels, for the pixel-by-pixel MAP, SUSHI
  (the published algorithm on the IAE's barycentric weights, and the same algorithm on the physical
  coordinates of :class:`~bayes_unmix.iae.component_model.PhysicalIAEComponent`), the cube MAP and the
  VI posterior means (the Bayesian model in physical coordinates);
* the spatial prior's scales: fixed (``--prior-scale 0.02``, or per latent ``'{"thermal": [0.1, 0.03],
  "synchrotron": 0.03}'``) or chosen on the data by Poisson cross-validation (``--prior-scale auto``: one shared
  scale, then one sweep over the latent maps, :func:`~bayes_unmix.inference.cube.select_spatial_scale`), and
  the spatial prior on the log amplitude maps or, with ``--amplitude-prior ratio``, on the log synchrotron /
  thermal map (``--amplitude-scale``: a number, ``off``, or ``auto``);
* coverage of per-pixel 90 % intervals (over the pixels where the component is present; for the amplitudes also
  by bin of the true amplitude, absent pixels included): cube VI
  (mean-field, and a full covariance per pixel) on the whole cube, and on a ``--nuts-crop`` crop of the
  remnant's shell and rim: the same VI intervals, NUTS on the joint cube model of the crop (the exact
  posterior with the spatial prior) and per-pixel BlackJAX NUTS (no spatial prior);
* wall time to converge, SUSHI's cost reached, time to reach SUSHI's final cost and time per
  1000 MAP iterations (reference: the published SUSHI code, ~1.14 s per iteration on 2 CPU cores).

``--scene sgmca`` fits the cube whose amplitude maps are the sGMCA remnant's instead
(:func:`~bayes_unmix.data.cube.sgmca_cube`; needs ``../shared/data/xray_sgmca``). ``--presence-prior Q`` fits
with an atom at zero amplitude (:attr:`~bayes_unmix.models.cube.CubeModel.presence_prior`); ``auto`` chooses
it by the same cross-validation.

Run ``.venv/bin/python benchmarks/hyperspectral.py`` (``--size 48`` for a quicker, smaller cube);
prints a table and writes ``benchmarks/results/hyperspectral.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import time
from pathlib import Path

import jax
import numpy as np

import bayes_unmix  # noqa: F401  (float64)
from bayes_unmix.cube_workflow import AMPLITUDE_CANDIDATES, PRESENCE_CANDIDATES
from bayes_unmix.data.cube import sgmca_cube, toy_remnant_cube
from bayes_unmix.inference.cube import (
    CubeMAPConfig,
    cube_map_point,
    cube_nuts,
    point_from_maps,
    select_spatial_scale,
)
from bayes_unmix.inference.cube_convert import map_point, summary_maps, to_cube_datatree
from bayes_unmix.inference.cube_pixel import PixelConfig, pixel_fit, pixel_map_point
from bayes_unmix.inference.cube_vi import cube_vi
from bayes_unmix.inference.sushi import SushiConfig, sushi
from bayes_unmix.models.cube import CubeModel
from bayes_unmix.pretrained import load_component

RESULTS = Path(__file__).parent / "results" / "hyperspectral.json"
SGMCA_MAPS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "xray_sgmca" / "source_maps.npz"
REFERENCE_S_PER_ITER = 1.14
PARAMS = (("thermal", 0, "kT_keV"), ("thermal", 1, "z"), ("synchrotron", 0, "photon_index"))
# the latent scales ``--prior-scale auto`` chose on both 94x94 scenes (kT, z; photon index)
CV_SCALES = {"thermal": [0.1, 0.03], "synchrotron": [0.1]}
# the maps of cube_summary that the cube benchmarks tabulate
SUMMARY_MAPS = (
    "thermal_kT_keV",
    "thermal_z",
    "synchrotron_photon_index",
    "amplitude[thermal]",
    "amplitude[synchrotron]",
)


def scene_cube(scene: str, seed: int, size: int = 94):
    """The toy remnant cube (radius scaled with ``size``) or, for ``"sgmca"``, the sGMCA scene; exits with a
    message when the sGMCA maps are missing."""
    if scene == "sgmca":
        if not SGMCA_MAPS.is_file():
            raise SystemExit(f"--scene sgmca needs {SGMCA_MAPS} (../shared/data/xray_sgmca)")
        return sgmca_cube(SGMCA_MAPS, seed, size=size)
    return toy_remnant_cube(seed, size=size, radius=41.0 * size / 94)


def learned_scales(tree) -> dict:
    """A fit's learned latent scales and their intervals (``fit_cube(learn_scales=True)``), or ``{}``."""
    if "learned_spatial_scale" not in tree.attrs:
        return {}
    return {
        "learned_scales": json.loads(tree.attrs["learned_spatial_scale"]),
        "learned_scale_intervals": json.loads(tree.attrs["learned_spatial_scale_interval"]),
    }


def workflow_scale_selection(model: CubeModel, counts, seed: int, **candidates):
    """``select_spatial_scale`` at the model's latent scales (``scales=()``) as ``fit-cube``'s ``auto`` runs it:
    from the per-pixel MAP, with the workflow's key (``cube_workflow._select_scale``)."""
    init = pixel_map_point(model, counts, progress=False)
    key = jax.random.fold_in(jax.random.key(seed), 1)
    return select_spatial_scale(model, counts, key=key, scales=(), init=init, **candidates)


def physical_maps(model: CubeModel, point: dict, counts=None) -> dict[str, np.ndarray]:
    """``{"kT_keV": (H, W), ..., "amplitude_thermal": (H, W), ...}`` from sites ``(P, ...)``. For a point
    estimate of a model with a presence prior pass ``counts``: the amplitudes are then those of each pixel's
    most probable configuration (0 where a component is absent), as the DataTree of a point estimate has them."""
    if model.presence_prior is not None and counts is not None:
        draws = {k: np.asarray(v)[None, None] for k, v in point.items()}
        point = map_point(to_cube_datatree(model, counts, draws, method="map"))
    out = {}
    for i, c in enumerate(model.components):
        p = np.asarray(c.parameters(point[f"theta_{c.name}"]))
        for k, name in enumerate(c.parameter_names):
            out[name] = p[:, k].reshape(model.height, model.width)
        out[f"amplitude_{c.name}"] = np.asarray(point["amplitude"])[:, i].reshape(model.height, model.width)
    return out


def scores(estimate: dict[str, np.ndarray], cube, low: np.ndarray) -> dict[str, float]:
    """RMSE of each map over the pixels where its component is present (``_low``: low-count half)."""
    truth, out = cube.truth, {}
    for comp, k, name in PARAMS:
        present = truth.amplitudes[truth.component_names.index(comp)] > 0
        t = truth.parameters[comp][k]
        for suffix, keep in (("", present), ("_low", present & low)):
            out[f"{name}{suffix}"] = float(np.sqrt(np.mean((estimate[name][keep] - t[keep]) ** 2)))
    for i, comp in enumerate(truth.component_names):
        out[f"amplitude_{comp}"] = float(np.sqrt(np.mean((estimate[f"amplitude_{comp}"] - truth.amplitudes[i]) ** 2)))
    return out


def coverage(lo: dict, hi: dict, cube, crop=(slice(None), slice(None))) -> dict[str, float]:
    truth, out = cube.truth, {}
    for comp, k, name in PARAMS:
        present = (truth.amplitudes[truth.component_names.index(comp)] > 0)[crop]
        t = truth.parameters[comp][k][crop]
        out[name] = float(np.mean((lo[name][present] <= t[present]) & (t[present] <= hi[name][present])))
    for i, comp in enumerate(truth.component_names):
        t = truth.amplitudes[i][crop]
        key = f"amplitude_{comp}"
        # over the pixels where the component is present: a positive-amplitude posterior never puts a
        # zero truth inside [q05, q95], so absent pixels (40 % of the toy cube) would count as misses
        present = t > 0
        inside = (lo[key] <= t) & (t <= hi[key])
        out[key] = float(np.mean(inside[present]))
    return out


AMPLITUDE_BINS = (0.0, 0.1, 1.0, 5.0, 20.0, np.inf)  # true expected counts per pixel


def coverage_by_amplitude(tree, cube) -> dict[str, dict[str, dict[str, float]]]:
    """Per component and bin of the true amplitude (``"0"``: absent): pixels, coverage of the 90 % interval
    and the bin's mean posterior mean over its mean truth (for absent pixels: the mean posterior mean)."""
    ds = summary_maps(tree)["amplitude"]
    out = {}
    for i, comp in enumerate(cube.truth.component_names):
        t = cube.truth.amplitudes[i]
        lo, hi, mean = (ds.sel(component=comp, stat=s).values for s in ("q05", "q95", "mean"))
        bins = {"0": t == 0}
        bins |= {f"{a:g}-{b:g}": (t > a) & (t <= b) for a, b in itertools.pairwise(AMPLITUDE_BINS)}
        out[comp] = {
            label: {
                "pixels": int(m.sum()),
                "coverage": float(np.mean((lo[m] <= t[m]) & (t[m] <= hi[m]))),
                "mean_over_truth": float(mean[m].mean() / t[m].mean()) if label != "0" else float(mean[m].mean()),
            }
            for label, m in bins.items()
            if m.any()
        }
    return out


def bounds_from_maps(tree) -> tuple[dict, dict]:
    ds = summary_maps(tree)
    lo, hi = {}, {}
    for comp, _, name in PARAMS:
        lo[name], hi[name] = (ds[f"{comp}_{name}"].sel(stat=s).values for s in ("q05", "q95"))
    for comp in ds.component.values:
        lo[f"amplitude_{comp}"], hi[f"amplitude_{comp}"] = (
            ds["amplitude"].sel(component=comp, stat=s).values for s in ("q05", "q95")
        )
    return lo, hi


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=94)
    parser.add_argument(
        "--scene",
        choices=("toy", "sgmca"),
        default="toy",
        help="toy remnant, or the sGMCA remnant's amplitude maps (needs ../shared/data/xray_sgmca)",
    )
    parser.add_argument("--sushi-iter", type=int, default=1000)
    parser.add_argument("--map-iter", type=int, default=1500)
    parser.add_argument("--vi-steps", type=int, default=1500)
    parser.add_argument(
        "--nuts-crop", type=int, default=24, help="side of the remnant crop for cube and per-pixel NUTS"
    )
    parser.add_argument("--nuts-warmup", type=int, default=200)
    parser.add_argument("--nuts-samples", type=int, default=200)
    parser.add_argument(
        "--prior-scale",
        default="auto",
        help="spatial prior scale (a number, or JSON per latent), or 'auto': cross-validated from --scale-candidates",
    )
    parser.add_argument("--scale-candidates", type=float, nargs="+", default=[0.01, 0.03, 0.1, 0.3])
    parser.add_argument(
        "--amplitude-scale",
        default="auto",
        help="spatial prior on the log amplitude maps: a number, 'off', or 'auto' (off or one of "
        "cube_workflow.AMPLITUDE_CANDIDATES, cross-validated after the latent scales or at those given)",
    )
    parser.add_argument(
        "--amplitude-prior", choices=("log", "ratio"), default="log", help="log amplitude maps or the log ratio map"
    )
    parser.add_argument(
        "--amplitude-log-sd",
        type=float,
        default=None,
        help="log-normal pixel amplitudes of this sd (default: exponential)",
    )
    parser.add_argument(
        "--presence-prior",
        default="off",
        help="prior probability that a component is present in a pixel, 'off' (default: always present) or "
        "'auto' (off or one of PRESENCE_CANDIDATES by the same cross-validation, after any scales)",
    )
    parser.add_argument(
        "--scale-iter", type=int, default=1000, help="most MAP iterations per fold and candidate (stops when converged)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    cube = scene_cube(args.scene, args.seed, args.size)
    comps = tuple(load_component(f"xray_{n}") for n in ("thermal", "synchrotron"))  # physical coordinates
    weight_comps = tuple(load_component(f"xray_{n}", coordinates="weights") for n in ("thermal", "synchrotron"))
    auto = args.prior_scale == "auto"
    fixed = json.loads(args.prior_scale) if not auto else 0.02  # a number or {"thermal": [s_kT, s_z], ...}
    amplitude_auto = args.amplitude_scale == "auto"
    amplitude = None if amplitude_auto or args.amplitude_scale == "off" else float(args.amplitude_scale)
    presence_auto = args.presence_prior == "auto"
    presence = None if presence_auto or args.presence_prior == "off" else float(args.presence_prior)
    model = CubeModel(
        comps,
        args.size,
        args.size,
        spatial_scale=fixed,
        amplitude_scale=amplitude,
        amplitude_prior=args.amplitude_prior,
        amplitude_log_sd=args.amplitude_log_sd,
        presence_prior=presence,
    )
    total = cube.counts.sum(0)
    inside = cube.truth.mask
    low = total <= np.median(total[inside])
    rows, timing = {}, {}

    t0 = time.perf_counter()
    pixel = pixel_map_point(model, cube.counts, progress=False)
    timing["pixel_map_s"] = time.perf_counter() - t0
    rows["pixel MAP"] = scores(physical_maps(model, pixel, cube.counts), cube, low)
    print("done: pixel MAP", rows[list(rows)[-1]], flush=True)
    chosen_on_data = auto or amplitude_auto or presence_auto
    if chosen_on_data:  # chosen on the data alone (held-out halves of the counts), from the pixel MAP
        t0 = time.perf_counter()
        model, held_out = select_spatial_scale(
            model,
            cube.counts,
            key=jax.random.key(args.seed),
            scales=tuple(args.scale_candidates) if auto else (),
            amplitude_scales=AMPLITUDE_CANDIDATES if amplitude_auto else (),
            amplitude_priors=(args.amplitude_prior,),
            presence_priors=PRESENCE_CANDIDATES if presence_auto else (),
            map_iter=args.scale_iter,
            init=pixel,
            progress=False,
        )
        timing["scale_selection_s"] = time.perf_counter() - t0
        print(
            f"done: spatial scale {model.spatial_scale}, amplitude {model.amplitude_scale}, presence "
            f"{model.presence_prior} (held-out log-likelihood {held_out})",
            flush=True,
        )

    # the published algorithm on the IAE's barycentric weights, then the same on physical coordinates
    config = SushiConfig(max_iter=args.sushi_iter)
    for label, sushi_comps in (("SUSHI", weight_comps), ("SUSHI (physical theta)", comps)):
        res = sushi(cube.counts, sushi_comps, config=config, progress=False)
        sushi_model = CubeModel(sushi_comps, args.size, args.size)
        rows[label] = scores(
            physical_maps(sushi_model, point_from_maps(sushi_model, res.amplitudes, res.theta)), cube, low
        )
        print(f"done: {label}", rows[label], flush=True)
        prefix = "sushi" if sushi_comps is weight_comps else "sushi_physical"
        timing.update(
            {
                f"{prefix}_s": res.wall_time_s,
                f"{prefix}_iterations": res.n_iterations,
                f"{prefix}_converged": res.converged,
                f"{prefix}_final_cost": float(res.cost_history[-1]),
                f"{prefix}_s_per_1000_iter": 1000 * res.wall_time_s / res.n_iterations,
            }
        )
    sushi_point = point_from_maps(model, res.amplitudes, res.theta)  # physical: a start for the cube MAP

    cold = cube_map_point(model, cube.counts, config=CubeMAPConfig(max_iter=args.map_iter), progress=False)
    reached = np.flatnonzero(cold.cost <= timing["sushi_final_cost"])
    timing.update(
        map_cold_s=cold.wall_time_s,
        map_cold_iterations=cold.iterations,
        map_cold_converged=cold.converged,
        map_cold_final_cost=float(cold.cost[-1]),
        map_s_to_sushi_cost=float(cold.seconds[reached[0]]) if reached.size else None,
        map_s_per_1000_iter=1000 * float(cold.seconds[-1]) / max(cold.iterations, 1),
    )
    rows["cube MAP (cold start)"] = scores(physical_maps(model, cold.point, cube.counts), cube, low)
    print("done: cube MAP cold", rows[list(rows)[-1]], flush=True)

    warm = cube_map_point(
        model, cube.counts, init=sushi_point, config=CubeMAPConfig(max_iter=args.map_iter), progress=False
    )
    timing.update(map_from_sushi_s=warm.wall_time_s, map_from_sushi_final_cost=float(warm.cost[-1]))
    rows["cube MAP (SUSHI start)"] = scores(physical_maps(model, warm.point, cube.counts), cube, low)
    best = min((cold, warm), key=lambda t: t.loss[-1])
    print("done: cube MAP warm", rows[list(rows)[-1]], flush=True)

    cover, vi_bounds, by_amplitude = {}, {}, {}
    for guide, label in (("meanfield", "cube VI (mean-field)"), ("pixel", "cube VI (pixel guide)")):
        t0 = time.perf_counter()
        tree = cube_vi(
            model,
            cube.counts,
            key=jax.random.key(args.seed),
            guide=guide,
            steps=args.vi_steps,
            init=best.point,
            progress=False,
        )
        timing[f"vi_{guide}_s"] = time.perf_counter() - t0
        rows[f"{label} mean"] = scores(physical_maps(model, map_point(tree)), cube, low)
        print(f"done: {label}", rows[f"{label} mean"], flush=True)
        vi_bounds[label] = bounds_from_maps(tree)
        cover[label] = coverage(*vi_bounds[label], cube)
        by_amplitude[label] = coverage_by_amplitude(tree, cube)

    report = {
        "settings": vars(args) | {"out": str(args.out), "devices": len(jax.devices()), "cpus": os.cpu_count()},
        "spatial_scale": model.spatial_scale,
        "amplitude_scale": model.amplitude_scale,
        "amplitude_prior": model.amplitude_prior,
        "presence_prior": model.presence_prior,
        "scale_held_out_loglik": held_out if chosen_on_data else None,
        "rmse": rows,
        "coverage_90": cover,
        "coverage_90_by_true_amplitude": by_amplitude,
        "timing": timing,
        "reference_sushi_s_per_iter": REFERENCE_S_PER_ITER,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, default=float))  # kept if the NUTS part is cut short
    print_table(report)
    if args.nuts_crop > 0:
        crop = crop_slices(args)
        cut = lambda bounds: {k: v[crop] for k, v in bounds.items()}
        for label, (lo, hi) in vi_bounds.items():  # the same crop, for a like-for-like comparison
            cover[f"{label}, crop"] = coverage(cut(lo), cut(hi), cube, crop)
        crop_nuts(args, cube, model, best.point, crop, timing, cover)
        args.out.write_text(json.dumps(report, indent=2, default=float))
        print_table(report)


def crop_slices(args) -> tuple[slice, slice]:
    """A square crop of the remnant's shell and rim (both components present), ``--nuts-crop`` pixels wide."""
    c0 = args.size // 2 - int(0.3 * args.size)
    return slice(c0, c0 + args.nuts_crop), slice(c0, c0 + args.nuts_crop)


def crop_nuts(args, cube, model: CubeModel, start: dict, crop, timing: dict, cover: dict) -> None:
    """On the crop: NUTS on the joint cube model (the exact posterior with the spatial prior, scales from the
    whole cube; the crop's edges see a mirrored, not the true, neighbourhood) and per-pixel BlackJAX NUTS."""
    n = args.nuts_crop
    counts = cube.counts[:, crop[0], crop[1]]
    sub = dataclasses.replace(model, height=n, width=n)
    init = {k: np.asarray(v).reshape(args.size, args.size, -1)[crop].reshape(n * n, -1) for k, v in start.items()}
    t0 = time.perf_counter()
    tree = cube_nuts(
        sub,
        counts,
        key=jax.random.key(args.seed + 1),
        num_warmup=args.nuts_warmup,
        num_samples=args.nuts_samples,
        num_chains=2,
        init=init,
        progress=False,
    )
    timing["cube_nuts_crop_s"] = time.perf_counter() - t0
    steps = tree["sample_stats"]["n_steps"].values
    timing["cube_nuts_crop_mean_steps"] = float(steps.mean())
    cover["cube NUTS, crop"] = coverage(*bounds_from_maps(tree), cube, crop)
    print("done: cube NUTS on the crop", cover["cube NUTS, crop"], flush=True)

    t0 = time.perf_counter()
    cfg = PixelConfig(num_warmup=args.nuts_warmup, num_samples=args.nuts_samples, num_chains=2, max_tree_depth=6)
    tree = pixel_fit(sub.with_prior("none"), counts, method="nuts", key=jax.random.key(1), config=cfg, progress=False)
    timing["pixel_nuts_crop_s"] = time.perf_counter() - t0
    cover["pixel NUTS, crop"] = coverage(*bounds_from_maps(tree), cube, crop)


def print_table(report: dict) -> None:
    keys = list(next(iter(report["rmse"].values())))
    print(f"RMSE vs truth (toy cube {report['settings']['size']}^2; _low: low-count half of the pixels)")
    print(f"{'method':>24} " + " ".join(f"{k[:14]:>14}" for k in keys))
    for method, row in report["rmse"].items():
        print(f"{method:>24} " + " ".join(f"{row[k]:14.4g}" for k in keys))
    print("\nCoverage of per-pixel 90 % intervals")
    for method, row in report["coverage_90"].items():
        print(f"{method:>24} " + " ".join(f"{k}={v:.3f}" for k, v in row.items()))
    print("\nBy true amplitude (counts): pixels, coverage, mean posterior mean / mean truth (absent: mean)")
    for method, comps in report.get("coverage_90_by_true_amplitude", {}).items():
        for comp, bins in comps.items():
            cells = " ".join(
                f"{b}: {r['pixels']} {r['coverage']:.2f} {r['mean_over_truth']:.3g};" for b, r in bins.items()
            )
            print(f"{method:>24} {comp:>11} {cells}")
    print("\nTiming (s)")
    for k, v in report["timing"].items():
        print(f"{k:>28}: {v}")


if __name__ == "__main__":
    main()
