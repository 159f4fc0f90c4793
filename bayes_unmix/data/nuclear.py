"""Embedded nuclear and photon-attenuation data for the gamma-ray simulator (no download needed).

Line data
    Energies (keV) and emission probabilities per decay of the parent, main gamma and X-ray lines
    (together at least 90 % of the photon intensity above 10 keV). Values are rounded evaluated data
    from DDEP (LNHB "Table de Radionucléides", recommended data) and ENSDF/NuDat 3; X-ray groups are
    lumped into Kα2, Kα1, Kβ (or Lα, Lβ, Lγ) lines at their intensity-weighted energies. Chain
    members carry their branching: ``Tl208`` lines are per ²⁰⁸Tl decay multiplied by the 0.3594
    branch of ²¹²Bi, so that all Th-chain entries are per decay of the chain in equilibrium.

Attenuation data
    Total mass attenuation coefficients μ/ρ (cm²/g, coherent scattering included) from NIST XCOM /
    Hubbell & Seltzer, NISTIR 5632 (public domain), on the standard 10 keV - 3 MeV grid.
    Absorption edges inside the range (I K 33.17 keV, Pb K 88.00 keV) are given as two points at
    the same energy (below, above). Interpolate with :func:`mass_attenuation` (log-log).
    Above 800 keV the values are Compton (Klein-Nishina) dominated and include pair production
    above 1022 keV, as tabulated by XCOM.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "ATTENUATION",
    "BACKGROUND_CHAINS",
    "DENSITY_G_CM3",
    "ELECTRONS_PER_GRAM_RATIO",
    "IODINE_K_XRAY_KEV",
    "LEAD_K_XRAYS",
    "LINES",
    "mass_attenuation",
]

# (energy keV, photons per decay). Source: DDEP recommended values (2010-2020 evaluations), ENSDF.
LINES: dict[str, tuple[tuple[float, float], ...]] = {
    "Co57": (
        (14.41, 0.0916),
        (122.06, 0.856),
        (136.47, 0.1068),
        (692.41, 0.00149),
        (6.40, 0.0),
    ),  # Fe K X-rays (6.4 keV) are below any useful threshold: weight 0
    "Co60": ((1173.23, 0.9985), (1332.49, 0.9998)),
    "Ba133": (
        (30.63, 0.339),
        (30.97, 0.624),
        (35.0, 0.229),
        (53.16, 0.0214),
        (79.61, 0.0265),
        (81.00, 0.329),
        (160.61, 0.0064),
        (223.24, 0.0045),
        (276.40, 0.0716),
        (302.85, 0.1834),
        (356.01, 0.6205),
        (383.85, 0.0894),
    ),
    "Cs137": ((31.82, 0.0199), (32.19, 0.0364), (36.5, 0.0133), (661.66, 0.8470)),
    "Am241": ((13.9, 0.131), (17.8, 0.186), (20.8, 0.048), (26.34, 0.0231), (59.54, 0.3592)),
    "Eu152": (
        (39.52, 0.208),
        (40.12, 0.377),
        (45.4, 0.147),
        (121.78, 0.2841),
        (244.70, 0.0755),
        (344.28, 0.2659),
        (411.12, 0.0224),
        (443.96, 0.0312),
        (778.90, 0.1297),
        (867.38, 0.0424),
        (964.08, 0.1450),
        (1085.84, 0.1013),
        (1089.74, 0.0173),
        (1112.08, 0.1341),
        (1212.95, 0.0142),
        (1299.14, 0.0163),
        (1408.01, 0.2085),
    ),
    "Y88": ((14.1, 0.52), (15.8, 0.09), (898.04, 0.937), (1836.06, 0.992)),
    "Bi207": (
        (72.80, 0.217),
        (74.97, 0.366),
        (84.9, 0.131),
        (87.3, 0.039),
        (569.70, 0.9775),
        (1063.66, 0.745),
        (1770.23, 0.0687),
    ),
    "I131": (
        (29.7, 0.039),
        (33.6, 0.009),
        (80.19, 0.0262),
        (284.31, 0.0612),
        (364.49, 0.815),
        (636.99, 0.0716),
        (722.91, 0.0177),
    ),
    "Tc99m": ((18.3, 0.061), (20.6, 0.012), (140.51, 0.885)),
    "Ga67": (
        (8.6, 0.0),
        (91.27, 0.0311),
        (93.31, 0.3881),
        (184.58, 0.2141),
        (208.95, 0.0246),
        (300.22, 0.1664),
        (393.53, 0.0456),
        (887.69, 0.0015),
    ),
    "I123": ((27.2, 0.246), (27.47, 0.457), (31.0, 0.16), (158.97, 0.833), (528.96, 0.0139)),
    "K40": ((1460.82, 0.1066),),
    # U-238 chain (per decay in secular equilibrium); Pb214 and Bi214 from DDEP / ENSDF
    "Pb214": (
        (53.23, 0.0107),
        (74.8, 0.063),
        (77.1, 0.107),
        (87.2, 0.048),
        (241.99, 0.0727),
        (295.22, 0.193),
        (351.93, 0.376),
    ),
    "Bi214": (
        (609.31, 0.461),
        (768.36, 0.0489),
        (934.06, 0.0310),
        (1120.29, 0.151),
        (1155.19, 0.0163),
        (1238.11, 0.0583),
        (1377.67, 0.0399),
        (1407.98, 0.0239),
        (1509.23, 0.0213),
        (1729.60, 0.0288),
        (1764.49, 0.154),
        (1847.42, 0.0203),
        (2118.55, 0.0116),
        (2204.21, 0.0491),
        (2447.86, 0.0155),
    ),
    # Th-232 chain
    "Ac228": (
        (129.07, 0.0242),
        (209.25, 0.0389),
        (270.25, 0.0346),
        (328.00, 0.0295),
        (338.32, 0.1127),
        (463.00, 0.0440),
        (794.95, 0.0425),
        (835.71, 0.0161),
        (911.20, 0.258),
        (964.77, 0.0499),
        (968.97, 0.158),
        (1588.19, 0.0322),
        (1630.63, 0.0151),
    ),
    "Pb212": ((74.8, 0.104), (77.1, 0.174), (87.2, 0.080), (238.63, 0.436), (300.09, 0.0330)),
    "Bi212": ((727.33, 0.0667), (785.37, 0.0110), (1620.50, 0.0147)),
    "Tl208": tuple(
        (e, p * 0.3594)
        for e, p in (
            (277.37, 0.066),
            (510.77, 0.226),
            (583.19, 0.845),
            (763.13, 0.018),
            (860.56, 0.125),
            (2614.51, 0.9920),
        )
    ),
}

#: Natural background families: member nuclides, all per decay of the chain head in equilibrium.
BACKGROUND_CHAINS: dict[str, tuple[str, ...]] = {
    "K40": ("K40",),
    "U238": ("Pb214", "Bi214"),
    "Th232": ("Ac228", "Pb212", "Bi212", "Tl208"),
}

#: Pb K X-rays (keV, relative intensity per K vacancy × fluorescence yield 0.96): Kα2, Kα1, Kβ1, Kβ2.
LEAD_K_XRAYS: tuple[tuple[float, float], ...] = ((72.80, 0.266), (74.97, 0.443), (84.94, 0.154), (87.30, 0.042))
#: Mean iodine K X-ray energy (keV) escaping from NaI (Kα 28.3-28.6, Kβ 32.3; weighted ≈ 28.6).
IODINE_K_XRAY_KEV = 28.6

DENSITY_G_CM3: dict[str, float] = {
    "steel": 7.874,
    "lead": 11.35,
    "water": 1.0,
    "concrete": 2.3,
    "nai": 3.667,
    "aluminium": 2.699,
}
#: Z/A (mol/g): electrons per gram = Z/A × N_A; used for the Klein-Nishina scattering term.
ELECTRONS_PER_GRAM_RATIO: dict[str, float] = {
    "steel": 0.46557,
    "lead": 0.39575,
    "water": 0.55508,
    "concrete": 0.49909,
    "nai": 0.42697,
    "aluminium": 0.48181,
}

_GRID_KEV = (10, 15, 20, 30, 40, 50, 60, 80, 100, 150, 200, 300, 400, 500, 600, 800, 1000, 1250, 1500, 2000, 3000)

# Total μ/ρ (cm²/g) with coherent scattering, NIST XCOM / NISTIR 5632 (public domain), on _GRID_KEV.
_TOTAL = {
    "steel": (
        170.6,
        57.08,
        25.68,
        8.176,
        3.629,
        1.958,
        1.205,
        0.5952,
        0.3717,
        0.1964,
        0.1460,
        0.1099,
        0.09400,
        0.08414,
        0.07704,
        0.06699,
        0.05995,
        0.05350,
        0.04883,
        0.04265,
        0.03621,
    ),
    "lead": (
        130.6,
        111.6,
        86.36,
        30.32,
        14.36,
        8.041,
        5.021,
        2.419,
        5.549,
        2.014,
        0.9985,
        0.4031,
        0.2323,
        0.1614,
        0.1248,
        0.08870,
        0.07102,
        0.05876,
        0.05222,
        0.04606,
        0.04234,
    ),
    "water": (
        5.329,
        1.673,
        0.8096,
        0.3756,
        0.2683,
        0.2269,
        0.2059,
        0.1837,
        0.1707,
        0.1505,
        0.1370,
        0.1186,
        0.1061,
        0.09687,
        0.08956,
        0.07865,
        0.07072,
        0.06323,
        0.05754,
        0.04942,
        0.03969,
    ),
    "concrete": (
        26.49,
        8.205,
        3.604,
        1.177,
        0.5745,
        0.3783,
        0.2967,
        0.2236,
        0.1954,
        0.1655,
        0.1489,
        0.1284,
        0.1148,
        0.1047,
        0.09678,
        0.08494,
        0.07638,
        0.06831,
        0.06222,
        0.05355,
        0.04349,
    ),
    "nai": (
        139.2,
        47.2,
        22.1,
        7.30,
        18.6,
        10.6,
        6.50,
        3.10,
        1.73,
        0.614,
        0.328,
        0.164,
        0.115,
        0.0944,
        0.0829,
        0.0691,
        0.0601,
        0.0530,
        0.0480,
        0.0418,
        0.0365,
    ),
    "aluminium": (
        26.23,
        7.955,
        3.441,
        1.128,
        0.5685,
        0.3681,
        0.2778,
        0.2018,
        0.1704,
        0.1378,
        0.1223,
        0.1042,
        0.09276,
        0.08445,
        0.07802,
        0.06841,
        0.06146,
        0.05496,
        0.05006,
        0.04324,
        0.03541,
    ),
}
# K edges inside the grid: (edge keV, μ/ρ just below, μ/ρ just above).
_EDGES = {"lead": (88.0045, 1.910, 7.683), "nai": (33.1694, 5.60, 30.6)}


def _table(material: str) -> tuple[np.ndarray, np.ndarray]:
    energies, values = list(_GRID_KEV), list(_TOTAL[material])
    if material in _EDGES:
        edge, below, above = _EDGES[material]
        i = int(np.searchsorted(energies, edge))
        energies[i:i] = [edge, edge]
        values[i:i] = [below, above]
    return np.asarray(energies, float), np.asarray(values, float)


#: material -> (energies keV, total μ/ρ cm²/g), edges as duplicated energies.
ATTENUATION: dict[str, tuple[np.ndarray, np.ndarray]] = {m: _table(m) for m in _TOTAL}


def mass_attenuation(material: str, energy_kev: np.ndarray | float) -> np.ndarray:
    """Total mass attenuation coefficient μ/ρ (cm²/g) of ``material`` at ``energy_kev`` (keV).

    Log-log interpolation between tabulated points (linear in log E / log μ, the standard way for
    XCOM tables); across an absorption edge the value below the edge is used below it and the value
    above from it on. Energies outside 10 keV - 3 MeV are extrapolated log-linearly from the end
    segments.

    >>> round(float(mass_attenuation("steel", 661.66)), 4)
    0.0735
    """
    if material not in ATTENUATION:
        raise KeyError(f"unknown material {material!r}; known: {sorted(ATTENUATION)}")
    grid, mu = ATTENUATION[material]
    e = np.asarray(energy_kev, float)
    log_e = np.log(np.clip(e, 1.0, None))
    # index of the segment [grid[i], grid[i+1]) containing e (side="right" puts an edge energy above it)
    i = np.clip(np.searchsorted(grid, e, side="right") - 1, 0, len(grid) - 2)
    i = np.where(grid[i + 1] == grid[i], i + 1, i)  # never interpolate across the zero-width edge segment
    i = np.clip(i, 0, len(grid) - 2)
    x0, x1 = np.log(grid[i]), np.log(grid[i + 1])
    y0, y1 = np.log(mu[i]), np.log(mu[i + 1])
    return np.exp(y0 + (y1 - y0) * (log_e - x0) / (x1 - x0))
