"""Validate the offline NaI(Tl) simulator (bayes_unmix.data.simulate) against the published Geant4 library.

Measures, for Ba133, Co57, Co60 and Cs137 in steel:
1. full-energy-peak attenuation A(t)/A(0.001 mm) of the main line (net counts in ±1.5 FWHM above a linear
   continuum), max relative deviation simulator vs Geant4 (goal ≤ 3 %);
2. FWHM of the main peaks from a Gaussian fit, simulator vs Geant4 (goal ≤ 5 %);
3. whole-shape NMSE (dB) of unit-sum spectra over 18-1618 keV rebinned to 2 keV (median and min);
4. total-count ratio 30 mm / 0.001 mm (notes: Co57 0.085, Ba133 0.156, Cs137 0.579, Co60 0.827).

Writes benchmarks/results/simulator_gamma.json and simulator_gamma.png.
Run: .venv/bin/python benchmarks/simulator_gamma.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from bayes_unmix.data.library import load_library
from bayes_unmix.data.simulate import fwhm_kev, simulate_library

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "gamma_nai_steel"
RESULTS = Path(__file__).resolve().parent / "results"
MAIN_LINES = {"Ba133": (356.01, 302.85, 81.0), "Co57": (122.06,), "Co60": (1332.49, 1173.23), "Cs137": (661.66,)}
NOTES_RATIO = {"Co57": 0.085, "Ba133": 0.156, "Cs137": 0.579, "Co60": 0.827}


def peak_area(spectrum: np.ndarray, energies: np.ndarray, line: float) -> float:
    """Net counts in ±1.5 FWHM around ``line`` above a straight line through the mean of 5 channels each side."""
    half = 1.5 * fwhm_kev(line)
    inside = (energies >= line - half) & (energies <= line + half)
    idx = np.flatnonzero(inside)
    left, right = spectrum[idx[0] - 5 : idx[0]].mean(), spectrum[idx[-1] + 1 : idx[-1] + 6].mean()
    base = np.interp(energies[idx], [energies[idx[0]], energies[idx[-1]]], [left, right])
    return float(np.sum(spectrum[idx] - base))


def fitted_fwhm(spectrum: np.ndarray, energies: np.ndarray, line: float) -> float:
    """FWHM (keV) of a Gaussian + linear background least-squares fit over ±1 FWHM (Gauss-Newton via log-parabola
    on the background-subtracted counts)."""
    half = fwhm_kev(line)
    idx = np.flatnonzero((energies >= line - half) & (energies <= line + half))
    left, right = spectrum[idx[0] - 3 : idx[0]].mean(), spectrum[idx[-1] + 1 : idx[-1] + 4].mean()
    net = spectrum[idx] - np.interp(energies[idx], [energies[idx[0]], energies[idx[-1]]], [left, right])
    top = net > 0.3 * net.max()
    coef = np.polyfit(energies[idx][top], np.log(net[top]), 2, w=np.sqrt(net[top]))
    return float(2.3548 * np.sqrt(-1.0 / (2.0 * coef[0])))


def unit_shape(x: np.ndarray) -> np.ndarray:
    x = x[..., 17:1617].reshape(*x.shape[:-1], 800, 2).sum(-1)
    return x / x.sum(-1, keepdims=True)


def nmse_db(sim: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return -10 * np.log10(((sim - ref) ** 2).sum(-1) / (ref**2).sum(-1))


def main() -> None:
    if not DATA.is_dir():
        sys.exit(f"Geant4 library not found at {DATA}; nothing to compare with.")
    g4 = load_library(DATA)
    start = time.perf_counter()
    sim = simulate_library(g4.nuclides, g4.parameter_values, energies_kev=g4.energies_kev)
    seconds = time.perf_counter() - start
    e, t = g4.energies_kev, g4.parameter_values
    results: dict = {"simulation_seconds": seconds, "nuclides": {}}
    rows = []
    for s, name in enumerate(g4.nuclides):
        main_line = MAIN_LINES[name][0]
        a_g4 = np.array([peak_area(x, e, main_line) for x in g4.spectra[s]])
        a_sim = np.array([peak_area(x, e, main_line) for x in sim.spectra[s]])
        r_g4, r_sim = a_g4 / a_g4[0], a_sim / a_sim[0]
        dev = np.abs(r_sim / r_g4 - 1)
        # below 2 % of the unshielded peak the Geant4 net area is noise-dominated; a Geant4 point that rises
        # with thickness (Co57 at 30 mm: 0.068 after 0.0095 at 29.2 mm) is a data anomaly and is left out
        anomalous = np.r_[False, r_g4[1:] > 1.5 * r_g4[:-1]]
        measurable = (r_g4 > 0.02) & ~anomalous
        worst = int(np.argmax(np.where(measurable, dev, -1)))
        fw = {
            f"{ln}": (fitted_fwhm(g4.spectra[s, 0], e, ln), fitted_fwhm(sim.spectra[s, 0], e, ln))
            for ln in MAIN_LINES[name]
        }
        fw_dev = max(abs(b / a - 1) for a, b in fw.values())
        nm = nmse_db(unit_shape(sim.spectra[s]), unit_shape(g4.spectra[s]))
        tot_g4 = g4.spectra[s, :, 17:1617].sum(1)
        tot_sim = sim.spectra[s, :, 17:1617].sum(1)
        results["nuclides"][name] = {
            "main_line_kev": main_line,
            "attenuation_max_rel_dev": float(dev[measurable].max()),
            "attenuation_worst_thickness_mm": float(t[worst]),
            "geant4_anomalous_thickness_mm": t[anomalous].tolist(),
            "attenuation_ratio_30mm": {"geant4": float(r_g4[-1]), "simulator": float(r_sim[-1])},
            "fwhm_kev": {k: {"geant4": a, "simulator": b} for k, (a, b) in fw.items()},
            "fwhm_max_rel_dev": float(fw_dev),
            "nmse_db": {
                "median": float(np.median(nm)),
                "min": float(nm.min()),
                "at_0.001_5.2_30mm": [float(nm[0]), float(nm[32]), float(nm[-1])],
            },
            "total_ratio_30mm": {
                "geant4": float(tot_g4[-1] / tot_g4[0]),
                "simulator": float(tot_sim[-1] / tot_sim[0]),
                "notes": NOTES_RATIO[name],
            },
            "efficiency_per_decay_0.001mm": float(sim.spectra[s, 0].sum()),
        }
        rows.append(
            (
                name,
                main_line,
                dev[measurable].max(),
                t[worst],
                fw_dev,
                np.median(nm),
                nm.min(),
                tot_g4[-1] / tot_g4[0],
                tot_sim[-1] / tot_sim[0],
            )
        )
    a662 = peak_area(sim.spectra[g4.nuclides.index("Cs137"), 0], e, 661.66) / 0.847
    results["full_energy_peak_efficiency_662kev"] = a662
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "simulator_gamma.json").write_text(json.dumps(results, indent=2))

    print(f"simulated 4 x {len(t)} spectra in {seconds:.1f} s; FEP efficiency at 662 keV = {a662:.2e} (notes 3.0e-3)")
    print(
        f"{'nuclide':8} {'line':>8} {'att.dev':>8} {'@t mm':>6} {'FWHMdev':>8} {'NMSEmed':>8} {'NMSEmin':>8} "
        f"{'tot30 G4':>9} {'tot30 sim':>9}"
    )
    for r in rows:
        print(
            f"{r[0]:8} {r[1]:8.2f} {100 * r[2]:7.2f}% {r[3]:6.1f} {100 * r[4]:7.2f}% {r[5]:7.1f}dB {r[6]:7.1f}dB "
            f"{r[7]:9.3f} {r[8]:9.3f}"
        )
    plot(g4, sim)


def plot(g4, sim) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(g4.nuclides), 3, figsize=(14, 3.2 * len(g4.nuclides)), sharex="row")
    centres = 18 + 2 * np.arange(800) + 0.5
    for s, name in enumerate(g4.nuclides):
        for j, thick in enumerate((0.001, 5.2, 30.0)):
            i = g4.index_of(thick)
            ax = axes[s, j]
            ax.semilogy(centres, unit_shape(g4.spectra[s, i]), lw=0.8, label="Geant4")
            ax.semilogy(centres, unit_shape(sim.spectra[s, i]), lw=0.8, label="simulator")
            nm = nmse_db(unit_shape(sim.spectra[s, i]), unit_shape(g4.spectra[s, i]))
            ax.set_title(f"{name}, {thick} mm steel, NMSE {nm:.1f} dB", fontsize=9)
            ax.set_ylim(1e-6, None)
            if s == len(g4.nuclides) - 1:
                ax.set_xlabel("energy (keV)")
        axes[s, 0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "simulator_gamma.png", dpi=90)


if __name__ == "__main__":
    main()
