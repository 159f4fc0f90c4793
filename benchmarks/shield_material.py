"""Which shield material? Model comparison of the steel and lead gamma models on simulated spectra.

Models: the shipped pretrained joint IAEs ``nai3_steel_joint`` (steel 0.001-30 mm) and
``nai3_lead_joint`` (lead 0.0005-15 mm), same nuclides (Co60, Ba133, Co57, Cs137) and 400-channel
grid, each with the simulated natural background, live time 600 s and the default flat priors (count
``U(0, 1.5 * total)``, ``u ~ U(0, 1)``, the same widths for both, so the Bayes factor weighs the shield
models only). Each is a 5-component mixture with a free shield thickness.

Spectra: the package's physics simulator (:mod:`bayes_unmix.data.simulate`, not the IAEs, so a model
is never scored on its own output), a point source behind a steel (2, 8, 20 mm) or lead (0.5, 2, 5 mm)
shell, windowed to the models' grid; expected counts in the window ``total`` (3 000 and 100 000), of
which 30 % background and the rest shared equally by the nuclides (default Co60 and Cs137: only
high-energy lines, the hard case; lines below 400 keV, Ba133's or Co57's, make the materials easier
to tell apart); ``y ~ Poisson``. Replicates: ``--replicates`` spectra per material, thickness and count
level (default 2, so 6 per material and count level, 24 in all).

Method: :func:`bayes_unmix.inference.compare.compare_models` on each spectrum (NumPyro NUTS, 2 chains x
(200 warm-up + 300 draws), PSIS-LOO over channels; adaptive tempered SMC evidence, 200 particles x 4
runs, 2 HMC moves per temperature). Reported per true material and count level: the fraction of
replicates where LOO ranks the true material first and where the evidence does (``log BF > 0``), the
median ``log BF = log Z(true) - log Z(other)`` with the median of its per-replicate SMC Monte Carlo
errors, the median ELPD difference (true - other), and the maximum Pareto k over both fits (above
``min(1 - 1/log10 S, 0.7)`` = 0.64 for S = 600 draws, PSIS-LOO is unreliable). Per-thickness and
per-replicate values, with the NUTS diagnostics (max R-hat, min bulk ESS, divergences over both fits),
are in the JSON.

Cost: about 60 s of CPU per spectrum (NumPyro recompiles NUTS for every fit, about 10 s each; SMC
about 15 s per model), so the default 24 spectra took 27 min on 2 shared CPU cores; ``--replicates 1``
(12 spectra) halves that.

    python benchmarks/shield_material.py            # writes benchmarks/results/shield_material.json
    python benchmarks/shield_material.py --quick    # smoke run: one spectrum per material (minutes)
    python benchmarks/shield_material.py --nuclides Co60 Ba133 Cs137   # with a low-energy emitter
"""

from __future__ import annotations

import argparse
import json
import os
import time
import warnings
from pathlib import Path

import jax
import numpy as np

import bayes_unmix
from bayes_unmix.data.preprocess import Preprocessing
from bayes_unmix.data.simulate import simulate_signature
from bayes_unmix.inference.compare import compare_models
from bayes_unmix.inference.evidence import SMCConfig
from bayes_unmix.inference.mcmc import NUTSConfig
from bayes_unmix.models.gamma import GammaMixture
from bayes_unmix.pretrained import PRETRAINED_NUCLIDES, load_pretrained
from bayes_unmix.workflow import default_background

LIVE_TIME_S = 600.0
MODELS = {"steel": "nai3_steel_joint", "lead": "nai3_lead_joint"}
THICKNESS_MM = {"steel": (2.0, 8.0, 20.0), "lead": (0.5, 2.0, 5.0)}
TOTALS = (3e3, 1e5)
BACKGROUND_FRACTION = 0.3


def setup() -> tuple[dict[str, GammaMixture], np.ndarray]:
    """The two mixtures (same grid, background and priors) and the unit-sum background signature."""
    models = {material: load_pretrained(name) for material, name in MODELS.items()}
    pre = models["steel"].preprocessing
    if any(m.preprocessing != pre for m in models.values()):
        raise ValueError("the steel and lead models must share one channel grid")
    background = default_background(pre)
    mixtures = {
        material: GammaMixture.from_spectral_model(model, background, live_time_s=LIVE_TIME_S)
        for material, model in models.items()
    }
    return mixtures, background


