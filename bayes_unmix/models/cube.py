"""Bayesian model of an X-ray hyperspectral cube: non-stationary mixtures with spatial priors, in NumPyro.

For a count cube ``X`` of shape ``(E, H, W)`` flattened to pixels ``p = y * W + x`` (``P = H * W``),

    X[p, e] ~ Poisson( sum_c a[p, c] * f_c(theta_c[p])[e] + b[p, e] ),

where ``f_c`` is a :class:`~bayes_unmix.models.component.SpectralComponent` (unit-sum spectra, so
``a[p, c]`` is the expected counts of component ``c`` in pixel ``p``), ``theta_c[p]`` its latent
coordinates and ``b`` an optional fixed background cube (expected counts). Priors:

* ``a[p, c] ~ Exponential(mean = max(sum_e X[p, e], 1) / C)``: non-negative, mildly sparse, scaled to
  the pixel's counts (empirical-Bayes scale, as in :mod:`bayes_unmix.models.gamma`); or, with
  ``amplitude_log_sd=s``, ``LogNormal(log(max(sum_e X[p, e], 1) / C), s)``. The exponential is flat in ``a``,
  so over ``log a`` (the coordinates of VI and NUTS) its density grows as ``a``: where two components can
  trade counts (a faint synchrotron against the thermal continuum) that lifts the weaker one's posterior up the
  ridge, above the counts it has. A wide log-normal is nearly flat in ``log a``; its density over ``a`` grows as
  ``1 / a`` towards 0, so point estimates are then modes over ``log a`` (:func:`point_log_jacobian`);
* ``theta_c[p] ~ Dirichlet(1)`` (uniform on the simplex of the anchors) for barycentric latents (IAE;
  ``latent_region="simplex"``, the default), else ``Uniform(theta_bounds)``: the region the spectral model
  was trained on. The ``theta_bounds`` box of an IAE also holds weights off the sum-one plane, where decoded
  spectra and the weights -> parameters map extrapolate (samplers wander there and report unphysical kT),
  while the simplex may miss part of the learned manifold (the shipped thermal IAE's training weights reach
  -6): prefer physical coordinates (:meth:`~bayes_unmix.iae.component_model.IAEComponent.in_physical_coordinates`,
  the default of :func:`~bayes_unmix.pretrained.load_component`);
* a spatial prior on every latent map ``theta_{c,k}`` ``(H, W)``, with ``s = spatial_scale * (high - low)``
  (one scale for every latent, or one per component and latent: a textured kT map and a smooth photon-index
  map want different smoothing):

  - ``"starlet"``: a Laplace(0, s) penalty on each of the ``n_scales`` starlet detail planes (the Bayesian
    counterpart of SUSHI's soft thresholding; the coarse plane is left free, as SUSHI does), its cusp
    rounded over ``|w| < 0.1 s`` so that the log density is smooth,
  - ``"smooth"``: a Normal(0, s) penalty on the differences of horizontally and vertically adjacent pixels,

  both normalised as densities of the ``P``-pixel map (``s^-(P - 1)``: only constant maps are free), so
  that evidences of different scales compare fairly,
  - ``"none"``: independent pixels (the pixel-by-pixel baseline);

  with ``scale_hyperprior=(low, high)`` each latent map's scale is unknown too, ``LogUniform(low, high)``, and
  inferred with the maps (that normalisation makes its posterior the evidence of each scale times the
  hyperprior);

* optionally (``amplitude_scale``, off by default) the same spatial prior on every log amplitude map, with
  scale ``amplitude_scale`` (natural log units). Without it each pixel's amplitudes are free: where
  synchrotron is faint a steep power law can trade places with part of the thermal continuum over a wide
  range of synchrotron amplitudes, and the photon index's posterior gains that volume (it sits above the
  truth, by up to 0.6 at 94x94); smooth amplitude maps remove most of that freedom. With
  ``amplitude_prior="ratio"`` the prior is on the maps ``log(a_c / a_0)`` (each component against the first)
  instead, leaving every pixel's total free (on the 94x94 toy cube it predicted held-out counts better). With
  log-normal amplitudes it then replaces their prior on each pixel's shares: a pixel's total is
  ``LogNormal(log(max(sum_e X[p, e], 1)), s)``, its log ratios are flat, and each ratio map's mean has one
  ``Normal(0, sqrt(2) s)`` prior. Independent log-normals per pixel, multiplied over the ``n`` pixels that the
  ratio prior couples, would be a prior of sd ``sqrt(2) s / sqrt(n)`` on the share of the whole region, pulling
  it to equal shares: on the sGMCA scene that kept about four counts of thermal emission per pixel where there
  is none, taken from the synchrotron (``benchmarks/faint_posterior.py --scene sgmca``).

* optionally (``presence_prior=q``, off by default) an atom at zero amplitude: each component is present in
  each pixel with prior probability ``q``, independently, else absent (configurations without any component
  are left out and the rest renormalised). The indicators ``s[p]`` are summed out,

      X[p] ~ sum_s w_s Poisson( sum_c s_c a[p, c] f_c(theta_c[p]) + b[p] ),

  so MAP, VI and NUTS see a smooth density over the same sites; ``a[p, c]`` is the amplitude the component
  would have if present, and the reported amplitude is ``s_c a[p, c]`` with ``s`` drawn from its conditional
  posterior (:func:`~bayes_unmix.inference.cube_convert.to_cube_datatree`). A positive amplitude prior cannot
  say "absent": on the sGMCA scene, in regions without thermal emission, intervals of the thermal amplitude
  stayed above its truth and the synchrotron gave up the difference.

Sites: ``amplitude`` ``(P, C)``, ``theta_<name>`` ``(P, n_latent)``, with learned scales ``scale_<name>``
``(n_latent,)`` (outside the plate), deterministic
``<name>_parameters`` ``(P, n_parameters)``, factors ``spatial_<name>`` and ``obs`` ``(P, E)``, all
in one ``plate("pixel", P)``. Data (counts, background) are model arguments, so one compiled
log-density serves every cube of a shape.
"""

