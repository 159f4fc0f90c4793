"""Is the faint-synchrotron miss the variational guide's or the model's? NUTS against VI where synchrotron is faint.

On the 94x94 toy cube, where synchrotron carries less than a tenth of a pixel's counts (754 of 5284 pixels), the
whole-cube 90 % intervals of the photon index and of the synchrotron amplitude cover far less than 90 %
(``photon_index_bias.py``). This benchmark takes the ``--crop``-pixel square with the most such pixels (the
remnant's interior), fits the cube model on it (MAP, then the per-pixel-guide VI started there, then NUTS on the
joint model from the same point: the exact posterior that VI approximates; and, for reference, per-pixel
NUTS without any spatial prior) and reports, for each map over the
crop's faint pixels: coverage of the 90 % intervals, their mean width and the bias of their midpoint, the MAP's
bias, and how far VI's posterior means sit from NUTS' (in NUTS posterior sds). If NUTS misses as VI does, no
better guide can close the gap: the posterior itself puts the faint pixels' counts elsewhere than the truth.

Prior: the demo's choice (latent scales kT 0.1, z 0.03, photon index 0.1; ``--amplitude-prior ratio``,
``--amplitude-scale 1``). The crop's edges see a mirrored, not the true, neighbourhood.

``--scene sgmca`` asks the same of the sGMCA scene (needs ``../shared/data/xray_sgmca``), where the thermal
emission is absent (under one count, most often exactly zero) across large regions beside synchrotron (over five
counts): the crop is the square with the most such pixels, and the rows are over them (the thermal amplitude's
only over its tiny non-zero truths; no interval of a positive prior can hold an exact zero).

Run ``.venv/bin/python benchmarks/faint_posterior.py`` (about 8 minutes on 2 cores); prints a table and writes
``benchmarks/results/faint_posterior.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np
from hyperspectral import physical_maps, scene_cube
from photon_index_bias import share_bins

import bayes_unmix  # noqa: F401  (float64)
from bayes_unmix.cube_workflow import load_components
from bayes_unmix.inference.checks import convergence_report
from bayes_unmix.inference.cube import cube_map_point, cube_nuts
from bayes_unmix.inference.cube_convert import summary_maps
from bayes_unmix.inference.cube_pixel import PixelConfig, pixel_fit
from bayes_unmix.inference.cube_vi import cube_vi
from bayes_unmix.models.cube import CubeModel

RESULTS = Path(__file__).parent / "results" / "faint_posterior.json"
SELECTION = {"toy": "faint-synchrotron", "sgmca": "thermal-absent"}
MAPS = (  # (map, component, index into the component's parameters; None: its amplitude)
    ("photon_index", "synchrotron", 0),
    ("amplitude_synchrotron", "synchrotron", None),
    ("amplitude_thermal", "thermal", None),
    ("kT_keV", "thermal", 0),
    ("z", "thermal", 1),
)


def selected_pixels(cube, scene: str) -> np.ndarray:
    """The pixels the rows are over: faint synchrotron (share < 0.1) on the toy, thermal under one count
    beside synchrotron over five on the sGMCA scene."""
    if scene == "toy":
        return share_bins(cube)["0-0.1"]
    thermal, synchrotron = cube.truth.amplitudes
    return (thermal < 1.0) & (synchrotron > 5.0)


def faint_crop(selected: np.ndarray, side: int) -> tuple[slice, slice]:
    """The ``side``-pixel square holding the most ``selected`` pixels."""
    windows = np.lib.stride_tricks.sliding_window_view(selected.astype(float), (side, side)).sum((-2, -1))
    i, j = np.unravel_index(np.argmax(windows), windows.shape)
    i, j = int(i), int(j)
    return slice(i, i + side), slice(j, j + side)


def truth_maps(cube, crop) -> dict[str, np.ndarray]:
    """Truth per map over the crop; NaN (not scored) where a component is absent, amplitude zero included."""
    truth, out = cube.truth, {}
    for name, comp, k in MAPS:
        index = truth.component_names.index(comp)
        values = truth.amplitudes[index] if k is None else truth.parameters[comp][k]
        out[name] = np.where(truth.amplitudes[index] > 0, values, np.nan)[crop]
    return out


def posterior_maps(tree) -> dict[str, dict[str, np.ndarray]]:
    """``{map: {stat: (H, W)}}`` for the mean, sd and 90 % bounds."""
    ds = summary_maps(tree)
    out = {}
    for name, comp, k in MAPS:
        da = ds["amplitude"].sel(component=comp) if k is None else ds[f"{comp}_{name}"]
        out[name] = {s: da.sel(stat=s).values for s in ("mean", "sd", "q05", "q95")}
    return out


def scores(post: dict, point: dict, truth: dict, faint: np.ndarray) -> dict[str, dict[str, float]]:
    """Per map, over the faint pixels: interval coverage, width and midpoint bias, and the MAP's bias."""
    rows = {}
    for name, t in truth.items():
        m = faint & np.isfinite(t)
        lo, hi = post[name]["q05"][m], post[name]["q95"][m]
        rows[name] = {
            "coverage": float(np.mean((lo <= t[m]) & (t[m] <= hi))),
            "width": float(np.mean(hi - lo)),
            "midpoint_bias": float(np.mean(0.5 * (lo + hi) - t[m])),
            "mean_over_truth": float(np.mean(post[name]["mean"][m]) / np.mean(t[m])),
            "map_bias": float(np.mean(point[name][m] - t[m])),
        }
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scene", choices=("toy", "sgmca"), default="toy")
    parser.add_argument("--crop", type=int, default=16, help="side of the square crop")
    parser.add_argument("--amplitude-prior", choices=("log", "ratio"), default="ratio")
    parser.add_argument("--amplitude-scale", type=float, default=1.0)
    parser.add_argument(
        "--amplitude-log-sd",
        type=float,
        default=None,
        help="log-normal pixel amplitudes of this sd (default: exponential)",
    )
    parser.add_argument(
        "--presence-prior",
        type=float,
        default=None,
        help="prior probability that a component is present in a pixel (default: always present)",
    )
    parser.add_argument("--vi-steps", type=int, default=1000)
    parser.add_argument("--nuts-warmup", type=int, default=300)
    parser.add_argument("--nuts-samples", type=int, default=300)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    cube = scene_cube(args.scene, args.seed)
    selected = selected_pixels(cube, args.scene)
    crop = faint_crop(selected, args.crop)
    counts = cube.counts[:, crop[0], crop[1]]
    faint = selected[crop]
    truth = truth_maps(cube, crop)
    model = CubeModel(
        load_components({"thermal": "xray_thermal", "synchrotron": "xray_synchrotron"}),
        args.crop,
        args.crop,
        spatial_scale={"thermal": [0.1, 0.03], "synchrotron": [0.1]},
        amplitude_scale=args.amplitude_scale,
        amplitude_prior=args.amplitude_prior,
        amplitude_log_sd=args.amplitude_log_sd,
        presence_prior=args.presence_prior,
    )
    timing: dict[str, float] = {}

    def timed(label: str, fit):
        t0 = time.perf_counter()
        result = fit()
        timing[label] = time.perf_counter() - t0
        return result

    trace = timed("map_s", lambda: cube_map_point(model, counts, progress=False))
    vi = timed(
        "vi_s",
        lambda: cube_vi(
            model, counts, key=jax.random.key(args.seed), steps=args.vi_steps, init=trace.point, progress=False
        ),
    )
    draws = {"num_warmup": args.nuts_warmup, "num_samples": args.nuts_samples}
    nuts = timed(
        "nuts_s",
        lambda: cube_nuts(
            model, counts, key=jax.random.key(args.seed + 1), init=trace.point, progress=False, check=False, **draws
        ),
    )
    config = PixelConfig(num_chains=2, max_tree_depth=6, **draws)
    pixel = timed(
        "pixel_nuts_s",
        lambda: pixel_fit(
            model.with_prior("none"),
            counts,
            method="nuts",
            key=jax.random.key(args.seed + 2),
            config=config,
            progress=False,
        ),
    )
    convergence = convergence_report(nuts, ess_min=100.0, warn=False)

    point = physical_maps(model, trace.point, counts)
    post = {"vi": posterior_maps(vi), "nuts": posterior_maps(nuts), "pixel nuts": posterior_maps(pixel)}
    report = {
        "settings": vars(args)
        | {"out": str(args.out), "crop": [[crop[0].start, crop[0].stop], [crop[1].start, crop[1].stop]]},
        "faint_pixels": int(faint.sum()),
        "timing": timing,
        "nuts_convergence": {"problems": convergence["problems"], "divergences": convergence.get("divergences")},
        "scores": {label: scores(p, point, truth, faint) for label, p in post.items()},
        "vi_mean_minus_nuts_mean_in_nuts_sd": {
            name: float(
                np.mean(((post["vi"][name]["mean"] - post["nuts"][name]["mean"]) / post["nuts"][name]["sd"])[faint])
            )
            for name in truth
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    print_table(report)


def print_table(report: dict) -> None:
    s = report["settings"]
    log_sd = s.get("amplitude_log_sd")
    amplitudes = "exponential" if log_sd is None else f"log-normal, sd {log_sd:g}"
    print(
        f"{report['faint_pixels']} {SELECTION[s.get('scene', 'toy')]} pixels in the {s['crop']} crop ({s['amplitude_prior']} prior "
        f"at {s['amplitude_scale']}; pixel amplitudes {amplitudes}); NUTS: {report['nuts_convergence']}"
    )
    print(
        f"{'map':>22} {'method':>10} {'cover 90':>9} {'width':>9} {'mid bias':>9} {'mean/true':>9} {'MAP bias':>9} "
        f"{'VI-NUTS (sd)':>13}"
    )
    for name, gap in report["vi_mean_minus_nuts_mean_in_nuts_sd"].items():
        for method, rows in report["scores"].items():
            r = rows[name]
            tail = f"{gap:>+13.2f}" if method == "vi" else ""
            print(
                f"{name:>22} {method:>10} {r['coverage']:>9.2f} {r['width']:>9.4g} {r['midpoint_bias']:>+9.3g} "
                f"{r.get('mean_over_truth', np.nan):>9.3g} {r['map_bias']:>+9.3g} {tail}"
            )
    print("timing (s):", {k: round(v, 1) for k, v in report["timing"].items()})


if __name__ == "__main__":
    main()
