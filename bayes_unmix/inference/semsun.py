"""JAX reproductions of the published SEMSUN unmixing schemes (Phan et al., NIMA 1060 (2024) 169028),
for comparison with the Bayesian estimates of this package.

Model (see :mod:`bayes_unmix.models.gamma`): counts ``y`` over ``n`` window channels,

    y ~ Poisson(X a),   X = [b, X_1(lambda), ..., X_S(lambda)]   (n, K = S + 1),

every column unit-sum, ``a >= 0`` the expected counts per component in the window (background
first). The cost is the Poisson negative log-likelihood up to a constant,

    L(a, X) = sum_m [(X a)_m - y_m log (X a)_m]     (= D(y || X a) + const),

and SEMSUN minimises it by block-coordinate descent (no convergence proof); per outer iteration:

1. **a-step (NNPU)**: multiplicative EM updates ``a <- a * X^T (y / X a)`` (columns unit-sum, so no
   normalisation), background included, until ``mean |Δa| / a < inner_tol`` or ``inner_max_iter``;
2. **X-step**: with two anchors ``lambda = (1 - u, u)`` and ``u`` in a box (the mixture's
   ``weight_box``; published: [-0.007, 1.007]), a bounded 1-D minimisation in ``u``:

   * joint (SEMSUN-j): ``u = argmin_u L(a, [b, Psi_1(u), ..., Psi_S(u)])``, one ``u`` for all;
   * individual (SEMSUN-i): Gauss-Seidel over nuclides, ``u_i = argmin L(z_i + a_i Psi_i(u_i))``
     with ``z_i = a_bkg b + sum_{j != i} a_j X_j`` the current contribution of the others.

   The published SciPy SLSQP (finite differences) is replaced by a coarse grid over the box followed
   by golden-section search in the bracket of the best grid point, all under ``jit``; the new ``u``
   is accepted only if it does not increase the cost, which makes the descent monotone.

Stop: ``max(||Δa|| / ||a||, ||ΔX|| / ||X||) < tol`` (Frobenius norms, nuclide columns of X) or
``max_iter`` outer iterations. The outer loop is a fixed-length ``lax.scan`` with a convergence
mask (the state is frozen once converged), so everything is ``jit``-compiled and ``vmap``-ped over
spectra; it also returns the cost after every iteration.

**Initialisation** (published): ``X0`` = the thinnest-shield signatures (``u = 0``), ``a0 = sum(y) / K``
for every component. Individual: as published. Joint: the published NMF + fast-interpolation
initialisation of ``lambda0`` (100 multiplicative NMF updates of X, then IAE projection) is
**replaced** by a coarse grid over ``u``: the grid value whose EM counts have the highest likelihood.

Baselines: :func:`nnpu` (the "oracle" when given the true signatures) and :func:`poisson_nmf` (the
published NMF baseline: KL multiplicative updates of both ``a`` and ``X`` from the same
initialisation, background column frozen).

Not reproduced: the optional per-source amplitude co-fit inside the published X-step (its
amplitudes are re-estimated by the next a-step anyway).
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

from bayes_unmix.iae.spectral_model import SpectralModel
from bayes_unmix.models.gamma import GammaMixture

__all__ = ["SemsunConfig", "nnpu", "poisson_cost", "poisson_nmf", "semsun"]

_TINY = 1e-30  # rate floor: log and division stay finite where a template is exactly zero
_GOLDEN = 0.5 * (np.sqrt(5.0) - 1.0)  # 0.618...


@dataclasses.dataclass(frozen=True)
class SemsunConfig:
    """Settings of the SEMSUN reproduction.

    ``max_iter`` / ``tol``: outer iterations and stopping tolerance (``tol=None``: the published
    notebooks' 1e-6 joint, 1e-5 individual). ``inner_max_iter`` / ``inner_tol``: NNPU stopping
    rule. ``grid`` / ``golden_iter``: coarse grid points over the box and golden-section iterations
    of the X-step (the bracket shrinks by 0.618 per iteration; 40 gives ~1e-9 in ``u``).
    ``init_grid`` / ``init_em``: the joint initialisation grid and EM iterations per grid point.
    """

    max_iter: int = 100
    tol: float | None = None
    inner_max_iter: int = 1000
    inner_tol: float = 1e-6
    grid: int = 21
    golden_iter: int = 40
    init_grid: int = 21
    init_em: int = 100


# --------------------------------------------------------------------------- building blocks


def poisson_cost(rate: jax.Array, counts: jax.Array) -> jax.Array:
    """Poisson NLL up to a constant, ``sum_m rate_m - y_m log rate_m`` (rate, counts: ``(..., n)``)."""
    rate = jnp.maximum(rate, _TINY)
    return jnp.sum(rate - counts * jnp.log(rate), axis=-1)


def _nnpu(templates: jax.Array, counts: jax.Array, a0: jax.Array, max_iter: int, tol: float) -> jax.Array:
    """NNPU multiplicative updates ``a <- a * X^T (y / X a)`` for unit-sum ``templates`` (K, n).

    Stops when ``mean_k |Δa_k| / a_k < tol`` or after ``max_iter`` updates (``lax.while_loop``; under
    ``vmap`` it runs until every spectrum has stopped, stopped ones unchanged).
    """

    def update(a):
        return a * (templates @ (counts / jnp.maximum(a @ templates, _TINY)))

    def cond(state):
        _, change, it = state
        return (change >= tol) & (it < max_iter)

    def body(state):
        a, _, it = state
        new = update(a)
        change = jnp.mean(jnp.abs(new - a) / jnp.maximum(a, _TINY))
        return new, change, it + 1

    a, _, _ = jax.lax.while_loop(cond, body, (a0, jnp.asarray(jnp.inf, a0.dtype), 0))
    return a


@functools.partial(jax.jit, static_argnames=("max_iter",))
def nnpu(
    templates: jax.Array, counts: jax.Array, a0: jax.Array | None = None, *, max_iter: int = 1000, tol: float = 1e-6
):
    """Poisson maximum-likelihood counts for **known** unit-sum templates (the "oracle" of SEMSUN).

    Parameters
    ----------
    templates:
        ``(K, n)`` unit-sum signatures (background first if any).
    counts:
        ``(n,)`` or ``(B, n)`` observed counts.
    a0:
        Initial counts ``(K,)`` / ``(B, K)``; default ``sum(y) / K`` for every component (published).

    Returns the counts ``a`` ``(K,)`` / ``(B, K)`` (expected counts per component in the window).
    """
    templates = jnp.asarray(templates, jnp.float64)
    counts = jnp.asarray(counts, jnp.float64)
    if a0 is None:
        a0 = jnp.broadcast_to(
            counts.sum(-1, keepdims=True) / templates.shape[0], (*counts.shape[:-1], templates.shape[0])
        )
    solve = lambda y, a: _nnpu(templates, y, a, max_iter, tol)
    return solve(counts, a0) if counts.ndim == 1 else jax.vmap(solve)(counts, a0)


def _golden_min(f, lo: jax.Array, hi: jax.Array, n_grid: int, n_iter: int) -> tuple[jax.Array, jax.Array]:
    """Minimise a scalar ``f`` on ``[lo, hi]``: best of a grid of ``n_grid`` points, then golden-section
    search in the bracket of its neighbours. Returns ``(u, f(u))``."""
    grid = jnp.linspace(lo, hi, n_grid)
    values = jax.vmap(f)(grid)
    k = jnp.argmin(values)
    a, b = grid[jnp.maximum(k - 1, 0)], grid[jnp.minimum(k + 1, n_grid - 1)]

    def step(state, _):
        a, b, c, d, fc, fd = state
        left = fc < fd  # minimum in [a, d]
        a2, b2 = jnp.where(left, a, c), jnp.where(left, d, b)
        c2 = jnp.where(left, b2 - _GOLDEN * (b2 - a2), d)
        d2 = jnp.where(left, c, a2 + _GOLDEN * (b2 - a2))
        fnew = f(jnp.where(left, c2, d2))  # one new evaluation per iteration
        return (a2, b2, c2, d2, jnp.where(left, fnew, fd), jnp.where(left, fc, fnew)), None

    c, d = b - _GOLDEN * (b - a), a + _GOLDEN * (b - a)
    (a, b, c, d, fc, fd), _ = jax.lax.scan(step, (a, b, c, d, f(c), f(d)), None, length=n_iter)
    u, fu = jnp.where(fc < fd, c, d), jnp.minimum(fc, fd)
    better = fu < values[k]  # the grid point itself may be best (edge of the box)
    return jnp.where(better, u, grid[k]), jnp.where(better, fu, values[k])


# --------------------------------------------------------------------------- signatures of u


def _weights(u: jax.Array) -> jax.Array:
    return jnp.stack([1.0 - u, u], axis=-1)


def _decode_shared(sm: SpectralModel, u: jax.Array) -> jax.Array:
    """All nuclides' unit-sum signatures ``(S, n)`` at one shared ``u`` (scalar)."""
    return sm.signatures(jnp.broadcast_to(_weights(u), (sm.n_latents, 2)))


def _decode_one(sm: SpectralModel, i: int, u: jax.Array) -> jax.Array:
    """Nuclide ``i``'s unit-sum signature ``(n,)`` at its own ``u`` (decodes only its IAE if individual)."""
    if sm.joint:
        return sm.signatures(_weights(u)[None])[i]
    name = sm.nuclides[i]
    iae = sm.iaes[name]
    raw = iae.decode(_weights(u) @ iae.anchor_codes())[0]
    raw = jnp.maximum(raw, 0.0) * jnp.asarray(sm.preprocessing.support(name), raw.dtype)
    return raw / jnp.sum(raw)


# --------------------------------------------------------------------------- SEMSUN


def _check(mix: GammaMixture) -> SpectralModel:
    sm = mix.spectral_model
    if sm is None or sm.n_anchors != 2:
        raise ValueError("SEMSUN needs a mixture with an IAE spectral model of two anchors")
    if mix.known_weights is not None:
        raise ValueError("the shielding is known (known_weights): use nnpu on the fixed templates")
    if mix.absent:
        raise ValueError("SEMSUN fits every nuclide: build the mixture without absent nuclides")
    return sm


def _build(mix: GammaMixture, joint: bool, config: SemsunConfig):
    """The single-spectrum SEMSUN solver ``counts (n,) -> dict`` (pure JAX)."""
    sm = _check(mix)
    if config.max_iter < 1:
        raise ValueError("max_iter must be at least 1")
    n_nuc = len(mix.nuclides)
    lo, hi = (float(v) for v in mix.weight_box)
    tol = config.tol if config.tol is not None else (1e-6 if joint else 1e-5)
    bkg = None if mix.background is None else jnp.asarray(mix.background, jnp.float64)
    n_lat = 1 if joint else n_nuc

    def signatures(u):  # u: (n_lat,) -> (S, n)
        if joint:
            return _decode_shared(sm, u[0])
        return jnp.stack([_decode_one(sm, i, u[i]) for i in range(n_nuc)])

    def templates(sig):
        return sig if bkg is None else jnp.concatenate([bkg[None], sig])

    def x_step(a, u, sig, counts):
        """New ``u`` and signatures: bounded 1-D minimisation(s), kept only when the cost decreases."""
        a_nuc = a[-n_nuc:]
        if joint:
            base = 0.0 if bkg is None else a[0] * bkg
            cost = lambda v: poisson_cost(base + a_nuc @ _decode_shared(sm, v), counts)
            v, fv = _golden_min(cost, lo, hi, config.grid, config.golden_iter)
            keep = fv <= cost(u[0])
            u = jnp.where(keep, v, u[0])[None]
            return u, signatures(u)
        # Gauss-Seidel: nuclide i against the current (already updated) contribution of the others
        rows, us = list(sig), list(u)
        for i in range(n_nuc):
            others = a_nuc @ jnp.stack(rows) - a_nuc[i] * rows[i] + (0.0 if bkg is None else a[0] * bkg)
            cost = lambda v, i=i, z=others: poisson_cost(z + a_nuc[i] * _decode_one(sm, i, v), counts)
            v, fv = _golden_min(cost, lo, hi, config.grid, config.golden_iter)
            keep = fv <= cost(us[i])
            us[i] = jnp.where(keep, v, us[i])
            rows[i] = jnp.where(keep, _decode_one(sm, i, us[i]), rows[i])
        return jnp.stack(us), jnp.stack(rows)

    def init(counts):
        n_comp = n_nuc + (bkg is not None)
        a0 = jnp.full(n_comp, counts.sum() / n_comp)
        if not joint:
            return a0, jnp.zeros(n_lat)  # published: X0 at u = 0 (thinnest shield)
        # joint: coarse grid over u (replaces the published NMF + fast interpolation)
        grid = jnp.linspace(lo, hi, config.init_grid)

        def score(v):
            t = templates(_decode_shared(sm, v))
            a = jax.lax.fori_loop(0, config.init_em, lambda _, a: a * (t @ (counts / jnp.maximum(a @ t, _TINY))), a0)
            return poisson_cost(a @ t, counts)

        return a0, grid[jnp.argmin(jax.vmap(score)(grid))][None]

    def solve(counts):
        a, u = init(counts)
        sig = signatures(u)

        def outer(state, _):
            a, u, sig, done, n_it = state
            a_new = _nnpu(templates(sig), counts, a, config.inner_max_iter, config.inner_tol)
            u_new, sig_new = x_step(a_new, u, sig, counts)
            change = jnp.maximum(
                jnp.linalg.norm(a_new - a) / jnp.linalg.norm(a_new),
                jnp.linalg.norm(sig_new - sig) / jnp.linalg.norm(sig_new),
            )
            # convergence mask: once converged, the state stays frozen
            a, u, sig = (jnp.where(done, old, new) for old, new in ((a, a_new), (u, u_new), (sig, sig_new)))
            n_it = n_it + (~done)
            done = done | (change < tol)
            return (a, u, sig, done, n_it), poisson_cost(a @ templates(sig), counts)

        state0 = (a, u, sig, jnp.asarray(False), jnp.asarray(0))
        (a, u, sig, done, n_it), history = jax.lax.scan(outer, state0, None, length=config.max_iter)
        return {
            "counts": a,
            "u": u,
            "signatures": sig,
            "cost": history[-1],
            "cost_history": history,
            "n_iter": n_it,
            "converged": done,
        }

    return solve


@functools.lru_cache(maxsize=16)
def _compiled(mix: GammaMixture, joint: bool, config: SemsunConfig):
    return jax.jit(jax.vmap(_build(mix, joint, config)))


def semsun(
    mix: GammaMixture,
    counts: np.ndarray,
    *,
    joint: bool | None = None,
    max_iter: int | None = None,
    tol: float | None = None,
    config: SemsunConfig = SemsunConfig(),
) -> dict[str, np.ndarray]:
    """SEMSUN-j (``joint=True``) or SEMSUN-i (``joint=False``) for one spectrum ``(n,)`` or a batch ``(B, n)``.

    ``joint=None`` follows the mixture's spectral model; a joint IAE can also run the individual
    scheme (each nuclide's row decoded at its own ``u``) and an individual model the joint one.
    ``max_iter`` / ``tol`` override ``config``.

    Returns numpy arrays (leading ``B`` axis when a batch was given): ``counts`` ``(K,)`` (expected
    counts, background first), ``u`` ``(n_latents,)`` (1 joint, S individual; weights = (1 - u, u)),
    ``signatures`` ``(S, n)``, ``cost`` (final Poisson NLL up to a constant), ``cost_history``
    ``(max_iter,)`` (after each outer iteration), ``n_iter`` and ``converged``.
    """
    _check(mix)
    joint = mix.spectral_model.joint if joint is None else bool(joint)
    overrides = {k: v for k, v in (("max_iter", max_iter), ("tol", tol)) if v is not None}
    config = dataclasses.replace(config, **overrides)
    y = jnp.asarray(counts, jnp.float64)
    if y.shape[-1] != mix.n_channels or y.ndim not in (1, 2):
        raise ValueError(f"counts must have shape ({mix.n_channels},) or (batch, {mix.n_channels}), got {y.shape}")
    out = _compiled(mix, joint, config)(y[None] if y.ndim == 1 else y)
    return {k: np.asarray(v[0] if y.ndim == 1 else v) for k, v in out.items()}


# --------------------------------------------------------------------------- NMF baseline


def _nmf_one(counts, x0, a0, n_frozen: int, max_iter: int, tol: float):
    """KL multiplicative NMF of one spectrum: X columns ``k >= n_frozen`` and all of ``a``."""
    free = (jnp.arange(x0.shape[0]) >= n_frozen)[:, None]

    def step(state, _):
        x, a, done = state
        ratio = counts / jnp.maximum(a @ x, _TINY)
        # Lee-Seung KL update for one column of data: X_mk <- X_mk (y_m / (Xa)_m) a_k / a_k
        x_new = jnp.where(free, x * ratio[None, :], x)
        scale = x_new.sum(-1)  # renormalise columns to unit sum, scale into a (X a unchanged)
        x_new, a_new = x_new / scale[:, None], a * scale
        a_new = a_new * (x_new @ (counts / jnp.maximum(a_new @ x_new, _TINY)))
        change = jnp.maximum(
            jnp.linalg.norm(a_new - a) / jnp.linalg.norm(a_new), jnp.linalg.norm(x_new - x) / jnp.linalg.norm(x_new)
        )
        x, a = jnp.where(done, x, x_new), jnp.where(done, a, a_new)
        return (x, a, done | (change < tol)), None

    (x, a, _), _ = jax.lax.scan(step, (x0, a0, jnp.asarray(False)), None, length=max_iter)
    return a, x


@functools.partial(jax.jit, static_argnames=("n_frozen", "max_iter"))
def poisson_nmf(
    counts: jax.Array,
    x0: jax.Array,
    a0: jax.Array | None = None,
    *,
    n_frozen: int = 1,
    max_iter: int = 1000,
    tol: float = 1e-6,
) -> tuple[jax.Array, jax.Array]:
    """The published NMF baseline: KL (Poisson) multiplicative updates of both ``a`` and ``X``.

    Per iteration ``X_mk <- X_mk y_m / (X a)_m`` for the free columns (the first ``n_frozen``, i.e. the
    background, stay fixed), columns renormalised to unit sum with the scale moved into ``a``, then
    ``a <- a * X^T (y / X a)``; stops on ``max(||Δa|| / ||a||, ||ΔX|| / ||X||) < tol``.

    ``counts`` ``(n,)`` or ``(B, n)``; ``x0`` ``(K, n)`` unit-sum initial templates (background first);
    ``a0`` default ``sum(y) / K``. Returns ``(a (..., K), X (..., K, n))``.
    """
    counts = jnp.asarray(counts, jnp.float64)
    x0 = jnp.asarray(x0, jnp.float64)
    if a0 is None:
        a0 = jnp.broadcast_to(counts.sum(-1, keepdims=True) / x0.shape[0], (*counts.shape[:-1], x0.shape[0]))
    solve = lambda y, a: _nmf_one(y, x0, a, n_frozen, max_iter, tol)
    return solve(counts, a0) if counts.ndim == 1 else jax.vmap(solve)(counts, a0)