from __future__ import annotations

import dataclasses
import functools
import numbers
from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar, Literal

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.scipy.special import gammaln, xlogy
from numpyro.distributions import constraints

from bayes_unmix.models.component import SpectralComponent, is_barycentric
from bayes_unmix.wavelets import starlet_forward

__all__ = [
    "CubeInputError",
    "CubeModel",
    "make_cube_model",
    "make_latent_prior_model",
    "make_pixel_model",
    "point_log_jacobian",
    "poisson_cost",
    "prior_scales",
    "scale_prior",
    "scale_sites",
    "scale_start",
]

SpatialPrior = Literal["starlet", "smooth", "none"]
LatentRegion = Literal["simplex", "box"]
AmplitudePrior = Literal["log", "ratio"]
_RATE_FLOOR = 1e-30  # keeps log(rate) finite where every component is (numerically) absent


class CubeInputError(ValueError):
    """A cube, background or component set that cannot be fitted (shape, channels, values)."""


@dataclasses.dataclass(frozen=True, eq=False)  # identity hash: compiled solvers are cached per model
class CubeModel:
    """What to unmix in a cube and with which spatial assumptions (static; counts are data).

    Parameters
    ----------
    components:
        Spectral components, all on the cube's channel grid; names must be unique.
    height, width:
        Image size ``(H, W)`` in pixels.
    spatial_prior:
        ``"starlet"``, ``"smooth"`` or ``"none"`` (see the module docstring).
    n_scales:
        Starlet detail planes ``J`` (needs ``min(H, W) > 2**J``).
    spatial_scale:
        Scale of the spatial prior as a fraction of each latent's ``theta_bounds`` range: one number, or
        ``{component name: scale or one scale per latent}`` covering every component (stored in the
        latter form, with a tuple per component).
    amplitude_scale:
        ``None`` (default: off), or the scale of the same spatial prior on every log amplitude map (natural
        log units: 0.1 is about 10 % between neighbours for ``"smooth"``).
    amplitude_prior:
        ``"log"`` (default): that prior on each log amplitude map; ``"ratio"``: on each ``log(a_c / a_0)``
        map, ``c >= 1`` (needs two or more components).
    amplitude_log_sd:
        ``None`` (default): each pixel's amplitudes are ``Exponential(mean = counts / C)``, flat in ``a``; a
        number ``s``: ``LogNormal(log(counts / C), s)``, nearly flat in ``log a`` for large ``s`` (see the
        module docstring). Point estimates are then modes over ``log a`` (:func:`point_log_jacobian`).
        Under the ratio prior (``amplitude_prior="ratio"`` with an ``amplitude_scale``) the log-normal falls on
        each pixel's total alone. :func:`~bayes_unmix.cube_workflow.fit_cube` and ``bayes-unmix fit-cube``
        default to 10.
    presence_prior:
        ``None`` (default): every component is present in every pixel. A probability ``q``: each component is
        present in each pixel with prior probability ``q``, independently, and absent (amplitude exactly 0)
        otherwise; the indicators are summed out of the likelihood (see the module docstring), and
        :func:`~bayes_unmix.inference.cube_convert.to_cube_datatree` draws them back with the maps of the
        posterior probability that each component is present.
    scale_hyperprior:
        ``None`` (default): every latent map's spatial scale is ``spatial_scale``. ``(low, high)``: each is
        unknown, ``LogUniform(low, high)`` as a fraction of its latent's range, and inferred with the maps by
        VI and NUTS (sites ``scale_<name>``); ``spatial_scale`` is then where they start and the scale of MAP
        points (a joint mode of maps and scales is not a useful point: constant maps at the smallest scale).
    latent_region:
        ``"simplex"`` (default): barycentric latents (see :func:`~bayes_unmix.models.component.is_barycentric`)
        live on the simplex of the anchors with a flat Dirichlet prior; ``"box"``: every latent is uniform
        in its ``theta_bounds`` box.

    Examples
    --------
    >>> from bayes_unmix.models.cube import CubeModel
    >>> CubeModel((), 8, 8)
    Traceback (most recent call last):
    ...
    bayes_unmix.models.cube.CubeInputError: a cube model needs at least one spectral component
    """

    components: tuple[SpectralComponent, ...]
    height: int
    width: int
    spatial_prior: SpatialPrior = "starlet"
    n_scales: int = 2
    spatial_scale: float | Mapping[str, float | Sequence[float]] = 0.02
    amplitude_scale: float | None = None
    amplitude_prior: AmplitudePrior = "log"
    amplitude_log_sd: float | None = None
    presence_prior: float | None = None
    scale_hyperprior: tuple[float, float] | None = None
    latent_region: LatentRegion = "simplex"

    def __post_init__(self) -> None:
        object.__setattr__(self, "components", tuple(self.components))
        if not self.components:
            raise CubeInputError("a cube model needs at least one spectral component")
        for c in self.components:
            if not isinstance(c, SpectralComponent):
                raise CubeInputError(f"{c!r} does not implement the SpectralComponent protocol")
        names = [c.name for c in self.components]
        if len(set(names)) != len(names):
            raise CubeInputError(f"component names must be unique, got {names}")
        channels = {c.name: int(c.n_channels) for c in self.components}
        if len(set(channels.values())) != 1:
            raise CubeInputError(f"components have different channel counts: {channels}")
        if self.height < 1 or self.width < 1:
            raise CubeInputError(f"the image must have at least one pixel, got {(self.height, self.width)}")
        if self.spatial_prior not in ("starlet", "smooth", "none"):
            raise CubeInputError(f"unknown spatial prior {self.spatial_prior!r}; use starlet, smooth or none")
        if self.spatial_prior == "starlet" and min(self.height, self.width) <= 2**self.n_scales:
            raise CubeInputError(
                f"a {self.height}x{self.width} image is too small for {self.n_scales} starlet scales "
                f"(needs more than {2**self.n_scales} pixels per side)"
            )
        object.__setattr__(self, "spatial_scale", self._checked_scales(self.spatial_scale))
        if self.amplitude_scale is not None:
            if self.spatial_prior == "none":
                raise CubeInputError("amplitude_scale needs a spatial prior (starlet or smooth)")
            scale = self.amplitude_scale
            if not (isinstance(scale, numbers.Real) and np.isfinite(scale) and scale > 0):
                raise CubeInputError(f"amplitude_scale must be a positive number, got {scale!r}")
            object.__setattr__(self, "amplitude_scale", float(scale))
        if self.scale_hyperprior is not None:
            object.__setattr__(self, "scale_hyperprior", self._checked_hyperprior(self.scale_hyperprior))
        if self.amplitude_log_sd is not None:
            sd = self.amplitude_log_sd
            if not (isinstance(sd, numbers.Real) and np.isfinite(sd) and sd > 0):
                raise CubeInputError(f"amplitude_log_sd must be a positive number, got {sd!r}")
            object.__setattr__(self, "amplitude_log_sd", float(sd))
        if self.presence_prior is not None:
            q = self.presence_prior
            if not (isinstance(q, numbers.Real) and 0 < q < 1):
                raise CubeInputError(f"presence_prior must be a probability in (0, 1), got {q!r}")
            object.__setattr__(self, "presence_prior", float(q))
        if self.amplitude_prior not in ("log", "ratio"):
            raise CubeInputError(f"unknown amplitude_prior {self.amplitude_prior!r}; use log or ratio")
        if self.amplitude_prior == "ratio" and len(self.components) < 2:
            raise CubeInputError("amplitude_prior='ratio' needs two or more components")
        if self.latent_region not in ("simplex", "box"):
            raise CubeInputError(f"unknown latent region {self.latent_region!r}; use simplex or box")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.components)

    @property
    def n_channels(self) -> int:
        return int(self.components[0].n_channels)

    @property
    def n_pixels(self) -> int:
        return self.height * self.width

    @property
    def prior_on_pixel_totals(self) -> bool:
        """Whether each pixel's log-normal prior falls on its total alone (ratio prior on log-normal amplitudes)."""
        return (
            self.amplitude_prior == "ratio" and self.amplitude_scale is not None and self.amplitude_log_sd is not None
        )

    def _checked_scales(self, scale) -> float | dict[str, tuple[float, ...]]:
        if not isinstance(scale, Mapping):
            if not (isinstance(scale, numbers.Real) and np.isfinite(scale) and scale > 0):
                raise CubeInputError(f"spatial_scale must be a positive number, got {scale!r}")
            return float(scale)
        if set(scale) != set(self.names):
            raise CubeInputError(f"spatial_scale must give a scale for each of {list(self.names)}, got {list(scale)}")
        out = {}
        for c in self.components:
            try:
                values = np.asarray(scale[c.name], dtype=np.float64)
            except (TypeError, ValueError):
                values = np.full(c.n_latent, np.nan)
            values = np.full(c.n_latent, values) if values.ndim == 0 else values
            if values.shape != (c.n_latent,) or not np.all(np.isfinite(values) & (values > 0)):
                raise CubeInputError(
                    f"spatial_scale of {c.name} must be a positive number or {c.n_latent} of them, got {scale[c.name]!r}"
                )
            out[c.name] = tuple(float(v) for v in values)
        return out

    def _checked_hyperprior(self, bounds) -> tuple[float, float]:
        if self.spatial_prior == "none":
            raise CubeInputError("scale_hyperprior needs a spatial prior (starlet or smooth)")
        try:
            low, high = (float(b) for b in bounds)
        except (TypeError, ValueError):
            raise CubeInputError(f"scale_hyperprior must be two numbers (low, high), got {bounds!r}") from None
        if not (np.isfinite(high) and 0 < low < high):
            raise CubeInputError(f"scale_hyperprior must satisfy 0 < low < high, got {bounds!r}")
        return low, high

    def latent_scales(self, component: SpectralComponent) -> np.ndarray:
        """The spatial prior's scale of each latent of ``component``, as fractions of its range ``(n_latent,)``."""
        if isinstance(self.spatial_scale, dict):
            return np.asarray(self.spatial_scale[component.name])
        return np.full(component.n_latent, self.spatial_scale)

    def on_simplex(self, component: SpectralComponent) -> bool:
        """Whether ``component``'s latents live on the simplex of its anchors in this model."""
        return self.latent_region == "simplex" and is_barycentric(component)

    def latent_support(self, component: SpectralComponent) -> constraints.Constraint:
        """The support of ``theta_<name>``: the simplex, or the ``theta_bounds`` box."""
        if self.on_simplex(component):
            return constraints.simplex
        low, high = (jnp.asarray(b, dtype=jnp.float64) for b in component.theta_bounds)
        return constraints.interval(low, high)

    def with_prior(self, spatial_prior: SpatialPrior, **kw) -> CubeModel:
        """The same components and image with another spatial prior; ``"none"`` (independent pixels) also
        drops the prior on the log amplitude maps."""
        if spatial_prior == "none":
            kw.setdefault("amplitude_scale", None)
            kw.setdefault("scale_hyperprior", None)
        return dataclasses.replace(self, spatial_prior=spatial_prior, **kw)

    def check_counts(self, counts, *, name: str = "counts") -> np.ndarray:
        """Validate a cube ``(n_channels, H, W)`` of non-negative finite values; returns float64.

        Raises :class:`CubeInputError` with a one-line message on a wrong rank, channel count,
        image size, or on negative/non-finite values.
        """
        x = np.asarray(counts)
        if x.ndim != 3:
            raise CubeInputError(f"{name} must be a cube (n_channels, height, width), got shape {x.shape}")
        if x.shape[0] != self.n_channels:
            raise CubeInputError(
                f"{name} has {x.shape[0]} channels but the components have {self.n_channels} "
                f"(the cube's first axis must be the energy channel)"
            )
        if x.shape[1:] != (self.height, self.width):
            raise CubeInputError(f"{name} is {x.shape[1]}x{x.shape[2]} pixels, expected {self.height}x{self.width}")
        if not np.issubdtype(x.dtype, np.number) or np.iscomplexobj(x):
            raise CubeInputError(f"{name} must be real numbers, got dtype {x.dtype}")
        x = x.astype(np.float64)
        if not np.all(np.isfinite(x)) or np.any(x < 0):
            raise CubeInputError(f"{name} must be finite and non-negative")
        return x

    def to_pixels(self, cube) -> jax.Array:
        """``(E, H, W)`` -> ``(P, E)`` with ``p = y * W + x`` (validated)."""
        x = self.check_counts(cube)
        return jnp.asarray(x.reshape(self.n_channels, self.n_pixels).T)

    def to_maps(self, values: jax.Array | np.ndarray) -> np.ndarray:
        """``(..., P, k)`` -> ``(..., k, H, W)`` (the inverse of the pixel flattening for maps)."""
        v = np.asarray(values)
        v = v.reshape(*v.shape[:-2], self.height, self.width, v.shape[-1])
        return np.moveaxis(v, -1, -3)

    def initial_theta(self) -> dict[str, jax.Array]:
        """Every pixel at its component's neutral point: ``{name: (P, n_latent)}``."""
        return {
            c.name: jnp.broadcast_to(jnp.asarray(c.initial_theta()), (self.n_pixels, c.n_latent))
            for c in self.components
        }

    def expected_counts(
        self, amplitude: jax.Array, theta: dict[str, jax.Array], background: jax.Array | None = None
    ) -> jax.Array:
        """Expected counts ``(P, E)`` from amplitudes ``(P, C)``, latents ``{name: (P, n_latent)}`` and
        an optional background ``(P, E)``, every component present; floored at 1e-30 so that ``log`` stays finite."""
        return _total_rate(self.component_counts(amplitude, theta), background)

    def component_counts(self, amplitude: jax.Array, theta: dict[str, jax.Array]) -> jax.Array:
        """Each component's expected counts ``(P, C, E)``."""
        return jnp.stack(
            [amplitude[..., i, None] * c.spectra(theta[c.name]) for i, c in enumerate(self.components)], axis=-2
        )

    def presence_configurations(self) -> tuple[np.ndarray, np.ndarray]:
        """Which components each configuration holds, ``(S, C)`` booleans (every non-empty subset; all of them
        when ``presence_prior`` is off), and its prior log probability ``(S,)`` (normalised over the ``S``)."""
        n = len(self.components)
        if self.presence_prior is None:
            return np.ones((1, n), dtype=bool), np.zeros(1)
        masks = np.array([[(k >> i) & 1 for i in range(n)] for k in range(1, 2**n)], dtype=bool)
        q = self.presence_prior
        log_prior = np.where(masks, np.log(q), np.log1p(-q)).sum(-1)
        return masks, log_prior - np.logaddexp.reduce(log_prior)

    def observation(self, component_counts: jax.Array, background: jax.Array | None = None) -> dist.Distribution:
        """The counts' distribution ``(P, E)`` given each component's expected counts ``(P, C, E)``: Poisson,
        or with ``presence_prior`` a mixture over the presence configurations (:class:`_PresencePoisson`)."""
        if self.presence_prior is None:
            return _RealPoisson(_total_rate(component_counts, background)).to_event(1)
        masks, log_prior = self.presence_configurations()
        return _PresencePoisson(component_counts, background, jnp.asarray(masks, float), jnp.asarray(log_prior))

    def held_out_observation(
        self, component_counts: jax.Array, background: jax.Array | None, fitted: jax.Array
    ) -> dist.Distribution:
        """The distribution of counts that share their rates with ``fitted`` ``(P, E)`` but are independent
        of them (the other half of a binomially thinned cube): :meth:`observation`, whose presence
        configurations are weighted by their posterior given ``fitted`` instead of their prior. Prior weights
        would charge a model for its doubt about configurations that the fitted half has settled (``log 0.64``
        per pixel where both components are bright at ``q = 0.8``)."""
        observation = self.observation(component_counts, background)
        if self.presence_prior is None:
            return observation
        posterior = jax.nn.log_softmax(observation.configuration_log_likelihood(fitted), axis=-1)
        return _PresencePoisson(component_counts, background, observation.masks, posterior)


