"""Train the pretrained spectral models shipped in ``bayes_unmix/pretrained/``.

They are trained on the package's own simulator library (3-inch NaI(Tl), point source in a spherical
shield), 18-1618 keV in 4 keV channels (400 channels), so they work without any external data:

* ``--material steel`` (default): ``nai3_steel_joint`` and ``nai3_steel_individual``, 96 steel
  thicknesses from 0.001 to 30 mm (the published Geant4 grid);
* ``--material lead``: ``nai3_lead_joint`` only (same nuclides, network, preprocessing, training recipe
  and seed handling as the steel joint model), on :data:`LEAD_GRID_MM`, the steel grid halved:
  96 thicknesses from 0.0005 to 15 mm. Lead attenuates 2.2 times more than steel at 662 keV
  (0.126 against 0.058 /mm) and 1.6 times more at 1332 keV, so 15 mm of lead leaves Cs137's line
  about what 30 mm of steel does (transmission 0.15 against 0.18) and Co60's a little more (0.38
  against 0.29); at low energy lead is far more opaque (122 keV: 3.8 /mm, 18 times steel, so Co57's
  main line falls to 1e-3 after 1.8 mm; 356 keV: 0.33 /mm, Ba133's main line at 4 % after 10 mm and
  0.7 % at 15 mm). The 0.05 mm steps up to 1 mm (five per 1/e length at 122 keV) follow the fast
  low-energy changes; beyond about 2 mm the Co57 signature is the weak 692 keV line (0.15 %) and the
  Pb K X-rays. That kink makes Co57's log-efficiency far from a cubic (which would be off by up to a
  factor 3.7 on the grid), so the lead model's efficiencies interpolate ``log eta`` between the grid
  thicknesses (:class:`~bayes_unmix.iae.calibration.EfficiencyModel`). The steel models interpolate
  too: a cubic missed Ba133's efficiency by up to 28 % below 0.1 mm of steel (its 31-35 keV X-rays).

Reproduce them with

    .venv/bin/python scripts/train_pretrained.py --seed 0
    .venv/bin/python scripts/train_pretrained.py --material lead --seed 0
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import jax

import bayes_unmix  # noqa: F401  (float64)
from bayes_unmix.data.preprocess import Preprocessing
from bayes_unmix.data.simulate import THICKNESS_GRID_MM, simulate_library
from bayes_unmix.iae.library_fit import GAMMA_TRAINING, train_spectral_model
from bayes_unmix.pretrained import PRETRAINED_DIR, PRETRAINED_NETWORK, PRETRAINED_NUCLIDES

PREPROCESSING = Preprocessing(raw_channels=2998, emin_kev=18.0, emax_kev=1618.0, rebin=4)
#: Lead thicknesses (mm): the steel grid halved (0.0005-15 mm, see the module docstring).
LEAD_GRID_MM = THICKNESS_GRID_MM / 2.0
#: Per material: shield thicknesses (None: the simulator's steel grid), models (joint?), efficiency degree.
MATERIALS = {"steel": (None, (True, False), None), "lead": (LEAD_GRID_MM, (True,), None)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--material", choices=list(MATERIALS), default="steel")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=GAMMA_TRAINING.epochs)
    parser.add_argument("--out", type=Path, default=PRETRAINED_DIR)
    args = parser.parse_args()
    thickness_mm, kinds, efficiency_degree = MATERIALS[args.material]
    library = simulate_library(PRETRAINED_NUCLIDES, thickness_mm, material=args.material)
    config = dataclasses.replace(GAMMA_TRAINING, epochs=args.epochs)
    command = f"scripts/train_pretrained.py --seed {args.seed} --epochs {args.epochs}"
    if args.material != "steel":
        command += f" --material {args.material}"
    for joint in kinds:
        name = f"nai3_{args.material}_{'joint' if joint else 'individual'}"
        start = time.perf_counter()
        model = train_spectral_model(
            library,
            joint=joint,
            key=jax.random.key(args.seed),
            preprocessing=PREPROCESSING,
            network=PRETRAINED_NETWORK,
            config=config,
            progress=True,
            record={"command": command, "seed": args.seed},
            efficiency_degree=efficiency_degree,
        )
        path = model.save(args.out / f"{name}.npz")
        print(f"{name}: {time.perf_counter() - start:.0f} s, {path.stat().st_size / 1e6:.2f} MB -> {path}")


if __name__ == "__main__":
    main()
