"""2-D wavelet transforms in JAX: the isotropic starlet and PyWavelets-compatible SWT.

Every transform acts on the last two axes ``(H, W)`` and broadcasts over any leading axes
(spectral channels, latent maps), so ``jax.vmap`` and ``jax.jit`` apply directly. Shapes are
validated at trace time (they are static), so bad inputs raise ``ValueError`` even under jit.

* Starlet (isotropic undecimated a trous B3-spline, Starck et al.): ``h = [1, 4, 6, 4, 1] / 16``
  dilated by ``2**j`` at scale ``j``, applied separably. With ``c_0 = x`` and
  ``c_{j+1} = h_j * c_j`` the planes are ``w_{j+1} = c_j - c_{j+1}`` (``j = 0..J-1``) and the
  coarse plane ``c_J``; ``x = c_J + sum_j w_j`` exactly.
* SWT: the stationary 2-D transform of ``pywt.swt2(..., trim_approx=False, norm=False)``, with
  periodic boundaries and the filter bank of ``pywt.Wavelet(name)`` upsampled by ``2**j``.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pywt
from jax import lax

import bayes_unmix  # noqa: F401  (float64 on import)

__all__ = [
    "soft_threshold",
    "starlet_forward",
    "starlet_inverse",
    "starlet_mad_sigma",
    "swt2_forward",
    "swt2_inverse",
]

_B3 = (1 / 16, 4 / 16, 6 / 16, 4 / 16, 1 / 16)
# "mirror" = whole-sample symmetric (scipy.ndimage 'mirror', numpy 'reflect'): d c b | a b c d.
# "symmetric" = half-sample symmetric, edge repeated (numpy 'symmetric', scipy.ndimage 'reflect'):
# c b a | a b c d, the convention of the SUSHI code. 'reflect' is refused: it means each of these
# in one of the two libraries.
_PAD_MODES = {"mirror": "reflect", "symmetric": "symmetric"}
_MAD_TO_SIGMA = 1.4826  # 1 / Phi^{-1}(3/4): MAD -> standard deviation for Gaussian noise


def _as_image(image, name: str) -> jnp.ndarray:
    """Float array with at least two axes; integers are promoted to the default float."""
    x = jnp.asarray(image)
    if x.ndim < 2:
        raise ValueError(f"{name} expects an array of shape (..., H, W), got shape {x.shape}")
    return x.astype(jnp.result_type(x.dtype, 0.0))


def _correlate(x: jnp.ndarray, taps, axis: int, step: int, pad: tuple[int, int], mode: str) -> jnp.ndarray:
    """Pad one axis, then ``y[o, ..., n, ...] = sum_m taps[o][m] x_pad[..., n + m * step, ...]``.

    One dilated XLA convolution for all filters ``o`` (a sum of shifted copies instead made the
    gradient of a 2-level sym4 SWT take ~30 s to compile). Returns shape ``(len(taps), *x.shape)``.
    """
    widths = [(0, 0)] * x.ndim
    widths[axis] = pad
    xp = jnp.moveaxis(jnp.pad(x, widths, mode=mode), axis, -1)
    kernel = jnp.asarray(np.asarray(taps, dtype=np.float64), dtype=x.dtype)[:, None, :]
    y = lax.conv_general_dilated(
        xp.reshape(-1, 1, xp.shape[-1]), kernel, (1,), "VALID", rhs_dilation=(step,), precision="highest"
    )
    y = y.reshape(*xp.shape[:-1], kernel.shape[0], x.shape[axis])
    return jnp.moveaxis(jnp.moveaxis(y, -2, 0), -1, axis)


def starlet_forward(image, n_scales: int, *, boundary: str = "mirror") -> jnp.ndarray:
    r"""Isotropic undecimated (starlet) wavelet transform.

    .. math:: c_0 = x,\quad c_{j+1} = (h_j \otimes h_j) * c_j,\quad w_{j+1} = c_j - c_{j+1},

    with :math:`h_j` the B3 kernel ``[1, 4, 6, 4, 1] / 16`` with ``2**j - 1`` zeros between taps.

    Parameters
    ----------
    image : array, shape (..., H, W)
        Image(s); leading axes are batch axes.
    n_scales : int
        Number ``J >= 1`` of detail planes. Needs ``min(H, W) > 2**J``, the half-support of the
        coarsest dilated kernel, so every padded sample is a single reflection of the image.
    boundary : {"mirror", "symmetric"}
        ``"mirror"``: whole-sample reflection ``d c b | a b c d`` (scipy.ndimage ``'mirror'``).
        ``"symmetric"``: half-sample reflection ``b a | a b`` (scipy.ndimage ``'reflect'``,
        numpy ``'symmetric'``), as in the SUSHI code.

    Returns
    -------
    coeffs : array, shape (..., J + 1, H, W)
        ``[w_1, ..., w_J, c_J]``: detail planes from fine to coarse, then the coarse plane.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(2, 32, 32))
    >>> c = starlet_forward(x, 3)
    >>> c.shape
    (2, 4, 32, 32)
    >>> bool(np.allclose(starlet_inverse(c), x))
    True
    """
    x = _as_image(image, "starlet_forward")
    if boundary not in _PAD_MODES:
        raise ValueError(f"boundary must be one of {sorted(_PAD_MODES)}, got {boundary!r}")
    if not isinstance(n_scales, int | np.integer) or n_scales < 1:
        raise ValueError(f"n_scales must be a positive integer, got {n_scales!r}")
    h, w = x.shape[-2:]
    if min(h, w) <= 2**n_scales:
        raise ValueError(
            f"image of shape {(h, w)} is too small for {n_scales} scales: the kernel at the "
            f"coarsest scale reaches {2**n_scales} pixels, so H and W must be > {2**n_scales}"
        )
    mode = _PAD_MODES[boundary]
    planes, c = [], x
    for j in range(n_scales):
        pad = (2 * 2**j, 2 * 2**j)
        smooth = _correlate(_correlate(c, [_B3], -1, 2**j, pad, mode)[0], [_B3], -2, 2**j, pad, mode)[0]
        planes.append(c - smooth)
        c = smooth
    return jnp.stack(planes + [c], axis=-3)


def starlet_inverse(coeffs) -> jnp.ndarray:
    r"""Inverse starlet transform, :math:`x = c_J + \sum_{j=1}^{J} w_j` (exact).

    Parameters
    ----------
    coeffs : array, shape (..., J + 1, H, W)
        Output of :func:`starlet_forward` (possibly thresholded).

    Returns
    -------
    image : array, shape (..., H, W)

    Examples
    --------
    >>> import numpy as np
    >>> x = np.arange(100.0).reshape(10, 10)
    >>> bool(np.allclose(starlet_inverse(starlet_forward(x, 2)), x, atol=1e-12))
    True
    """
    c = jnp.asarray(coeffs)
    if c.ndim < 3:
        raise ValueError(f"starlet_inverse expects shape (..., J + 1, H, W), got {c.shape}")
    return jnp.sum(c, axis=-3)


def starlet_mad_sigma(coeffs) -> jnp.ndarray:
    r"""Per-scale noise level of the detail planes from the median absolute deviation.

    .. math:: \sigma_j = 1.4826\,\mathrm{median}\,|w_j - \mathrm{median}\,w_j|

    over the ``H * W`` pixels of each plane. (SUSHI divides by 0.6735 instead of 0.6745.)

    Parameters
    ----------
    coeffs : array, shape (..., J + 1, H, W)
        Output of :func:`starlet_forward`; the coarse plane is ignored.

    Returns
    -------
    sigma : array, shape (..., J)

    Examples
    --------
    >>> import numpy as np
    >>> noise = np.random.default_rng(1).normal(size=(256, 256))
    >>> s = starlet_mad_sigma(starlet_forward(noise, 2))
    >>> s.shape, bool(0.85 < s[0] < 0.95)  # B3 starlet: sigma(w_1) ~ 0.89 for unit noise
    ((2,), True)
    """
    c = jnp.asarray(coeffs)
    if c.ndim < 3 or c.shape[-3] < 2:
        raise ValueError(f"starlet_mad_sigma expects shape (..., J + 1, H, W), got {c.shape}")
    details = c[..., :-1, :, :].reshape(*c.shape[:-3], c.shape[-3] - 1, -1)
    med = jnp.median(details, axis=-1, keepdims=True)
    return _MAD_TO_SIGMA * jnp.median(jnp.abs(details - med), axis=-1)


def soft_threshold(x, t) -> jnp.ndarray:
    r"""Soft thresholding, the prox of :math:`t\|x\|_1`: :math:`\mathrm{sign}(x)\max(|x|-t,0)`.

    Parameters
    ----------
    x : array
    t : array or float, broadcastable to ``x``, ``t >= 0``

    Returns
    -------
    array, shape of ``x`` broadcast with ``t``

    Examples
    --------
    >>> soft_threshold(jnp.array([-3.0, -0.5, 0.0, 2.0]), 1.0).tolist()
    [-2.0, -0.0, 0.0, 1.0]
    """
    x = jnp.asarray(x)
    return jnp.sign(x) * jnp.maximum(jnp.abs(x) - t, 0.0)


def _filter_bank(wavelet) -> tuple[np.ndarray, ...]:
    """(dec_lo, dec_hi, rec_lo, rec_hi) of a discrete PyWavelets wavelet, as float64 data."""
    try:
        wav = wavelet if isinstance(wavelet, pywt.Wavelet) else pywt.Wavelet(wavelet)
    except (ValueError, TypeError) as err:
        raise ValueError(f"unknown discrete wavelet {wavelet!r}; see pywt.wavelist(kind='discrete')") from err
    return tuple(np.asarray(f, dtype=np.float64) for f in wav.filter_bank)


def _periodic(x: jnp.ndarray, filters, axis: int, step: int, lead: int) -> jnp.ndarray:
    """Periodic dilated convolution ``y[o, n] = sum_k f_o[k] x[(n + (lead - k) * step) mod N]``.

    Written as a correlation with the reversed filters over a wrap-padded axis; ``lead`` is how
    many taps reach ahead of ``n`` (pywt's alignment, see :func:`swt2_forward`).
    """
    n_taps = len(filters[0])
    pad = ((n_taps - 1 - lead) * step, lead * step)
    return _correlate(x, [f[::-1] for f in filters], axis, step, pad, "wrap")


def _check_swt(x: jnp.ndarray, level: int) -> None:
    if not isinstance(level, int | np.integer) or level < 1:
        raise ValueError(f"level must be a positive integer, got {level!r}")
    h, w = x.shape[-2:]
    if h % 2**level or w % 2**level:
        raise ValueError(f"SWT needs H and W divisible by 2**level = {2**level}, got {(h, w)}")


def swt2_forward(image, wavelet, level: int) -> jnp.ndarray:
    r"""Stationary 2-D wavelet transform, equal to ``pywt.swt2(image, wavelet, level)``.

    At level ``j = 0..level-1`` the filters get ``2**j - 1`` holes (:math:`g^{(j)}`) and, along
    each axis with period ``N``, :math:`y[n] = \sum_k g[k]\,a[n + (L/2 - k)\,2^j]` for
    filters ``g`` of length ``L``: the alignment of PyWavelets' SWT (its C kernel starts the
    periodic convolution half a dilated filter length in).

    Parameters
    ----------
    image : array, shape (..., H, W)
        ``H`` and ``W`` must be divisible by ``2**level`` (as PyWavelets requires).
    wavelet : str or pywt.Wavelet
        Discrete wavelet, e.g. ``"haar"``, ``"db2"``, ``"sym4"``.
    level : int
        Number of decomposition levels.

    Returns
    -------
    coeffs : array, shape (..., level, 4, H, W)
        ``coeffs[..., i, :]`` is pywt's ``i``-th entry ``(cA, (cH, cV, cD))`` stacked as
        ``[cA, cH, cV, cD]``: ``i = 0`` is the coarsest level, as in ``pywt.swt2``. ``cH`` is
        high-pass along rows (axis -2), ``cV`` high-pass along columns (axis -1).

    Examples
    --------
    >>> import numpy as np, pywt
    >>> x = np.random.default_rng(0).normal(size=(16, 16))
    >>> c = swt2_forward(x, "db2", 2)
    >>> ref = pywt.swt2(x, "db2", 2, trim_approx=False, norm=False)
    >>> bool(np.allclose(c[1, 3], ref[1][1][2]))  # finest level, cD
    True
    """
    x = _as_image(image, "swt2_forward")
    _check_swt(x, level)
    dec_lo, dec_hi, _, _ = _filter_bank(wavelet)
    lead = len(dec_lo) // 2
    levels, a = [], x
    for j in range(level):
        cols = _periodic(a, (dec_lo, dec_hi), -1, 2**j, lead)  # (2, ..., H, W): lo, hi along W
        both = _periodic(cols, (dec_lo, dec_hi), -2, 2**j, lead)  # (rows filter, cols filter, ...)
        # flatten (cols, rows) so the order is aa, da, ad, dd = cA, cH, cV, cD as in pywt
        levels.append(jnp.moveaxis(jnp.swapaxes(both, 0, 1).reshape(4, *a.shape), 0, -3))
        a = levels[-1][..., 0, :, :]
    return jnp.stack(levels[::-1], axis=-4)


def swt2_inverse(coeffs, wavelet) -> jnp.ndarray:
    r"""Inverse stationary 2-D wavelet transform, equal to ``pywt.iswt2``.

    From the coarsest level down, per axis with period ``N``,
    :math:`a[n] = \tfrac12 \sum_k (r_{lo}^{(j)}[k]\,A[m] + r_{hi}^{(j)}[k]\,D[m])`,
    ``m = n + (L/2 - 1 - k) 2**j``: the average of the even- and odd-phase inverse DWTs that
    ``pywt.iswt2`` computes, so it matches pywt even for thresholded coefficients. Like pywt, only the coarsest ``cA`` is used.

    Parameters
    ----------
    coeffs : array, shape (..., level, 4, H, W)
        Layout of :func:`swt2_forward` (possibly thresholded).
    wavelet : str or pywt.Wavelet

    Returns
    -------
    image : array, shape (..., H, W)

    Examples
    --------
    >>> import numpy as np
    >>> x = np.random.default_rng(0).normal(size=(3, 8, 8))
    >>> bool(np.allclose(swt2_inverse(swt2_forward(x, "sym4", 3), "sym4"), x))
    True
    """
    c = _as_image(coeffs, "swt2_inverse")
    if c.ndim < 4 or c.shape[-3] != 4:
        raise ValueError(f"swt2_inverse expects shape (..., level, 4, H, W), got {c.shape}")
    level = c.shape[-4]
    _check_swt(c, level)
    _, _, rec_lo, rec_hi = _filter_bank(wavelet)
    lead = len(rec_lo) // 2 - 1
    a = c[..., 0, 0, :, :]
    for i in range(level):
        step = 2 ** (level - 1 - i)
        _, ch, cv, cd = (c[..., i, q, :, :] for q in range(4))
        # undo the row filters for the (lo, hi) column channels at once, then the column filters
        rows = _periodic(jnp.stack([a, cv]), (rec_lo,), -2, step, lead)[0]
        rows = rows + _periodic(jnp.stack([ch, cd]), (rec_hi,), -2, step, lead)[0]
        cols = _periodic(rows[0], (rec_lo,), -1, step, lead)[0] + _periodic(rows[1], (rec_hi,), -1, step, lead)[0]
        a = 0.25 * cols
    return a