def expected_spectrum(
    material: str,
    thickness_mm: float,
    total: float,
    nuclides: tuple[str, ...],
    background: np.ndarray,
    pre: Preprocessing,
) -> np.ndarray:
    """Expected counts on the models' grid: ``total`` counts, 30 % background, the rest equally per nuclide."""
    energies = pre.first_channel_kev + pre.kev_per_channel * np.arange(pre.raw_channels)
    rate = BACKGROUND_FRACTION * total * background
    for nuclide in nuclides:
        signature = pre.window(simulate_signature(nuclide, thickness_mm, material=material, energies_kev=energies)[0])
        rate = rate + (1.0 - BACKGROUND_FRACTION) / len(nuclides) * total * signature / signature.sum()
    return rate


def compare_one(mixtures: dict[str, GammaMixture], counts: np.ndarray, truth: str, key: jax.Array, args) -> dict:
    """One replicate: LOO and evidence of both models, seen from the true material."""
    other = next(m for m in mixtures if m != truth)
    nuts_config = NUTSConfig(num_warmup=args.warmup, num_samples=args.draws, num_chains=args.chains)
    smc_config = SMCConfig(num_particles=args.particles, num_runs=args.smc_runs, num_mcmc_steps=args.mcmc_steps)
    with warnings.catch_warnings():  # convergence and Pareto-k problems are recorded below, not printed
        warnings.simplefilter("ignore")
        study = compare_models(mixtures, counts, key=key, nuts_config=nuts_config, smc_config=smc_config)
        checks = {m: fit.check_convergence(warn=False) for m, fit in study.fits.items()}
    loo, evidence = study.loo, study.evidence
    variables = [v for v in checks[truth] if isinstance(checks[truth][v], dict)]
    return {
        "loo_picks_true": bool(loo.index[0] == truth),
        "elpd_diff": float(loo.loc[truth, "elpd"] - loo.loc[other, "elpd"]),
        "elpd_dse": float(loo.loc[loo.index[1], "dse"]),
        "max_pareto_k": float(loo["max_pareto_k"].max()),
        "n_bad_k": int(loo["n_bad_k"].sum()),
        "log_bf": float(evidence.loc[truth, "log_z"] - evidence.loc[other, "log_z"]),
        "log_bf_error": float(np.hypot(evidence.loc[truth, "mc_error"], evidence.loc[other, "mc_error"])),
        "thickness_mm_fitted": {
            m: float(np.median(fit.posterior[mixtures[m].spectral_model.parameter_name].values))
            for m, fit in study.fits.items()
        },
        "r_hat_max": max(c[v]["r_hat_max"] for c in checks.values() for v in variables),
        "ess_bulk_min": min(c[v]["ess_bulk_min"] for c in checks.values() for v in variables),
        "divergences": sum(c["divergences"] for c in checks.values()),
    }


def summarise(rows: list[dict]) -> dict:
    """Fractions and medians over replicates."""
    log_bf = np.array([r["log_bf"] for r in rows])
    return {
        "n": len(rows),
        "loo_correct": float(np.mean([r["loo_picks_true"] for r in rows])),
        "bf_correct": float(np.mean(log_bf > 0)),
        "median_log_bf": float(np.median(log_bf)),
        "median_log_bf_mc_error": float(np.median([r["log_bf_error"] for r in rows])),
        "max_log_bf_mc_error": float(np.max([r["log_bf_error"] for r in rows])),
        "median_elpd_diff": float(np.median([r["elpd_diff"] for r in rows])),
        "max_pareto_k": float(np.max([r["max_pareto_k"] for r in rows])),
        "replicates_with_bad_k": int(sum(r["n_bad_k"] > 0 for r in rows)),
        "max_r_hat": float(np.max([r["r_hat_max"] for r in rows])),
        "min_ess_bulk": float(np.min([r["ess_bulk_min"] for r in rows])),
        "divergences": int(sum(r["divergences"] for r in rows)),
    }


