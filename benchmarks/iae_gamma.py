"""IAE accuracy on the Geant4 NaI(Tl) steel library (SEMSUN protocol) and the data-frugal claim.

Trains individual and joint spectral models on the SEMSUN split (71 training spectra including the
anchors 0.001 mm and 30 mm, 25 test; SEMSUN preprocessing: 18-1618 keV, 2 keV channels, floor 1e-6,
per-nuclide supports) and reports per nuclide, on the test set, the NMSE in dB (median [Q1, Q3]) of the
barycentric span projection next to the published SEMSUN values; each test spectrum's Monte-Carlo
noise floor 10 log10(||x||^2 / sum Var x) and the model's excess over it (floor - NMSE, dB).

Data-frugality: the same metrics when training on every 2nd, 4th and 8th training spectrum (anchors
always kept), next to linear interpolation between neighbouring training spectra whose position
(and amplitude) is fitted to each test spectrum, as the IAE's weights are.

    python benchmarks/iae_gamma.py                       # writes benchmarks/results/iae_gamma.json
    python benchmarks/iae_gamma.py --epochs 300 --sparsity 1
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

import jax
import numpy as np

import bayes_unmix
from bayes_unmix.data.library import load_library
from bayes_unmix.data.preprocess import Preprocessing
from bayes_unmix.data.splits import semsun_split
from bayes_unmix.iae.library_fit import GAMMA_NETWORK, GAMMA_TRAINING, train_spectral_model
from bayes_unmix.iae.project import project

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gamma_nai_steel"
NUCLIDES = ("Co60", "Ba133", "Co57", "Cs137")
PUBLISHED = {  # SEMSUN IAE, NMSE dB median [25th, 75th]
    "individual": {
        "Co60": (34.0, 33.1, 34.7),
        "Ba133": (36.2, 35.3, 36.8),
        "Co57": (39.6, 35.5, 42.9),
        "Cs137": (36.6, 35.0, 38.2),
    },
    "joint": {
        "Co60": (34.5, 34.2, 35.0),
        "Ba133": (36.2, 35.3, 36.9),
        "Co57": (36.4, 35.2, 38.6),
        "Cs137": (36.1, 35.4, 37.5),
    },
}


def nmse_db(fitted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    return -10 * np.log10(np.sum((fitted - truth) ** 2, -1) / np.sum(truth**2, -1))


def quartiles(v: np.ndarray) -> list[float]:
    return [float(x) for x in np.percentile(v, [50, 25, 75])]


def noise_floor_db(pre: Preprocessing, raw: np.ndarray, nuclide: str) -> np.ndarray:
    """10 log10(||x||^2 / sum_i Var x_i) for x = c / N, Var x_i = c_i / N^2 (Poisson tallies)."""
    counts = pre.window(raw) * pre.support(nuclide)
    total = counts.sum(-1)
    x = counts / total[:, None]
    return 10 * np.log10(np.sum(x**2, -1) * total)


def interpolation_baseline(train: np.ndarray, test: np.ndarray, joint: bool, grid: int = 201) -> np.ndarray:
    """Best a * ((1 - s) x_k + s x_{k+1}) over neighbouring training pairs k and s in [0, 1].

    ``train`` (T, S, n) sorted by parameter, ``test`` (N, S, n). Joint: one (k, s) for all nuclides.
    Returns the fitted test spectra (N, S, n).
    """
    s = np.linspace(0, 1, grid)
    fitted = np.empty_like(test)
    for i, x in enumerate(test):
        cand = (1 - s)[None, :, None, None] * train[:-1, None] + s[None, :, None, None] * train[1:, None]
        amp = np.sum(cand * x, -1) / np.sum(cand * cand, -1)  # (K, G, S)
        cost = np.sum((amp[..., None] * cand - x) ** 2, -1)  # (K, G, S)
        if joint:
            k, g = np.unravel_index(np.argmin(cost.sum(-1)), cost.shape[:2])
            fitted[i] = amp[k, g][:, None] * cand[k, g]
        else:
            for c in range(x.shape[0]):
                k, g = np.unravel_index(np.argmin(cost[..., c]), cost.shape[:2])
                fitted[i, c] = amp[k, g, c] * cand[k, g, c]
    return fitted


def evaluate(model, test_x: np.ndarray, floors: dict[str, np.ndarray]) -> dict:
    rows = {}
    for s, n in enumerate(model.nuclides):
        if model.joint:
            fitted = np.asarray(project(model.iaes["joint"], test_x).spectra)[:, s]
        else:
            fitted = np.asarray(project(model.iaes[n], test_x[:, s]).spectra)
        score = nmse_db(fitted, test_x[:, s])
        rows[n] = {"nmse_db": quartiles(score), "excess_db": quartiles(floors[n] - score)}
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=GAMMA_TRAINING.epochs)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sparsity", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "iae_gamma.json")
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"data folder {DATA} not found (this benchmark needs ../shared/data/gamma_nai_steel)")

    library = load_library(DATA, nuclides=NUCLIDES)
    pre = Preprocessing.semsun(library.spectra.shape[-1])
    train_idx, test_idx = semsun_split(library.parameter_values)
    signatures = np.stack([pre.signatures(library.spectra[s], n) for s, n in enumerate(NUCLIDES)], 1)  # (T, S, n)
    test_x = signatures[test_idx]
    floors = {n: noise_floor_db(pre, library.spectra[s][test_idx], n) for s, n in enumerate(NUCLIDES)}
    config = dataclasses.replace(GAMMA_TRAINING, epochs=args.epochs)

    results = []
    for step in args.sparsity:
        subset = np.unique(np.concatenate([train_idx[::step], train_idx[-1:]]))
        for kind in ("individual", "joint"):
            start = time.perf_counter()
            model = train_spectral_model(
                library,
                joint=kind == "joint",
                key=jax.random.key(args.seed),
                preprocessing=pre,
                train_indices=subset,
                config=config,
                progress=False,
            )
            seconds = time.perf_counter() - start
            baseline = interpolation_baseline(signatures[subset], test_x, joint=kind == "joint")
            base = {n: quartiles(nmse_db(baseline[:, s], test_x[:, s])) for s, n in enumerate(NUCLIDES)}
            results.append(
                {
                    "every": step,
                    "model": kind,
                    "n_train": int(subset.size),
                    "train_seconds": seconds,
                    "iae": evaluate(model, test_x, floors),
                    "linear_interpolation": base,
                }
            )
            print(f"trained {kind:10} every {step}: {subset.size} spectra, {seconds:.0f} s", flush=True)

    fmt = lambda q: f"{q[0]:5.1f} [{q[1]:5.1f}, {q[2]:5.1f}]"
    print(
        f"\nSEMSUN steel test set (25 spectra), NMSE dB median [Q1, Q3]; {os.cpu_count()} CPU cores, {args.epochs} epochs"
    )
    print(
        f"{'model':10} {'every':>5} {'nuclide':7} {'IAE (BSP)':>20} {'published':>20} {'noise floor':>11} "
        f"{'excess':>7} {'lin. interp.':>20} {'train s':>7}"
    )
    for r in results:
        for s, n in enumerate(NUCLIDES):
            pub = fmt(PUBLISHED[r["model"]][n]) if r["every"] == 1 else ""
            print(
                f"{r['model']:10} {r['every']:5d} {n:7} {fmt(r['iae'][n]['nmse_db']):>20} {pub:>20} "
                f"{np.median(floors[n]):11.1f} {r['iae'][n]['excess_db'][0]:7.2f} "
                f"{fmt(r['linear_interpolation'][n]):>20} {r['train_seconds'] if s == 0 else '':>7}"
            )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "benchmark": "iae_gamma",
                "package_version": bayes_unmix.__version__,
                "jax_version": jax.__version__,
                "cpu_count": os.cpu_count(),
                "epochs": args.epochs,
                "seed": args.seed,
                "network": GAMMA_NETWORK,
                "noise_floor_db_median": {n: float(np.median(floors[n])) for n in NUCLIDES},
                "published": PUBLISHED,
                "results": results,
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
