"""The embedded demos: everything from what the package ships or generates itself, no external data.

* :func:`run_unmixing_demo` (``bayes-unmix demo``): a shielded measurement simulated with the physics
  simulator (known activities, steel thickness and live time, natural background), unmixed with the
  shipped pretrained joint IAE model by NUTS; summary next to the truth, plots and report written.
* :func:`run_iae_demo` (``bayes-unmix demo --iae``): trains an IAE on a toy family of shielded
  single-line spectra and fits held-out thicknesses.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np

from bayes_unmix.data.synthetic import shielded_line_family
from bayes_unmix.iae import NetworkConfig, TrainConfig, create_iae, fit
from bayes_unmix.iae.project import fast_interpolation, project
from bayes_unmix.iae.serialize import save
from bayes_unmix.report.plots import plot_reconstructions

__all__ = ["DemoResult", "UnmixingDemo", "run_iae_demo", "run_unmixing_demo"]

#: The demo measurement: activities (Bq) behind steel, 10 minutes live time.
DEMO_ACTIVITIES_BQ = {"Co60": 4000.0, "Ba133": 3000.0, "Co57": 0.0, "Cs137": 5000.0}
DEMO_THICKNESS_MM = 8.0
DEMO_LIVE_TIME_S = 600.0

ENERGIES_KEV = np.linspace(20.0, 800.0, 128)


@dataclass
class DemoResult:
    """What the demo measured and wrote."""

    thickness_mm: np.ndarray
    fi_nmse_db: np.ndarray
    bsp_nmse_db: np.ndarray
    train_seconds: float
    model_path: Path
    figure_path: Path


def _nmse_db(fitted: np.ndarray, truth: np.ndarray) -> np.ndarray:
    return -10 * np.log10(np.sum((fitted - truth) ** 2, -1) / np.sum(truth**2, -1))


def run_iae_demo(out_dir: Path, *, epochs: int = 1500, seed: int = 0, progress: bool = True) -> DemoResult:
    """Train and evaluate an IAE on the toy shielded-line family; write the model and a figure."""
    out_dir.mkdir(parents=True, exist_ok=True)
    grid = np.linspace(0.0, 30.0, 41)
    train_t, test_t = grid[::2], grid[1::2]  # anchors 0 mm and 30 mm are the ends of the training grid
    train = shielded_line_family(train_t, ENERGIES_KEV)
    test = shielded_line_family(test_t, ENERGIES_KEV)

    network = NetworkConfig(n_channels=len(ENERGIES_KEV), n_layers=3, activation="gelu", latent_width=32)
    key_init, key_fit = jax.random.split(jax.random.key(seed))
    iae = create_iae(key_init, train[[0, -1], None, :], network, scale=train.mean(0))
    iae = iae.with_metadata(
        energy_kev=ENERGIES_KEV.tolist(),
        parameter="thickness_mm",
        anchor_parameter_values=[float(train_t[0]), float(train_t[-1])],
        source="bayes_unmix.data.synthetic.shielded_line_family",
    )
    config = TrainConfig(epochs=epochs, batch_size=8, learning_rate=3e-3, loss="mse", eval_every=max(epochs // 10, 1))
    iae, history = fit(iae, train, None, config, key=key_fit, progress=progress)

    fi = np.asarray(fast_interpolation(iae, test).spectra)
    bsp = np.asarray(project(iae, test).spectra)
    model_path = save(iae, out_dir / "iae_demo.npz")
    figure_path = _figure(test_t, test, bsp, out_dir / "iae_demo.png")
    return DemoResult(test_t, _nmse_db(fi, test), _nmse_db(bsp, test), history.seconds, model_path, figure_path)


def _figure(thickness: np.ndarray, truth: np.ndarray, fitted: np.ndarray, path: Path) -> Path:
    rows = np.linspace(0, len(thickness) - 1, 4).astype(int)
    fig = plot_reconstructions(
        ENERGIES_KEV,
        truth[rows],
        fitted[rows],
        [f"{t:.1f} mm" for t in thickness[rows]],
        title="IAE fit of held-out shield thicknesses (toy 662 keV line)",
    )
    fig.savefig(path, dpi=120)
    return path


@dataclass
class UnmixingDemo:
    """Truth and posterior summary of the unmixing demo."""

    table: object  # pandas DataFrame: component, parameter, truth, mean, ci_low, ci_high
    seconds: float
    written: list[Path]


def simulate_measurement(seed: int, raw_channels: int = 2998) -> tuple[np.ndarray, dict[str, float]]:
    """Raw Poisson counts of the demo scene and the true expected counts per component (whole range)."""
    from bayes_unmix.data.simulate import simulate_background, simulate_signature

    energies = 1.0 + np.arange(raw_channels)
    rates = {
        n: a * DEMO_LIVE_TIME_S * simulate_signature(n, [DEMO_THICKNESS_MM], energies_kev=energies)[0]
        for n, a in DEMO_ACTIVITIES_BQ.items()
    }
    rates["background"] = simulate_background(energies, live_time_s=DEMO_LIVE_TIME_S)
    expected = sum(rates.values())
    return np.random.default_rng(seed).poisson(expected).astype(float), rates


def run_unmixing_demo(out_dir: Path, *, seed: int = 0, progress: bool = True, quick: bool = False) -> UnmixingDemo:
    """Simulate, unmix with NUTS, compare with the truth, write summary/posterior/plots/report."""
    import time

    import matplotlib.pyplot as plt
    import pandas as pd

    from bayes_unmix.inference.mcmc import NUTSConfig
    from bayes_unmix.workflow import fit_spectrum, load_model

    out_dir.mkdir(parents=True, exist_ok=True)
    raw, rates = simulate_measurement(seed)
    spectrum_path = out_dir / "demo_spectrum.txt"
    spectrum_path.write_text("\n".join(f"{int(c)}" for c in raw))
    config = NUTSConfig(num_warmup=150, num_samples=200) if quick else NUTSConfig(num_samples=500, num_chains=4)
    start = time.perf_counter()
    model = load_model("nai3_steel_joint")
    result, written = fit_spectrum(
        spectrum_path,
        model,
        out_dir,
        live_time_s=DEMO_LIVE_TIME_S,
        method="nuts",
        seed=seed,
        progress=progress,
        nuts_config=config,
    )
    seconds = time.perf_counter() - start
    fig = result.plot_pair()
    fig.savefig(out_dir / "pair.png", dpi=110)
    plt.close(fig)
    written.append(out_dir / "pair.png")

    window = model.preprocessing.window
    truth = {("counts", n): float(window(r).sum()) for n, r in rates.items()}
    truth |= {("thickness_mm", n): DEMO_THICKNESS_MM for n in DEMO_ACTIVITIES_BQ}
    truth |= {("activity_bq", n): a for n, a in DEMO_ACTIVITIES_BQ.items()}
    table = result.summary(0.9)
    table.insert(2, "truth", [truth.get((p, c), np.nan) for p, c in zip(table.parameter, table.component)])
    return UnmixingDemo(pd.DataFrame(table), seconds, written)
