"""Do the cube posterior's 90 % intervals cover 90 % of truths drawn from the prior itself?

On the toy cube the photon index and z over-cover (0.997 and 0.99 at 94x94): their truths are smooth gradients,
smoother than the spatial prior at the scales cross-validation picks. Is that the prior (intervals under a prior
rougher than the truth are conservative) or the inference (the per-pixel-guide VI wider than the posterior)? This
script tells them apart. It draws the latent maps from the model's own prior (NUTS on
:func:`~bayes_unmix.models.cube.make_latent_prior_model`, the last draw of each of ``--replicates`` chains), keeps
the toy's amplitude maps, simulates Poisson counts through the same spectral models (no surrogate error), and fits
each cube through the user's path, :func:`~bayes_unmix.cube_workflow.fit_cube` with ``method="vi"`` (or ``--method
nuts``: NUTS on the joint model, the exact posterior, for small cubes), at the priors that drew it. Where the
inference is right, the intervals cover 90 % of those truths on average over replicates. The toy's own smooth truths
(same amplitudes, same seeds) are fitted alongside for contrast.

Priors: the cross-validated latent scales of both scenes (kT 0.1, z 0.03, photon index 0.1), the log-ratio prior at
1.0 and log-normal pixel totals (the demo's; the amplitude maps are the toy's, not prior draws), on the starlet or
(``--spatial-prior smooth``) the smoothness prior. ``--guide spatial`` fits VI with the guide that correlates
neighbouring pixels; ``--learn-scales`` learns the latent scales with the maps (started at the truths') and records
each replicate's learned scales and intervals.

Run ``.venv/bin/python benchmarks/cube_prior_coverage.py`` (32x32, 6 replicates, about 20 minutes on 2 cores), or
``--size 16 --replicates 4 --truths prior`` with ``--guide spatial``, ``--spatial-prior smooth`` or ``--method
nuts`` (VI 10 s, NUTS 7-14 minutes per cube); writes
``benchmarks/results/cube_prior_coverage_<method>[-<guide>][-smooth]_<size>.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from hyperspectral import CV_SCALES, learned_scales, scene_cube
from hyperspectral import SUMMARY_MAPS as MAPS
from numpyro.distributions.transforms import biject_to
from numpyro.infer import MCMC, NUTS

import bayes_unmix  # noqa: F401  (float64)
from bayes_unmix.cube_workflow import cube_summary, fit_cube, load_components
from bayes_unmix.data.cube import Cube, CubeTruth
from bayes_unmix.models.cube import CubeModel, make_latent_prior_model

RESULTS = Path(__file__).parent / "results"
MODELS = {"thermal": "xray_thermal", "synchrotron": "xray_synchrotron"}
PRIORS = {
    "spatial_scale": CV_SCALES,
    "amplitude_scale": 1.0,
    "amplitude_prior": "ratio",
    "amplitude_log_sd": 10.0,
}


def prior_latents(model: CubeModel, key: jax.Array, n: int, num_warmup: int) -> list[dict[str, np.ndarray]]:
    """``n`` independent draws of the latent maps ``{name: (P, n_latent)}`` from the model's prior: the last
    draw of each of ``n`` NUTS chains after ``num_warmup`` warm-up steps.

    Each chain starts from a constant map at a uniform level inside the box: the detail planes mix within the
    warm-up, the level of a map (a flat direction of the spatial prior, bounded only by the box) hardly moves,
    and from pixels started independently it would sit at the box's centre in every chain."""
    init_key, key = jax.random.split(key)
    init = {}
    for c in model.components:
        low, high = (np.asarray(b, dtype=np.float64) for b in c.theta_bounds)
        level = jax.random.uniform(jax.random.fold_in(init_key, len(init)), (n, 1, c.n_latent))
        constant = low + (high - low) * (0.05 + 0.9 * level)
        init[f"theta_{c.name}"] = biject_to(model.latent_support(c)).inv(
            jnp.broadcast_to(constant, (n, model.n_pixels, c.n_latent))
        )
    mcmc = MCMC(
        NUTS(make_latent_prior_model(model)),
        num_warmup=num_warmup,
        num_samples=1,
        num_chains=n,
        chain_method="vectorized",
        progress_bar=False,
    )
    mcmc.run(key, init_params=init)
    draws = mcmc.get_samples(group_by_chain=True)
    return [{c.name: np.asarray(draws[f"theta_{c.name}"][i, -1]) for c in model.components} for i in range(n)]


