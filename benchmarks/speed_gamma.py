"""Speed of gamma unmixing: batched MAP per spectrum and NUTS with unknown shielding.

Scene: the demo measurement (Co60, Ba133, Cs137 behind 8 mm of steel, natural background), simulated
with the package's physics simulator; models: the shipped pretrained joint IAE (400 channels) and an
800-channel joint IAE of the SEMSUN grid (18-1618 keV at 2 keV; untrained weights of the gamma
architecture: speed depends on the network's size, not on its weights).

Reported: MAP wall time per spectrum for a batch of 1 000 (after compilation; compilation apart),
and, for the pretrained model (the 800-channel one has random weights, so only its MAP cost is timed), NUTS for one spectrum (2 chains x (300 warm-up + 1000 draws), NumPyro, compilation included) with
its minimum bulk ESS and ESS per second; BlackJAX NUTS over a batch of 16 spectra per spectrum.
Published references: SEMSUN 1.1 s per spectrum (MAP); Pyro NUTS 5 min 48 s (unknown shielding).

    python benchmarks/speed_gamma.py          # writes benchmarks/results/speed_gamma.json
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
from bayes_unmix.data.preprocess import Preprocessing
from bayes_unmix.demo import simulate_measurement
from bayes_unmix.iae.calibration import EfficiencyModel, ParameterMap
from bayes_unmix.iae.library_fit import GAMMA_NETWORK
from bayes_unmix.iae.model import create_iae
from bayes_unmix.iae.network import NetworkConfig
from bayes_unmix.iae.spectral_model import JOINT, SpectralModel
from bayes_unmix.inference.map import map_batch
from bayes_unmix.inference.mcmc import NUTSConfig, nuts, nuts_batch
from bayes_unmix.models.gamma import GammaMixture
from bayes_unmix.pretrained import load_pretrained
from bayes_unmix.workflow import default_background


def semsun_grid_model(reference: SpectralModel) -> SpectralModel:
    """An 800-channel joint model with the gamma architecture (random weights), for timing only."""
    pre = Preprocessing.semsun()
    net = NetworkConfig(n_channels=pre.n_channels, n_components=len(reference.nuclides), **GAMMA_NETWORK)
    anchors = np.abs(np.random.default_rng(0).normal(size=(2, len(reference.nuclides), pre.n_channels))) + 0.1
    iae = create_iae(jax.random.key(0), anchors, net)
    return SpectralModel(
        nuclides=reference.nuclides,
        iaes={JOINT: iae},
        preprocessing=pre,
        parameter_name="thickness_mm",
        parameter_maps={JOINT: ParameterMap(kind="monotone", knots_u=(0.0, 1.0), knots_p=(0.0, 30.0))},
        efficiencies={n: EfficiencyModel((0.0, -7.0), 15.0, 15.0, 0.0) for n in reference.nuclides},
    )


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    jax.block_until_ready(jax.tree_util.tree_leaves(out) if isinstance(out, dict) else out)
    return out, time.perf_counter() - start


def run(model: SpectralModel, label: str, batch: int, seed: int, with_nuts: bool = True) -> dict:
    raw, _ = simulate_measurement(seed)
    pre = model.preprocessing
    mix = GammaMixture.from_spectral_model(model, default_background(pre), live_time_s=600.0)
    expected = np.maximum(pre.window(raw), 0)
    spectra = np.random.default_rng(seed).poisson(expected, size=(batch, expected.size)).astype(float)

    _, map_first = timed(map_batch, mix, spectra)
    _, map_second = timed(map_batch, mix, spectra)
    row = {
        "model": label,
        "channels": pre.n_channels,
        "map_batch": batch,
        "map_ms_per_spectrum": 1e3 * map_second / batch,
        "map_compile_s": map_first - map_second,
    }
    print(row, flush=True)
    if not with_nuts:  # random weights give a meaningless posterior: time MAP only
        return row

    start = time.perf_counter()
    result = nuts(mix, spectra[0], key=jax.random.key(seed), progress=False, check=False)
    nuts_seconds = time.perf_counter() - start
    table = result.summary()
    ess_min = float(table[table.parameter.isin(["counts", "thickness_mm"])].ess_bulk.min())

    config = NUTSConfig()
    _, bj_first = timed(nuts_batch, mix, spectra[:16], key=jax.random.key(seed + 1), config=config)
    _, bj_second = timed(nuts_batch, mix, spectra[:16], key=jax.random.key(seed + 2), config=config)
    return {
        "model": label,
        "channels": pre.n_channels,
        "map_batch": batch,
        "map_ms_per_spectrum": 1e3 * map_second / batch,
        "map_compile_s": map_first - map_second,
        "nuts_seconds_with_compile": nuts_seconds,
        "nuts_ess_bulk_min": ess_min,
        "nuts_ess_per_s": ess_min / nuts_seconds,
        "blackjax_batch16_s_per_spectrum": bj_second / 16,
        "blackjax_compile_s": bj_first - bj_second,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "speed_gamma.json")
    args = parser.parse_args()
    pretrained = load_pretrained("nai3_steel_joint")
    rows = [
        run(pretrained, "pretrained joint (400 ch)", args.batch, args.seed),
        run(semsun_grid_model(pretrained), "SEMSUN grid joint (800 ch)", args.batch, args.seed, with_nuts=False),
    ]
    device = jax.devices()[0]
    print(f"\nGamma unmixing speed on {device.platform} ({os.cpu_count()} CPU cores), jax {jax.__version__}")
    print(
        f"{'model':28} {'MAP ms/spec':>11} {'MAP compile s':>13} {'NUTS s (incl. compile)':>22} "
        f"{'min ESS':>8} {'ESS/s':>7} {'BlackJAX s/spec (x16)':>21}"
    )
    for r in rows:
        if "nuts_ess_bulk_min" in r:
            nuts_part = (
                f"{r['nuts_seconds_with_compile']:22.1f} {r['nuts_ess_bulk_min']:8.0f} {r['nuts_ess_per_s']:7.1f} "
                f"{r['blackjax_batch16_s_per_spectrum']:21.2f}"
            )
        else:
            nuts_part = f"{'(MAP only)':>22}"
        print(f"{r['model']:28} {r['map_ms_per_spectrum']:11.2f} {r['map_compile_s']:13.1f} {nuts_part}")
    print("published: SEMSUN MAP 1.1 s per spectrum (goal < 5 ms); Pyro NUTS 348 s (goal < 10 s)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "benchmark": "speed_gamma",
                "package_version": bayes_unmix.__version__,
                "jax_version": jax.__version__,
                "device": f"{device.platform}:{device.device_kind}",
                "cpu_count": os.cpu_count(),
                "machine": platform.machine(),
                "results": rows,
            },
            indent=2,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