def _total_rate(component_counts: jax.Array, background: jax.Array | None) -> jax.Array:
    """Every component's counts ``(..., C, E)`` summed, plus the background, floored so that ``log`` stays finite."""
    rate = jnp.sum(component_counts, axis=-2)
    rate = rate if background is None else rate + background
    return jnp.maximum(rate, _RATE_FLOOR)


def poisson_cost(rate: jax.Array, counts: jax.Array) -> jax.Array:
    """SUSHI's Poisson cost ``sum(M - X log(M + 1e-16))`` over all voxels (no ``log X!``; negative on
    bright cubes), so costs of different solvers can be compared on one scale.

    >>> float(poisson_cost(jnp.array([2.0]), jnp.array([2.0])))  # doctest: +ELLIPSIS
    0.613...
    """
    return jnp.sum(rate - counts * jnp.log(rate + 1e-16))


class _RealPoisson(dist.Poisson):
    """Poisson whose log-mass is extended to real counts, ``x log r - r - lgamma(x + 1)``, so that expected
    (noiseless) or background-subtracted cubes can be fitted; equal to the Poisson on integers."""

    support = constraints.nonnegative

    def log_prob(self, value):
        return xlogy(value, self.rate) - self.rate - gammaln(value + 1.0)


class _PresencePoisson(dist.Distribution):
    """Counts ``(..., E)`` from a mixture over presence configurations ``s`` (rows of ``masks``, ``(S, C)``) with
    log weights ``log_prior`` ``(S,)`` (or per pixel, ``(..., S)``): ``log p(x) = logsumexp_s [log_prior_s + log
    Poisson(x | sum_c masks[s, c] * counts[..., c, :] + background)]``, the Poisson extended to real counts as
    :class:`_RealPoisson`. With one configuration holding every component this is the plain Poisson of the summed
    rate."""

    arg_constraints: ClassVar[dict] = {}
    support = constraints.independent(constraints.nonnegative, 1)

    def __init__(self, counts, background, masks, log_prior, *, validate_args: bool | None = None):
        self.counts, self.background, self.masks, self.log_prior = counts, background, masks, log_prior
        super().__init__(jnp.shape(counts)[:-2], jnp.shape(counts)[-1:], validate_args=validate_args)

    def configuration_log_likelihood(self, value: jax.Array) -> jax.Array:
        """``log_prior_s + log Poisson(value | rate_s)`` for each configuration, ``(..., S)``."""
        rate = jnp.einsum("sc,...ce->...se", self.masks, self.counts)
        if self.background is not None:
            rate = rate + self.background[..., None, :]
        rate = jnp.maximum(rate, _RATE_FLOOR)
        value = value[..., None, :]
        log_mass = jnp.sum(xlogy(value, rate) - rate - gammaln(value + 1.0), -1)
        return self.log_prior + log_mass

    def log_prob(self, value):
        return jax.nn.logsumexp(self.configuration_log_likelihood(value), axis=-1)

    def sample(self, key, sample_shape=()):
        """Counts from a configuration drawn with its prior weight, pixel by pixel (posterior predictive draws)."""
        k_config, k_counts = jax.random.split(key)
        shape = (*sample_shape, *self.batch_shape)
        chosen = self.masks[jax.random.categorical(k_config, self.log_prior, shape=shape)]  # (..., C)
        rate = jnp.einsum("...c,...ce->...e", chosen, self.counts)
        rate = rate if self.background is None else rate + self.background
        return jax.random.poisson(k_counts, rate).astype(rate.dtype)


