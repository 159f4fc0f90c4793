"""Physical units for latent weights and counts: parameter maps and efficiency models.

* :class:`ParameterMap` turns barycentric weights into the library's physical parameter (shield
  thickness in mm), so posteriors can be reported in physical units. With two anchors the weight
  ``u = lambda_2`` (0 at the first anchor, 1 at the second) is mapped by a monotone
  piecewise-linear curve fitted to the projected training spectra (isotonic regression); with more
  anchors, by least squares affine in the weights.
* :class:`EfficiencyModel` gives the expected counts per decay ``eta(p)`` inside the model's energy
  window as a function of the parameter: a cubic polynomial fitted to ``log eta`` over the library
  grid, or (for curves with kinks, e.g. Co57 behind lead, where a weak high-energy line takes over)
  ``log eta`` interpolated piecewise-linearly between the grid points. Activity then follows as
  ``A = counts / (eta(p) * live_time)``.

Both are small frozen dataclasses of plain numbers (JSON-serialisable); their ``__call__`` uses
``jax.numpy`` so models can differentiate through them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["EfficiencyModel", "ParameterMap", "isotonic_increasing"]


def isotonic_increasing(y: np.ndarray) -> np.ndarray:
    """Least-squares non-decreasing fit of ``y`` (pool-adjacent-violators).

    >>> isotonic_increasing(np.array([1.0, 3.0, 2.0, 4.0])).tolist()
    [1.0, 2.5, 2.5, 4.0]
    """
    blocks: list[list[float]] = []  # [mean, weight]
    for value in np.asarray(y, float):
        blocks.append([value, 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            (m2, w2), (m1, w1) = blocks.pop(), blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2])
    return np.concatenate([np.full(int(w), m) for m, w in blocks])


@dataclasses.dataclass(frozen=True)
class ParameterMap:
    """Map from barycentric weights ``(..., d)`` to a physical parameter ``(...)``.

    ``kind="monotone"``: ``p = interp(lambda[..., 1], knots_u, knots_p)`` (two anchors);
    ``kind="affine"``: ``p = lambda @ coefficients``.
    """

    kind: str
    knots_u: tuple[float, ...] = ()
    knots_p: tuple[float, ...] = ()
    coefficients: tuple[float, ...] = ()

    @classmethod
    def fit(cls, weights: np.ndarray, values: np.ndarray) -> ParameterMap:
        """Fit to projected training weights ``(N, d)`` and their parameter values ``(N,)``."""
        weights, values = np.asarray(weights, float), np.asarray(values, float)
        if weights.shape[-1] != 2:
            coefficients, *_ = np.linalg.lstsq(weights, values, rcond=None)
            return cls(kind="affine", coefficients=tuple(coefficients.tolist()))
        u = weights[:, 1]
        order = np.argsort(values)
        # the weight must grow with the parameter: make it so, then invert the monotone relation
        u_fit = isotonic_increasing(u[order])
        u_knots = np.unique(u_fit)
        p_knots = np.array([values[order][u_fit == k].mean() for k in u_knots])
        if len(u_knots) < 2:
            raise ValueError("the projected weights do not vary with the parameter: cannot calibrate")
        return cls(kind="monotone", knots_u=tuple(u_knots.tolist()), knots_p=tuple(p_knots.tolist()))

    def __call__(self, weights: jax.Array) -> jax.Array:
        weights = jnp.asarray(weights)
        if self.kind == "monotone":
            return jnp.interp(weights[..., 1], jnp.asarray(self.knots_u), jnp.asarray(self.knots_p))
        return weights @ jnp.asarray(self.coefficients)

    def inverse(self, parameter: float) -> np.ndarray:
        """Weights ``(2,)`` whose parameter is ``parameter`` (monotone maps only): known shielding."""
        if self.kind != "monotone":
            raise ValueError("only a monotone (two-anchor) parameter map can be inverted")
        if not min(self.knots_p) <= parameter <= max(self.knots_p):
            raise ValueError(
                f"parameter {parameter} outside the calibrated range [{min(self.knots_p)}, {max(self.knots_p)}]"
            )
        u = float(np.interp(parameter, self.knots_p, self.knots_u))
        return np.array([1.0 - u, u])

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ParameterMap:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@dataclasses.dataclass(frozen=True)
class EfficiencyModel:
    """Expected counts per decay in the energy window as a function of the parameter.

    Polynomial (``knots_p`` empty): ``eta(p) = exp(polyval(coefficients, (p - centre) / half_range))``,
    fitted by least squares to ``log eta`` on the library grid; ``max_relative_error`` records the worst
    fit error there. Interpolated: ``eta(p) = exp(interp(p, knots_p, knots_log_eta))`` (exact on the
    grid); ``max_relative_error`` records the worst leave-one-out error at the interior grid points
    (each point predicted from its neighbours, twice the grid spacing: a conservative bound between
    points). Outside the grid the polynomial extrapolates and the interpolation holds the end values.
    """

    coefficients: tuple[float, ...] = ()
    centre: float = 0.0
    half_range: float = 1.0
    max_relative_error: float = 0.0
    knots_p: tuple[float, ...] = ()
    knots_log_eta: tuple[float, ...] = ()

    @classmethod
    def fit(cls, values: np.ndarray, counts_per_decay: np.ndarray, degree: int | None = 3) -> EfficiencyModel:
        """Fit ``eta`` over the parameter ``values`` (``(N,)``): a polynomial of ``degree`` in ``log eta``,
        or, with ``degree=None``, piecewise-linear interpolation of ``log eta`` (needs distinct values).

        >>> t = np.array([0.0, 1.0, 2.0, 4.0])
        >>> model = EfficiencyModel.fit(t, np.exp(-np.array([0.0, 4.0, 5.0, 5.5])), degree=None)
        >>> round(float(model(1.5)), 5), round(model.max_relative_error, 3)
        (0.01111, 3.482)
        """
        values, eta = np.asarray(values, float), np.asarray(counts_per_decay, float)
        if np.any(eta <= 0):
            raise ValueError("counts per decay must be positive")
        if degree is None:
            order = np.argsort(values)
            p, log_eta = values[order], np.log(eta[order])
            if np.any(np.diff(p) <= 0):
                raise ValueError("interpolation needs distinct parameter values")
            loo = [np.interp(p[i], np.delete(p, i), np.delete(log_eta, i)) for i in range(1, p.size - 1)]
            error = float(np.max(np.abs(np.expm1(np.asarray(loo) - log_eta[1:-1])))) if p.size > 2 else 0.0
            return cls(max_relative_error=error, knots_p=tuple(p.tolist()), knots_log_eta=tuple(log_eta.tolist()))
        centre = 0.5 * (values.max() + values.min())
        half = max(0.5 * (values.max() - values.min()), 1e-12)
        coefficients = np.polyfit((values - centre) / half, np.log(eta), degree)
        fitted = np.exp(np.polyval(coefficients, (values - centre) / half))
        return cls(tuple(coefficients.tolist()), float(centre), float(half), float(np.max(np.abs(fitted / eta - 1))))

    def __call__(self, parameter: jax.Array) -> jax.Array:
        if self.knots_p:
            knots_p, knots_log_eta = jnp.asarray(self.knots_p), jnp.asarray(self.knots_log_eta)
            return jnp.exp(jnp.interp(jnp.asarray(parameter), knots_p, knots_log_eta))
        x = (jnp.asarray(parameter) - self.centre) / self.half_range
        return jnp.exp(jnp.polyval(jnp.asarray(self.coefficients), x))

    def to_dict(self) -> dict[str, Any]:
        """Plain fields; a polynomial model leaves out the empty knots (files written as before them)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v != () or not k.startswith("knots_")}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EfficiencyModel:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})
