"""IAE accuracy on the published sGMCA X-ray spectral families, against the published models.

Trains one IAE per family (sync, thermal, gauss) on ``../shared/data/xray_sgmca`` and reports, on
the test set, median [Q1, Q3] of the absolute error in dB (-20 log10 ||x_hat - x||_2) and of the
NMSE in dB, for fast interpolation (FI) and barycentric span projection (BSP), next to the
published BSP medians, plus the CPU training time.

    python benchmarks/iae_sgmca.py                 # full run, writes benchmarks/results/iae_sgmca.json
    python benchmarks/iae_sgmca.py --epochs 200    # quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import jax
import numpy as np

import bayes_unmix
from bayes_unmix.iae import NetworkConfig, TrainConfig, create_iae, fit
from bayes_unmix.iae.project import fast_interpolation, project

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "xray_sgmca"
PUBLISHED_BSP_ABS_DB = {"sync": 67.50, "thermal": 69.00, "gauss": 62.66}
PUBLISHED_FI_ABS_DB = {"sync": 65.52, "thermal": 67.72, "gauss": 52.28}
# Recipe used for all three families (see the README's benchmark section).
NETWORK = {"kind": "mlp", "n_layers": 4, "activation": "gelu", "output": "linear"}
RECIPE = {"batch_size": 64, "learning_rate": 3e-3, "schedule": "cosine", "loss": "mse", "mu": 0.1, "eval_every": 250}


def quartiles(values: np.ndarray) -> list[float]:
    return [float(v) for v in np.percentile(values, [50, 25, 75])]


def metrics(fitted: np.ndarray, truth: np.ndarray) -> dict[str, list[float]]:
    err = np.linalg.norm((fitted - truth).reshape(len(truth), -1), axis=1)
    norm = np.linalg.norm(truth.reshape(len(truth), -1), axis=1)
    return {"abs_db": quartiles(-20 * np.log10(err)), "nmse_db": quartiles(-20 * np.log10(err / norm))}


def run_family(family: str, epochs: int, seed: int, progress: bool) -> dict:
    data = np.load(DATA / f"spectra_{family}.npz")
    train, valid, test, anchors = (data[k][:, None, :] for k in ("train", "valid", "test", "anchr"))
    network = NetworkConfig(n_channels=train.shape[-1], **NETWORK)
    key_init, key_fit = jax.random.split(jax.random.key(seed))
    iae = create_iae(key_init, anchors, network, scale=train.mean(axis=0))
    config = TrainConfig(epochs=epochs, **RECIPE)
    start = time.perf_counter()
    iae, history = fit(iae, train, valid, config, key=key_fit, progress=progress)
    train_seconds = time.perf_counter() - start

    fi = fast_interpolation(iae, test)
    start = time.perf_counter()
    bsp = project(iae, test)
    jax.block_until_ready(bsp)
    return {
        "family": family,
        "n_train": len(train),
        "n_test": len(test),
        "n_anchors": len(anchors),
        "epochs": epochs,
        "best_epoch": history.best_epoch,
        "train_seconds": train_seconds,
        "bsp_seconds": time.perf_counter() - start,
        "bsp_median_iterations": float(np.median(bsp.iterations)),
        "fi": metrics(np.asarray(fi.spectra), test),
        "bsp": metrics(np.asarray(bsp.spectra), test),
        "published_bsp_abs_db_median": PUBLISHED_BSP_ABS_DB[family],
        "published_fi_abs_db_median": PUBLISHED_FI_ABS_DB[family],
    }


def fmt(q: list[float]) -> str:
    return f"{q[0]:6.2f} [{q[1]:6.2f}, {q[2]:6.2f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--families", nargs="+", default=["sync", "thermal", "gauss"])
    parser.add_argument("--epochs", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "iae_sgmca.json")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    if not DATA.is_dir():
        raise SystemExit(f"data folder {DATA} not found (this benchmark needs ../shared/data/xray_sgmca)")

    rows = [run_family(f, args.epochs, args.seed, not args.no_progress) for f in args.families]
    print(f"\nIAE on sGMCA test sets ({os.cpu_count()} CPU cores, epochs={args.epochs}, seed={args.seed})")
    print(
        f"{'family':8} {'FI abs dB':>24} {'BSP abs dB':>24} {'published BSP':>13} {'FI NMSE dB':>24} "
        f"{'BSP NMSE dB':>24} {'train s':>8}"
    )
    for r in rows:
        print(
            f"{r['family']:8} {fmt(r['fi']['abs_db']):>24} {fmt(r['bsp']['abs_db']):>24} "
            f"{r['published_bsp_abs_db_median']:13.2f} {fmt(r['fi']['nmse_db']):>24} {fmt(r['bsp']['nmse_db']):>24} "
            f"{r['train_seconds']:8.1f}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "benchmark": "iae_sgmca",
        "package_version": bayes_unmix.__version__,
        "jax_version": jax.__version__,
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "network": NETWORK,
        "recipe": RECIPE,
        "seed": args.seed,
        "results": rows,
    }
    args.out.write_text(json.dumps(record, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