def _amplitude_prior(total: jax.Array, n_components: int, log_sd: float | None) -> dist.Distribution:
    mean = jnp.broadcast_to((jnp.maximum(total, 1.0) / n_components)[..., None], (*total.shape, n_components))
    if log_sd is None:
        return dist.Exponential(1.0 / mean).to_event(1)
    return dist.LogNormal(jnp.log(mean), log_sd).to_event(1)


class _TotalLogNormal(dist.Distribution):
    """Amplitudes ``(..., C)`` whose total is ``LogNormal(loc, scale)`` and whose log ratios are flat (improper):
    the pixel prior under a spatial prior on the log ratio maps. No sampling (the shares have no distribution)."""

    arg_constraints: ClassVar[dict] = {"loc": constraints.real, "scale": constraints.positive}
    support = constraints.independent(constraints.positive, 1)

    def __init__(self, loc: jax.Array, scale: float, n_components: int, *, validate_args: bool | None = None):
        self.loc, self.scale = loc, scale
        super().__init__(jnp.shape(loc), (n_components,), validate_args=validate_args)

    def log_prob(self, value: jax.Array) -> jax.Array:
        # density over (log total, log ratios) is that over log a (unit Jacobian); over a it gains 1 / prod(a)
        log_total = jnp.log(jnp.sum(value, -1))
        return dist.Normal(self.loc, self.scale).log_prob(log_total) - jnp.sum(jnp.log(value), -1)


