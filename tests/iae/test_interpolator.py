import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bayes_unmix.iae import affine_weights, barycentric_weights, project_simplex


def constrained_lstsq(z: np.ndarray, E: np.ndarray, eps: float) -> np.ndarray:
    """Brute-force KKT solve of min ||z - lam E||^2 + eps ||lam||^2 s.t. sum lam = 1."""
    d = E.shape[0]
    kkt = np.zeros((d + 1, d + 1))
    kkt[:d, :d] = 2 * (E @ E.T + eps * np.eye(d))
    kkt[:d, d] = kkt[d, :d] = 1.0
    rhs = np.concatenate([2 * E @ z, [1.0]])
    return np.linalg.solve(kkt, rhs)[:d]


@pytest.mark.parametrize("d", [2, 3, 5])
def test_exact_rule_matches_kkt_and_sums_to_one(d):
    rng = np.random.default_rng(d)
    E = rng.normal(size=(d, 12))
    z = rng.normal(size=(7, 12))
    lam = np.asarray(barycentric_weights(jnp.asarray(z), jnp.asarray(E), reg=1e-6))
    eps = 1e-6 * np.linalg.eigvalsh(E @ E.T)[-1]
    expected = np.stack([constrained_lstsq(zi, E, eps) for zi in z])
    np.testing.assert_allclose(lam, expected, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(lam.sum(-1), 1.0, atol=1e-12)


def test_anchor_codes_get_one_hot_weights():
    E = jax.random.normal(jax.random.key(0), (4, 20))
    np.testing.assert_allclose(barycentric_weights(E, E, reg=1e-12), np.eye(4), atol=1e-8)


def test_legacy_rule_and_unknown_rule():
    E = jnp.eye(2)
    lam = barycentric_weights(jnp.array([0.5, 0.5]), E, reg=0.0, rule="legacy")
    np.testing.assert_allclose(lam, [0.5 / 1.001, 0.5 / 1.001])
    with pytest.raises(ValueError, match="unknown interpolation rule"):
        barycentric_weights(jnp.array([0.5, 0.5]), E, rule="nope")


def test_simplex_projection_is_the_euclidean_projection():
    rng = np.random.default_rng(1)
    v = rng.normal(size=(200, 4)) * 2
    p = np.asarray(project_simplex(jnp.asarray(v)))
    assert np.all(p >= 0)
    np.testing.assert_allclose(p.sum(-1), 1.0, atol=1e-12)
    # optimality: no random point of the simplex is closer to v than p
    q = rng.dirichlet(np.ones(4), size=(200, 50))
    assert np.all(np.linalg.norm(v - p, axis=-1)[:, None] <= np.linalg.norm(v[:, None] - q, axis=-1) + 1e-12)
    inside = rng.dirichlet(np.ones(4), size=10)
    np.testing.assert_allclose(project_simplex(jnp.asarray(inside)), inside, atol=1e-12)


def test_simplex_weights_and_affine_chart():
    E = jnp.eye(3)
    lam = barycentric_weights(jnp.array([1.5, -0.2, -0.3]), E, simplex=True)
    assert float(jnp.min(lam)) >= 0 and abs(float(jnp.sum(lam)) - 1) < 1e-12
    np.testing.assert_allclose(affine_weights(jnp.array([0.2, 0.3])), [0.2, 0.3, 0.5])
