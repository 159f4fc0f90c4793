"""Starlet and SWT in JAX against NumPy/SciPy and PyWavelets references."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import pywt
from scipy.ndimage import convolve1d

from bayes_unmix.wavelets import (
    soft_threshold,
    starlet_forward,
    starlet_inverse,
    starlet_mad_sigma,
    swt2_forward,
    swt2_inverse,
)

B3 = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
SCIPY_MODE = {"mirror": "mirror", "symmetric": "reflect"}  # our name -> scipy.ndimage name

# jitted once per (shape, static args): compiling whole transforms is ~2x faster than eager dispatch
star_fwd = jax.jit(starlet_forward, static_argnums=(1,), static_argnames=("boundary",))
swt_fwd = jax.jit(swt2_forward, static_argnums=(1, 2))
swt_inv = jax.jit(swt2_inverse, static_argnums=(1,))


def starlet_reference(image: np.ndarray, n_scales: int, boundary: str) -> np.ndarray:
    """Textbook a trous loop with explicitly dilated kernels and scipy.ndimage boundaries."""
    mode, planes, c = SCIPY_MODE[boundary], [], image
    for j in range(n_scales):
        kernel = np.zeros(4 * 2**j + 1)
        kernel[:: 2**j] = B3
        smooth = convolve1d(convolve1d(c, kernel, axis=-1, mode=mode), kernel, axis=-2, mode=mode)
        planes.append(c - smooth)
        c = smooth
    return np.stack(planes + [c])


def to_pywt(coeffs: np.ndarray) -> list:
    """(level, 4, H, W) -> pywt.swt2's [(cA, (cH, cV, cD)), ...], coarsest first."""
    return [(c[0], (c[1], c[2], c[3])) for c in np.asarray(coeffs)]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


# ----------------------------------------------------------------------------------- starlet
@pytest.mark.parametrize("boundary", ["mirror", "symmetric"])
@pytest.mark.parametrize(("shape", "n_scales"), [((20, 20), 2), ((17, 33), 4), ((9, 12), 3)])
def test_starlet_matches_scipy_reference(rng, boundary, shape, n_scales):
    x = rng.normal(size=shape)
    got = np.asarray(star_fwd(x, n_scales, boundary=boundary))
    assert got.shape == (n_scales + 1, *shape)
    np.testing.assert_allclose(got, starlet_reference(x, n_scales, boundary), rtol=0, atol=1e-12)
    np.testing.assert_allclose(np.asarray(starlet_inverse(got)), x, rtol=0, atol=1e-12)


def test_starlet_boundaries_differ(rng):
    x = rng.normal(size=(16, 16))
    a, b = (np.asarray(starlet_forward(x, 2, boundary=m)) for m in ("mirror", "symmetric"))
    assert np.abs(a - b).max() > 1e-3


def test_starlet_constant_image_has_zero_details():
    coeffs = np.asarray(starlet_forward(np.full((24, 18), 3.5), 3))
    np.testing.assert_allclose(coeffs[:-1], 0.0, atol=1e-13)
    np.testing.assert_allclose(coeffs[-1], 3.5, atol=1e-13)


def test_starlet_mad_sigma_and_soft_threshold(rng):
    coeffs = starlet_forward(rng.normal(size=(2, 32, 32)), 3)
    sigma = np.asarray(starlet_mad_sigma(coeffs))
    details = np.asarray(coeffs)[:, :-1].reshape(2, 3, -1)
    med = np.median(details, axis=-1, keepdims=True)
    np.testing.assert_allclose(sigma, 1.4826 * np.median(np.abs(details - med), axis=-1), rtol=1e-12)
    x = np.array([-3.0, -1.0, -0.2, 0.0, 0.5, 2.5])
    np.testing.assert_array_equal(np.asarray(soft_threshold(x, 1.0)), [-2.0, 0.0, 0.0, 0.0, 0.0, 1.5])
    # per-scale thresholds broadcast over (J, H, W)
    t = jnp.asarray(sigma)[..., None, None]
    shrunk = np.asarray(soft_threshold(coeffs[:, :-1], t))
    assert np.all(np.abs(shrunk) <= np.abs(np.asarray(coeffs)[:, :-1]))


# --------------------------------------------------------------------------------------- SWT
@pytest.mark.parametrize("wavelet", ["haar", "db2", "sym4"])
@pytest.mark.parametrize(("shape", "level"), [((16, 16), 3), ((8, 24), 2), ((12, 20), 1)])
def test_swt2_matches_pywavelets(rng, wavelet, shape, level):
    x = rng.normal(size=shape)
    got = np.asarray(swt_fwd(x, wavelet, level))
    assert got.shape == (level, 4, *shape)
    ref = pywt.swt2(x, wavelet, level, trim_approx=False, norm=False)
    for (ca, details), (ra, rdetails) in zip(to_pywt(got), ref, strict=True):
        np.testing.assert_allclose(ca, ra, rtol=0, atol=1e-10)
        for d, rd in zip(details, rdetails, strict=True):
            np.testing.assert_allclose(d, rd, rtol=0, atol=1e-10)
    np.testing.assert_allclose(np.asarray(swt_inv(got, wavelet)), x, rtol=0, atol=1e-10)
    # arbitrary (inconsistent) coefficients: same phase average as pywt.iswt2
    noisy = rng.normal(size=got.shape)
    np.testing.assert_allclose(
        np.asarray(swt_inv(noisy, wavelet)), pywt.iswt2(to_pywt(noisy), wavelet), rtol=0, atol=1e-10
    )