def _pixel_amplitude_prior(model: CubeModel, total: jax.Array) -> dist.Distribution:
    """Each pixel's amplitude prior: see the module docstring (``total``: the pixels' counts)."""
    if model.prior_on_pixel_totals:
        return _TotalLogNormal(jnp.log(jnp.maximum(total, 1.0)), model.amplitude_log_sd, len(model.components))
    return _amplitude_prior(total, len(model.components), model.amplitude_log_sd)


def point_log_jacobian(model: CubeModel, amplitude: jax.Array) -> jax.Array:
    """What a point estimate adds to the log density: ``sum(log a)`` with log-normal amplitudes, else 0.

    A log-normal prior wide enough to be nearly flat in ``log a`` has its density in ``a`` growing as
    ``1 / a`` towards 0, where a mode in ``a`` would put every weakly determined amplitude; its mode over
    ``log a`` (the coordinates of VI and NUTS) is where the data put it. With the default exponential
    prior the point estimate stays the mode in ``a`` (SUSHI's).
    """
    if model.amplitude_log_sd is None:
        return jnp.zeros(())
    return jnp.sum(jnp.log(amplitude))


def _theta_prior(component: SpectralComponent, on_simplex: bool) -> dist.Distribution:
    if on_simplex:
        return dist.Dirichlet(jnp.ones(component.n_latent))
    low, high = (jnp.asarray(b, dtype=jnp.float64) for b in component.theta_bounds)
    return dist.Uniform(low, high).to_event(1)