def prior_cube(model: CubeModel, toy: Cube, theta: dict[str, np.ndarray], seed: int) -> Cube:
    """The toy's amplitude maps with latent maps ``theta``: a Poisson cube and its truth."""
    truth = toy.truth
    amplitude = truth.amplitudes.reshape(len(model.components), -1).T  # (P, C)
    expected = np.asarray(model.component_counts(amplitude, theta))  # (P, C, E)
    expected = np.moveaxis(expected, 0, -1).reshape(len(model.components), model.n_channels, *truth.mask.shape)
    parameters = {}
    for i, c in enumerate(model.components):
        maps = model.to_maps(np.asarray(c.parameters(theta[c.name])))  # (n_parameters, H, W)
        parameters[c.name] = np.where(truth.amplitudes[i] > 0, maps, np.nan)
    counts = np.random.default_rng(seed).poisson(expected.sum(0)).astype(np.float64)
    names = {c.name: c.parameter_names for c in model.components}
    prior_truth = CubeTruth(truth.component_names, truth.amplitudes, parameters, names, expected, truth.mask)
    return Cube(counts, toy.energies_kev, prior_truth, "toy amplitudes, prior-drawn latents")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--replicates", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=500, help="NUTS warm-up steps of the prior chains")
    parser.add_argument("--method", choices=("vi", "nuts"), default="vi")
    parser.add_argument("--vi-steps", type=int, default=1500)
    parser.add_argument("--guide", choices=("pixel", "spatial"), default="pixel", help="VI guide")
    parser.add_argument("--spatial-prior", choices=("starlet", "smooth"), default="starlet")
    parser.add_argument("--nuts-draws", type=int, default=300, help="warm-up and kept draws of each of 2 chains")
    parser.add_argument(
        "--learn-scales", action="store_true", help="fit with the latent scales learned (started at the truths')"
    )
    parser.add_argument("--truths", nargs="+", choices=("prior", "toy"), default=["prior", "toy"])
    parser.add_argument("--out", type=Path, default=None, help="default: results/cube_prior_coverage_<run>.json")
    args = parser.parse_args()
    priors = {**PRIORS, "spatial_prior": args.spatial_prior}
    run = args.method + (f"-{args.guide}" if args.method == "vi" and args.guide != "pixel" else "")
    run += "-smooth" if args.spatial_prior == "smooth" else ""
    run += "-learned" if args.learn_scales else ""
    out = args.out or RESULTS / f"cube_prior_coverage_{run}_{args.size}.json"
    inference = (
        {"vi_steps": args.vi_steps, "guide": args.guide}
        if args.method == "vi"
        else {"num_warmup": args.nuts_draws, "num_samples": args.nuts_draws, "chains": 2}
    )

    components = dict(zip(MODELS, load_components(MODELS), strict=True))
    model = CubeModel(tuple(components.values()), args.size, args.size, **priors)
    latents = prior_latents(model, jax.random.key(args.seed), args.replicates, args.warmup)
    rows = []
    for r, theta in enumerate(latents):
        seed = args.seed + r
        toy = scene_cube("toy", seed, args.size)
        cubes = {"prior": prior_cube(model, toy, theta, seed), "toy": toy}
        for truth_kind in args.truths:
            cube = cubes[truth_kind]
            start = time.perf_counter()
            with tempfile.TemporaryDirectory() as out_dir:
                tree, _ = fit_cube(
                    cube, components, out_dir, method=args.method, seed=seed, progress=False, **inference,
                    learn_scales=args.learn_scales, **priors,
                )  # fmt: skip
            summary = {m: cube_summary(tree, cube.truth)[m] for m in MAPS}
            seconds = time.perf_counter() - start
            rows.append(
                {"replicate": r, "truth": truth_kind, "seconds": seconds, "maps": summary, **learned_scales(tree)}
            )
            learned = f" | scales {rows[-1]['learned_scales']}" if args.learn_scales else ""
            print(f"replicate {r}, {truth_kind:>5} truth: " + _cells(rows[-1]["maps"]) + learned, flush=True)

    print("\nCoverage of 90 % intervals, mean over replicates (standard error) | RMSE of the posterior mean")
    print("| truth | " + " | ".join(MAPS) + " |\n" + "|---" * (len(MAPS) + 1) + "|")
    table = {}
    for kind in args.truths:
        maps = [row["maps"] for row in rows if row["truth"] == kind]
        table[kind] = {
            m: _mean_se([s[m]["coverage"] for s in maps]) | {"rmse": _mean_se([s[m]["rmse"] for s in maps])}
            for m in MAPS
        }
        cells = [f"{t['mean']:.3f} ({t['se']:.3f}) \\| {t['rmse']['mean']:.3g}" for t in table[kind].values()]
        print(f"| {kind} | " + " | ".join(cells) + " |")
    out.write_text(
        json.dumps(
            {"settings": {**vars(args), "out": str(out), "priors": priors}, "summary": table, "replicates": rows},
            indent=1,
            default=str,
        )
    )
    print(f"wrote {out}")


def _mean_se(values: list[float]) -> dict[str, float]:
    v = np.asarray(values, dtype=float)
    return {"mean": float(v.mean()), "se": float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else float("nan")}


def _cells(maps: dict) -> str:
    return " | ".join(f"{m} {maps[m]['coverage']:.2f} (RMSE {maps[m]['rmse']:.3g})" for m in MAPS)


if __name__ == "__main__":
    main()
