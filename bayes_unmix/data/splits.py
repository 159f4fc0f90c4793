"""Train/test splits of published libraries, stored explicitly so results do not depend on a RNG.

:data:`SEMSUN_TEST_MM` is the test set of the Geant4 steel library (25 of 96 thicknesses); the
other 71, including the anchors 0.001 mm and 30 mm, train. SEMSUN's recipe drew 18 of the 24 thin
(0.01-2.0 mm) and 51 of the 70 thick (2.4-29.6 mm) spectra with ``np.random.seed(100)``; its exact
draw is not published, so this is that recipe's draw with ``np.random.RandomState(100)``
(``choice`` without replacement, thin first). Its test set contains 5.2 mm, the thickness of the
published unmixing experiment.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SEMSUN_TEST_MM", "semsun_split"]

SEMSUN_TEST_MM = (
    0.07, 0.4, 0.5, 0.7, 1.2, 1.3, 2.8, 3.2, 4.0, 5.2, 7.5, 7.9, 8.7,
    9.9, 13.0, 14.2, 14.6, 15.8, 18.6, 20.9, 21.7, 24.1, 25.7, 27.6, 29.2,
)  # fmt: skip


def semsun_split(thickness_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, test)`` of the SEMSUN split on a thickness grid that contains all test values."""
    thickness_mm = np.asarray(thickness_mm, float)
    test = np.array([int(np.argmin(np.abs(thickness_mm - t))) for t in SEMSUN_TEST_MM])
    if not np.allclose(thickness_mm[test], SEMSUN_TEST_MM, atol=1e-6):
        raise ValueError("the thickness grid does not contain the SEMSUN test thicknesses")
    return np.setdiff1d(np.arange(thickness_mm.size), test), test