def _spatial_log_prior(
    model: CubeModel, component: SpectralComponent, theta: jax.Array, fractions: jax.Array | None = None
) -> jax.Array:
    """Log density of the spatial prior of one component's latent maps (``theta``: ``(P, n_latent)``) at
    scales ``fractions`` of each latent's range (default: the model's)."""
    low, high = (jnp.asarray(b, dtype=jnp.float64) for b in component.theta_bounds)
    fractions = model.latent_scales(component) if fractions is None else fractions
    scale = jnp.asarray(fractions) * (high - low)  # (n_latent,)
    maps = jnp.moveaxis(theta.reshape(model.height, model.width, -1), -1, 0)  # (n_latent, H, W)
    return _map_log_prior(model, maps, scale)


def _amplitude_log_prior(model: CubeModel, amplitude: jax.Array, scale: jax.Array) -> jax.Array:
    """Log density of the spatial prior on the log amplitude (or log ratio) maps (``amplitude``: ``(P, C)``)
    at ``scale``."""
    logs = jnp.log(amplitude)
    level = jnp.zeros(())
    if model.amplitude_prior == "ratio":
        logs = logs[:, 1:] - logs[:, :1]
        if model.prior_on_pixel_totals:  # the ratio maps' level (see _TotalLogNormal)
            level = jnp.sum(dist.Normal(0.0, np.sqrt(2.0) * model.amplitude_log_sd).log_prob(jnp.mean(logs, 0)))
    maps = jnp.moveaxis(logs.reshape(model.height, model.width, -1), -1, 0)  # (C or C - 1, H, W)
    return _map_log_prior(model, maps, jnp.full(maps.shape[0], scale)) + level