def print_table(summary: dict, per_thickness: dict) -> None:
    print(
        f"\n{'true':6} {'counts':>7} {'n':>3} {'LOO ok':>7} {'BF ok':>6} {'median log BF (MC err)':>23} "
        f"{'median dELPD':>12} {'max k':>6}"
    )
    for key, s in summary.items():
        material, total = key.split("/")
        bf = f"{s['median_log_bf']:.1f} ({s['median_log_bf_mc_error']:.2f})"
        print(
            f"{material:6} {float(total):7.0f} {s['n']:3d} {100 * s['loo_correct']:6.0f}% {100 * s['bf_correct']:5.0f}% "
            f"{bf:>23} {s['median_elpd_diff']:12.1f} {s['max_pareto_k']:6.2f}"
        )
    print("\nmedian log BF (true - other) per thickness:")
    for key, s in per_thickness.items():
        print(
            f"  {key:22} {s['median_log_bf']:8.1f}  LOO ok {100 * s['loo_correct']:3.0f}%  BF ok {100 * s['bf_correct']:3.0f}%"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nuclides", nargs="+", default=["Co60", "Cs137"], choices=list(PRETRAINED_NUCLIDES))
    parser.add_argument("--totals", nargs="+", type=float, default=list(TOTALS), help="expected counts in the window")
    parser.add_argument("--replicates", type=int, default=2, help="spectra per material, thickness and count level")
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--draws", type=int, default=300)
    parser.add_argument("--particles", type=int, default=200, help="SMC particles per run")
    parser.add_argument("--smc-runs", type=int, default=4)
    parser.add_argument("--mcmc-steps", type=int, default=2, help="SMC HMC moves per temperature")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke run: one spectrum per material, 3 000 counts")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "shield_material.json")
    args = parser.parse_args()
    thicknesses = dict(THICKNESS_MM)
    if args.quick:
        args.totals, args.replicates, args.warmup, args.draws, args.particles = [3e3], 1, 100, 200, 100
        thicknesses = {"steel": (8.0,), "lead": (2.0,)}
    mixtures, background = setup()
    pre = mixtures["steel"].spectral_model.preprocessing
    nuclides = tuple(args.nuclides)
    key = jax.random.key(args.seed)
    record = {
        "benchmark": "shield_material",
        "package_version": bayes_unmix.__version__,
        "jax_version": jax.__version__,
        "cpu_count": os.cpu_count(),
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "models": MODELS,
        "thickness_mm": thicknesses,
        "background_fraction": BACKGROUND_FRACTION,
        "log_bf": "log Z(true material) - log Z(other); elpd_diff: ELPD(true) - ELPD(other)",
    }
    start = time.perf_counter()
    replicates: dict[str, list[dict]] = {}
    for m_index, (material, grid) in enumerate(thicknesses.items()):
        for t_index, thickness in enumerate(grid):
            for c_index, total in enumerate(args.totals):
                rate = expected_spectrum(material, thickness, total, nuclides, background, pre)
                cell = jax.random.fold_in(jax.random.fold_in(jax.random.fold_in(key, m_index), t_index), c_index)
                k_sim, k_fit = jax.random.split(cell)
                seed = int(jax.random.randint(k_sim, (), 0, 2**31 - 1))
                spectra = np.random.default_rng(seed).poisson(rate, (args.replicates, rate.size)).astype(np.float64)
                rows = []
                for y, k in zip(spectra, jax.random.split(k_fit, args.replicates)):
                    tick = time.perf_counter()
                    row = compare_one(mixtures, y, material, k, args)
                    rows.append({"seconds": time.perf_counter() - tick, **row})
                    print(
                        f"  {material:5} {thickness:5.1f} mm {total:8.0f} counts: log BF {row['log_bf']:8.2f} "
                        f"+- {row['log_bf_error']:.2f}, dELPD {row['elpd_diff']:8.2f}, max k {row['max_pareto_k']:.2f}, "
                        f"{rows[-1]['seconds']:.0f} s",
                        flush=True,
                    )
                replicates[f"{material}/{thickness:g}mm/{total:g}"] = rows
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps({**record, "replicates": replicates}, indent=1))  # partial results
    summary = {
        f"{material}/{total:g}": summarise(
            [r for t in thicknesses[material] for r in replicates[f"{material}/{t:g}mm/{total:g}"]]
        )
        for material in thicknesses
        for total in args.totals
    }
    per_thickness = {key: summarise(rows) for key, rows in replicates.items()}
    record.update(
        summary=summary, per_thickness=per_thickness, replicates=replicates, seconds=time.perf_counter() - start
    )
    args.out.write_text(json.dumps(record, indent=1))
    print_table(summary, per_thickness)
    print(f"total {record['seconds']:.0f} s; wrote {args.out}")


if __name__ == "__main__":
    main()
