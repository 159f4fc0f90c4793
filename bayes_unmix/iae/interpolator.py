"""Barycentric interpolation in latent space: codes to anchor weights and back.

Given anchor codes ``E`` (``d x D``, one row per anchor) and a code ``z``, the weights solve

    min_lambda ||z - lambda E||^2 + eps ||lambda||^2   subject to   sum_a lambda_a = 1,

whose closed form (Lagrange multiplier) is

    lambda = lambda_LS + (1 - 1^T lambda_LS) / (1^T G^-1 1) * 1^T G^-1,   G = E E^T + eps I,
    lambda_LS = z E^T G^-1.

``eps`` is relative: ``eps = reg * ||E E^T||_2`` so that the regularisation does not depend on the
scale of the codes (the published absolute 1e-8 is below float32 resolution).
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl

__all__ = ["Rule", "affine_weights", "barycentric_weights", "project_simplex"]

Rule = Literal["exact", "legacy"]


def _regularised_gram(anchor_codes: jax.Array, reg: float) -> jax.Array:
    gram = anchor_codes @ anchor_codes.T
    scale = jnp.linalg.eigvalsh(gram)[-1]
    return gram + reg * scale * jnp.eye(gram.shape[0], dtype=gram.dtype)


def barycentric_weights(
    codes: jax.Array,
    anchor_codes: jax.Array,
    *,
    reg: float = 1e-8,
    rule: Rule = "exact",
    simplex: bool = False,
) -> jax.Array:
    """Barycentric weights of ``codes`` (``(..., D)``) with respect to ``anchor_codes`` (``(d, D)``).

    Parameters
    ----------
    rule:
        ``"exact"``: constrained least squares with sum exactly one (default). ``"legacy"``: the
        pre-2023 heuristic ``lambda_LS / (sum lambda_LS + 1e-3)``, only for models trained with it.
    simplex:
        Project the weights onto the probability simplex (non-negative, sum one).

    Returns
    -------
    Weights of shape ``(..., d)``.

    Examples
    --------
    >>> import jax.numpy as jnp
    >>> E = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    >>> barycentric_weights(jnp.array([0.25, 0.75]), E).round(6).tolist()
    [0.25, 0.75]
    """
    factor = jsl.cho_factor(_regularised_gram(anchor_codes, reg))
    lam_ls = jsl.cho_solve(factor, anchor_codes @ codes[..., None])[..., 0]
    if rule == "legacy":
        lam = lam_ls / (jnp.sum(lam_ls, axis=-1, keepdims=True) + 1e-3)
    elif rule == "exact":
        g_inv_one = jsl.cho_solve(factor, jnp.ones(anchor_codes.shape[0], dtype=lam_ls.dtype))
        deficit = 1.0 - jnp.sum(lam_ls, axis=-1, keepdims=True)
        lam = lam_ls + deficit * g_inv_one / jnp.sum(g_inv_one)
    else:
        raise ValueError(f"unknown interpolation rule {rule!r}; use 'exact' or 'legacy'")
    return project_simplex(lam) if simplex else lam


def project_simplex(v: jax.Array) -> jax.Array:
    """Euclidean projection of ``v`` (``(..., d)``) onto the probability simplex (sort-based, exact).

    >>> import jax.numpy as jnp
    >>> project_simplex(jnp.array([1.2, -0.2])).tolist()
    [1.0, 0.0]
    """
    d = v.shape[-1]
    u = jnp.flip(jnp.sort(v, axis=-1), axis=-1)
    css = jnp.cumsum(u, axis=-1) - 1.0
    idx = jnp.arange(1, d + 1, dtype=v.dtype)
    support = u - css / idx > 0
    rho = jnp.sum(support, axis=-1, keepdims=True)
    tau = jnp.take_along_axis(css, rho - 1, axis=-1) / rho.astype(v.dtype)
    return jnp.maximum(v - tau, 0.0)


def affine_weights(free: jax.Array) -> jax.Array:
    """Complete ``d - 1`` free weights with ``lambda_d = 1 - sum(free)`` (the sum-to-one chart)."""
    return jnp.concatenate([free, 1.0 - jnp.sum(free, axis=-1, keepdims=True)], axis=-1)