def _map_log_prior(model: CubeModel, maps: jax.Array, scale: jax.Array) -> jax.Array:
    """The starlet or smoothness log density of ``maps`` ``(k, H, W)`` with one scale per map ``(k,)``."""
    if model.spatial_prior == "starlet":
        details = starlet_forward(maps, model.n_scales)[:, : model.n_scales]  # (k, J, H, W)
        u = details / scale[:, None, None, None]
        # Laplace with its cusp rounded over |w| < 0.1 s (a hyperbolic density): the same sparsity,
        # but a smooth log density, so quasi-Newton MAP and HMC do not stall at w = 0
        penalty = jnp.sum(jnp.sqrt(u**2 + 0.01) - 0.1)
    else:
        u = jnp.diff(maps, axis=1) / scale[:, None, None], jnp.diff(maps, axis=2) / scale[:, None, None]
        penalty = 0.5 * (jnp.sum(u[0] ** 2) + jnp.sum(u[1] ** 2))
    # Normalised over each map's P pixels, not per coefficient: the penalty is a function of maps / s blind
    # only to constant maps, so its integral is proportional to s^(P - 1) (the constant direction is bounded
    # by the map's own prior). One factor per detail (J P of them) or difference (~2P) would reward strong
    # smoothing by ~(P + 1) log(s' / s) per map and decide every comparison of scales (select_spatial_scale).
    return -penalty - (model.n_pixels - 1) * jnp.sum(jnp.log(scale))


def prior_scales(model: CubeModel) -> dict:
    """The scales of a model's spatial priors as a pytree, ``{"latent": {name: (n_latent,)}, "amplitude":
    float or None}``: the ``scales`` argument of :func:`make_cube_model`'s program."""
    latent = {c.name: np.asarray(model.latent_scales(c), dtype=np.float64) for c in model.components}
    return {"latent": latent, "amplitude": model.amplitude_scale}


def scale_prior(model: CubeModel) -> dist.Distribution:
    """The hyperprior of one learned scale (a fraction of its latent's range): log-uniform on ``scale_hyperprior``."""
    return dist.LogUniform(*model.scale_hyperprior)


def scale_sites(model: CubeModel) -> tuple[str, ...]:
    """Names of the learned-scale sites ``scale_<name>`` ``(n_latent,)``; empty without a ``scale_hyperprior``."""
    return () if model.scale_hyperprior is None else tuple(f"scale_{n}" for n in model.names)


def scale_start(model: CubeModel) -> dict[str, np.ndarray]:
    """Where learned scales start: the model's ``spatial_scale``, moved inside the hyperprior's bounds."""
    if model.scale_hyperprior is None:
        return {}
    low, high = model.scale_hyperprior
    margin = (high / low) ** 1e-3  # a point strictly inside has an unconstrained image
    return {f"scale_{c.name}": np.clip(model.latent_scales(c), low * margin, high / margin) for c in model.components}


