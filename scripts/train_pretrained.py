"""Train the pretrained spectral models shipped in ``bayes_unmix/pretrained/``.

They are trained on the package's own simulator library (3-inch NaI(Tl), point source in a steel
sphere, 96 thicknesses from 0.001 to 30 mm), 18-1618 keV in 4 keV channels (400 channels), so they
work without any external data. Reproduce them with

    .venv/bin/python scripts/train_pretrained.py --seed 0
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import jax

import bayes_unmix  # noqa: F401  (float64)
from bayes_unmix.data.preprocess import Preprocessing
from bayes_unmix.data.simulate import simulate_library
from bayes_unmix.iae.library_fit import GAMMA_TRAINING, train_spectral_model
from bayes_unmix.pretrained import PRETRAINED_DIR, PRETRAINED_NETWORK, PRETRAINED_NUCLIDES

PREPROCESSING = Preprocessing(raw_channels=2998, emin_kev=18.0, emax_kev=1618.0, rebin=4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=GAMMA_TRAINING.epochs)
    parser.add_argument("--out", type=Path, default=PRETRAINED_DIR)
    args = parser.parse_args()
    library = simulate_library(PRETRAINED_NUCLIDES)
    config = dataclasses.replace(GAMMA_TRAINING, epochs=args.epochs)
    for joint in (True, False):
        name = f"nai3_steel_{'joint' if joint else 'individual'}"
        start = time.perf_counter()
        model = train_spectral_model(
            library,
            joint=joint,
            key=jax.random.key(args.seed),
            preprocessing=PREPROCESSING,
            network=PRETRAINED_NETWORK,
            config=config,
            progress=True,
            record={
                "command": f"scripts/train_pretrained.py --seed {args.seed} --epochs {args.epochs}",
                "seed": args.seed,
            },
        )
        path = model.save(args.out / f"{name}.npz")
        print(f"{name}: {time.perf_counter() - start:.0f} s, {path.stat().st_size / 1e6:.2f} MB -> {path}")


if __name__ == "__main__":
    main()