def test_swt2_accepts_wavelet_object_and_float32(rng):
    x = rng.normal(size=(8, 8)).astype(np.float32)
    c = swt2_forward(x, pywt.Wavelet("db2"), 2)
    assert c.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(swt2_inverse(c, "db2")), x, atol=1e-5)


# ------------------------------------------------------------------------ jit, vmap, gradients
def test_jit_and_vmap_match_loop(rng):
    x = rng.normal(size=(3, 16, 16))
    star = jax.jit(jax.vmap(lambda im: starlet_forward(im, 2, boundary="symmetric")))
    swt = jax.jit(jax.vmap(lambda im: swt2_forward(im, "db2", 2)))
    inv = jax.jit(jax.vmap(lambda c: swt2_inverse(c, "db2")))
    s_loop = np.stack([np.asarray(starlet_forward(im, 2, boundary="symmetric")) for im in x])
    w_loop = np.stack([np.asarray(swt2_forward(im, "db2", 2)) for im in x])
    np.testing.assert_allclose(np.asarray(star(x)), s_loop, rtol=0, atol=1e-13)
    np.testing.assert_allclose(np.asarray(swt(x)), w_loop, rtol=0, atol=1e-13)
    np.testing.assert_allclose(np.asarray(inv(w_loop)), x, rtol=0, atol=1e-12)
    # leading axes broadcast without vmap too
    np.testing.assert_allclose(np.asarray(starlet_forward(x, 2, boundary="symmetric")), s_loop, atol=1e-13)
    sig = jax.jit(jax.vmap(starlet_mad_sigma))(star(x))
    np.testing.assert_allclose(np.asarray(sig), np.asarray(starlet_mad_sigma(s_loop)), atol=1e-13)


def test_gradients_through_threshold_prox_are_finite(rng):
    x = jnp.asarray(rng.normal(size=(2, 16, 16)))

    def starlet_loss(im):
        c = starlet_forward(im, 2)
        t = 3.0 * jax.lax.stop_gradient(starlet_mad_sigma(c))[..., None, None]
        details = soft_threshold(c[..., :-1, :, :], t)
        return jnp.sum(starlet_inverse(jnp.concatenate([details, c[..., -1:, :, :]], axis=-3)) ** 2)

    def swt_loss(im):
        c = swt2_forward(im, "sym4", 2)
        c = c.at[..., 1:, :, :].set(soft_threshold(c[..., 1:, :, :], 0.5))
        return jnp.sum(swt2_inverse(c, "sym4") ** 2)

    for loss in (starlet_loss, swt_loss):
        g = np.asarray(jax.jit(jax.grad(loss))(x))
        assert g.shape == x.shape and np.all(np.isfinite(g)) and np.abs(g).max() > 0


# ------------------------------------------------------------------------------------ errors
@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: starlet_forward(np.zeros(16), 2), "H, W"),
        (lambda: starlet_forward(np.zeros((8, 32)), 3), "too small"),
        (lambda: starlet_forward(np.zeros((16, 16)), 0), "n_scales"),
        (lambda: starlet_forward(np.zeros((16, 16)), 2, boundary="reflect"), "boundary"),
        (lambda: starlet_inverse(np.zeros((16, 16))), "J \\+ 1"),
        (lambda: starlet_mad_sigma(np.zeros((1, 16, 16))), "J \\+ 1"),
        (lambda: swt2_forward(np.zeros(16), "haar", 1), "H, W"),
        (lambda: swt2_forward(np.zeros((12, 16)), "haar", 3), "divisible"),
        (lambda: swt2_forward(np.zeros((16, 16)), "haar", 0), "level"),
        (lambda: swt2_forward(np.zeros((16, 16)), "nope", 1), "unknown discrete wavelet"),
        (lambda: swt2_forward(np.zeros((16, 16)), "morl", 1), "unknown discrete wavelet"),
        (lambda: swt2_inverse(np.zeros((2, 3, 16, 16)), "haar"), "level, 4"),
    ],
)
def test_bad_inputs_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_shape_errors_raise_under_jit():
    with pytest.raises(ValueError, match="too small"):
        jax.jit(lambda im: starlet_forward(im, 3))(jnp.zeros((8, 8)))