def make_cube_model(model: CubeModel) -> Callable[..., None]:
    """The NumPyro program ``program(counts, background=None, scales=None)`` of a cube model.

    ``counts`` is ``(P, E)`` float64 (see :meth:`CubeModel.to_pixels`), ``background`` ``(P, E)``
    expected counts or ``None``; ``scales`` (default :func:`prior_scales` of ``model``) may be traced, so
    one compiled program serves models that differ only in their prior scales (whether the amplitude
    prior is on is the model's). With a ``scale_hyperprior`` and no ``scales`` given, the latent scales are
    the sites ``scale_<name>``; given ``scales`` fix them (the MAP and cross-validation do).
    """

    # jitted pieces: NumPyro runs the model eagerly when it sets up guides and samplers, where
    # un-jitted code would compile every primitive separately (minutes on a loaded CPU)
    counts_fn = jax.jit(model.component_counts)
    parameter_fns = {c.name: jax.jit(c.parameters) for c in model.components}
    spatial_fns = _spatial_fns(model)
    defaults = prior_scales(model)
    amplitude_fn = jax.jit(functools.partial(_amplitude_log_prior, model))

    def program(counts: jax.Array, background: jax.Array | None = None, scales: dict | None = None) -> None:
        if scales is None:
            scales = defaults if model.scale_hyperprior is None else {**defaults, "latent": _sample_scales(model)}
        n_pixels = counts.shape[0]
        total = counts.sum(-1)
        with numpyro.plate("pixel", n_pixels):
            amplitude = numpyro.sample("amplitude", _pixel_amplitude_prior(model, total))
            theta = _latent_sites(model, parameter_fns)
            numpyro.sample("obs", model.observation(counts_fn(amplitude, theta), background), obs=counts)
        _spatial_factors(model, spatial_fns, theta, scales["latent"])
        if model.amplitude_scale is not None:
            numpyro.factor("spatial_amplitude", amplitude_fn(amplitude, scales["amplitude"]))

    return program


def _sample_scales(model: CubeModel) -> dict[str, jax.Array]:
    """Each component's ``scale_<name>`` site ``(n_latent,)``: log-uniform on the hyperprior's bounds."""
    prior = scale_prior(model)
    return {
        c.name: numpyro.sample(f"scale_{c.name}", prior.expand((c.n_latent,)).to_event(1)) for c in model.components
    }


def _latent_sites(model: CubeModel, parameter_fns: dict) -> dict[str, jax.Array]:
    """Each component's ``theta_<name>`` site and its ``<name>_parameters`` (inside the pixel plate)."""
    theta = {}
    for c in model.components:
        theta[c.name] = numpyro.sample(f"theta_{c.name}", _theta_prior(c, model.on_simplex(c)))
        numpyro.deterministic(f"{c.name}_parameters", parameter_fns[c.name](theta[c.name]))
    return theta


def _spatial_fns(model: CubeModel) -> dict[str, Callable]:
    return {c.name: jax.jit(functools.partial(_spatial_log_prior, model, c)) for c in model.components}


def _spatial_factors(model: CubeModel, spatial_fns: dict, theta: dict, scales: dict) -> None:
    """One factor ``spatial_<name>`` per component: the spatial prior of its latent maps."""
    if model.spatial_prior != "none":
        for c in model.components:
            numpyro.factor(f"spatial_{c.name}", spatial_fns[c.name](theta[c.name], scales[c.name]))


def make_latent_prior_model(model: CubeModel) -> Callable[[], None]:
    """The NumPyro program ``program()`` of the latent maps' prior alone: each pixel's latent prior and the
    spatial prior at the model's scales, without amplitudes or data.

    Its sites are :func:`make_cube_model`'s ``theta_<name>`` ``(P, n_latent)`` and ``<name>_parameters``.
    The starlet prior is an analysis prior (a density on the map's detail coefficients), which has no direct
    sampler: NUTS on this program draws latent maps from it, the truths of prior-predictive cubes on which
    posterior intervals must cover at their nominal rate (``benchmarks/cube_prior_coverage.py``).
    """
    parameter_fns = {c.name: jax.jit(c.parameters) for c in model.components}  # see make_cube_model
    spatial_fns = _spatial_fns(model)
    scales = prior_scales(model)["latent"]

    def program() -> None:
        with numpyro.plate("pixel", model.n_pixels):
            theta = _latent_sites(model, parameter_fns)
        _spatial_factors(model, spatial_fns, theta, scales)

    return program


def make_pixel_model(model: CubeModel) -> Callable[..., None]:
    """The single-pixel program ``program(counts, background=None)`` (``counts``: ``(E,)``) of a cube model.

    Same priors and site names as :func:`make_cube_model` with ``spatial_prior="none"`` but without
    the pixel axis, so it can be ``vmap``-ped over pixels (the pixel-by-pixel baseline).
    """
    components = model.components
    spectra_fns = {c.name: jax.jit(c.spectra) for c in components}  # see make_cube_model
    parameter_fns = {c.name: jax.jit(c.parameters) for c in components}

    def program(counts: jax.Array, background: jax.Array | None = None) -> None:
        amplitude = numpyro.sample("amplitude", _amplitude_prior(counts.sum(), len(components), model.amplitude_log_sd))
        rates = []
        for i, c in enumerate(components):
            theta = numpyro.sample(f"theta_{c.name}", _theta_prior(c, model.on_simplex(c)))
            numpyro.deterministic(f"{c.name}_parameters", parameter_fns[c.name](theta))
            rates.append(amplitude[i] * spectra_fns[c.name](theta))
        numpyro.sample("obs", model.observation(jnp.stack(rates), background), obs=counts)

    return program
