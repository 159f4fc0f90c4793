"""Poisson unmixing of gamma-ray spectra with IAE spectral models, as NumPyro programs.

For counts ``y`` over ``n`` channels of the model's energy window,

    y ~ Poisson( a_bkg * b + sum_i a_i X_i(lambda_i) ),

where ``b`` is a unit-sum background signature, ``X_i`` are unit-sum signatures decoded by a trained
IAE from barycentric weights ``lambda`` (one shared ``lambda`` for a joint model, one per nuclide for
an individual model), or fixed ("oracle"), and ``a >= 0`` are the **expected counts** of each
component inside the window. Deterministic sites give what users report: ``signatures``, the
physical parameter (e.g. ``thickness_mm``), and ``activity_bq = a_i / (eta_i(t) * live_time)``
when the spectral model has efficiencies and a live time is given.

Sites (dims): ``counts`` (component), ``u`` (latent) or ``weights`` (latent, anchor), the
parameter (latent), ``activity_bq`` (nuclide), ``signatures`` (nuclide, channel), ``rate`` and
``obs`` (channel).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist

from bayes_unmix.iae.spectral_model import SpectralModel

__all__ = ["BACKGROUND", "GammaMixture", "make_model"]

BACKGROUND = "background"
CountPrior = Literal["uniform", "exponential", "sparse"]


@dataclasses.dataclass(frozen=True, eq=False)  # identity hash: compiled solvers are cached per mixture
class GammaMixture:
    """What to unmix and with which assumptions (static; the counts are the model's only data).

    Parameters
    ----------
    nuclides:
        Component names (without the background), in signature order.
    n_channels:
        Channels of the model's energy window.
    background:
        Unit-sum background signature ``(n,)``; ``None`` for no background component.
    spectral_model:
        IAE signatures (unknown or known shielding). Exclusive with ``signatures``.
    signatures:
        Fixed unit-sum signatures ``(S, n)`` (the "oracle").
    known_weights:
        Fixed barycentric weights ``(n_latents, d)``: known shielding with a spectral model.
    count_prior:
        ``"uniform"``: a_i ~ U(0, count_max * total) (flat, as the published uncertainty study);
        ``"exponential"``: a_i ~ Exp(mean = total / (S + 1)) (mild shrinkage);
        ``"sparse"``: a_i ~ Gamma(0.2, ...) with the same mean, which piles mass near zero for nuclides
        that may be absent. The background always gets the uniform prior.
    count_max:
        Upper bound of the uniform prior as a multiple of the total counts.
    weight_box:
        Bounds of the latent coordinate ``u = lambda_2`` (two anchors). With more anchors the
        weights get a flat Dirichlet prior.
    live_time_s:
        Live time; with spectral-model efficiencies, activities are reported in Bq.
    absent:
        Nuclides held at zero counts (the null hypotheses of identification tests). Their rows stay in
        every output (``counts`` is zero for them), so fits with and without them share one schema.
    """

    nuclides: tuple[str, ...]
    n_channels: int
    background: np.ndarray | None = None
    spectral_model: SpectralModel | None = None
    signatures: np.ndarray | None = None
    known_weights: np.ndarray | None = None
    count_prior: CountPrior = "uniform"
    count_max: float = 1.5
    weight_box: tuple[float, float] = (0.0, 1.0)
    live_time_s: float | None = None
    absent: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if (self.spectral_model is None) == (self.signatures is None):
            raise ValueError("give exactly one of spectral_model (IAE signatures) or signatures (fixed)")
        if self.signatures is not None and np.shape(self.signatures) != (len(self.nuclides), self.n_channels):
            raise ValueError(f"fixed signatures must have shape ({len(self.nuclides)}, {self.n_channels})")
        if self.background is not None and np.shape(self.background) != (self.n_channels,):
            raise ValueError(f"the background must have {self.n_channels} channels, got {np.shape(self.background)}")
        if self.count_prior not in ("uniform", "exponential", "sparse"):
            raise ValueError(f"unknown count prior {self.count_prior!r}")
        if self.live_time_s is not None and not self.live_time_s > 0:
            raise ValueError("the live time must be positive")
        if not set(self.absent) <= set(self.nuclides):
            raise ValueError(f"absent nuclides {sorted(set(self.absent) - set(self.nuclides))} are not in the mixture")

    @classmethod
    def from_spectral_model(cls, model: SpectralModel, background: np.ndarray | None = None, **kw) -> GammaMixture:
        """A mixture of all of ``model``'s nuclides (and the background); ``kw`` sets the other options."""
        return cls(
            nuclides=model.nuclides, n_channels=model.n_channels, background=background, spectral_model=model, **kw
        )

    @property
    def components(self) -> tuple[str, ...]:
        return ((BACKGROUND,) if self.background is not None else ()) + self.nuclides

    @property
    def present(self) -> np.ndarray:
        """Indices of the nuclides whose counts are free (not held at zero by ``absent``)."""
        return np.array([i for i, n in enumerate(self.nuclides) if n not in self.absent], dtype=int)

    @property
    def free_components(self) -> np.ndarray:
        """Indices (in :attr:`components`) of the components whose counts are free."""
        offset = 1 if self.background is not None else 0
        return np.concatenate([np.arange(offset), offset + self.present]).astype(int)

    @property
    def latent(self) -> bool:
        """True when the shielding is unknown (weights are sampled)."""
        return self.spectral_model is not None and self.known_weights is None

    @property
    def latent_names(self) -> tuple[str, ...]:
        if self.spectral_model is None:
            return ()
        return ("joint",) if self.spectral_model.joint else self.nuclides

    def templates(self, signatures: jax.Array) -> jax.Array:
        """Unit-sum templates (component, channel): the background (if any) above ``signatures``."""
        if self.background is None:
            return signatures
        return jnp.concatenate([jnp.asarray(self.background)[None], signatures])

    def signatures_for(self, weights: jax.Array | None) -> jax.Array:
        """Nuclide signatures ``(S, n)``: fixed ones, or the spectral model's at ``weights``."""
        return jnp.asarray(self.signatures) if self.spectral_model is None else self.spectral_model.signatures(weights)

    def activities_defined(self) -> bool:
        return bool(self.live_time_s and self.spectral_model is not None and self.spectral_model.efficiencies)


def _count_prior(mix: GammaMixture, total: jax.Array, n: int, kind: str) -> dist.Distribution:
    if kind == "uniform":
        return dist.Uniform(jnp.zeros(n), mix.count_max * total * jnp.ones(n))
    mean = total / len(mix.components)
    shape = 1.0 if kind == "exponential" else 0.2
    return dist.Gamma(shape * jnp.ones(n), shape / mean * jnp.ones(n))


def _weights(mix: GammaMixture) -> jax.Array:
    sm = mix.spectral_model
    if mix.known_weights is not None:
        return jnp.asarray(mix.known_weights)
    with numpyro.plate("latent", sm.n_latents):
        if sm.n_anchors == 2:
            u = numpyro.sample("u", dist.Uniform(*mix.weight_box))
            return jnp.stack([1.0 - u, u], axis=-1)
        return numpyro.sample("weights", dist.Dirichlet(jnp.ones(sm.n_anchors)))


def make_model(mix: GammaMixture) -> Callable[[jax.Array], None]:
    """The NumPyro model ``model(counts)`` of ``mix`` (counts: ``(n_channels,)``, float64)."""
    if mix.spectral_model is not None and mix.spectral_model.n_channels != mix.n_channels:
        raise ValueError("the spectral model's channel grid differs from the mixture's")

    def model(counts: jax.Array) -> None:
        total = jnp.maximum(jnp.sum(counts), 1.0)
        if mix.spectral_model is None:
            signatures = jnp.asarray(mix.signatures)
        else:
            weights = _weights(mix)
            signatures = numpyro.deterministic("signatures", mix.spectral_model.signatures(weights))
            parameter = numpyro.deterministic(mix.spectral_model.parameter_name, mix.spectral_model.parameter(weights))
        parts = []
        if mix.background is not None:
            parts.append(numpyro.sample("count_background", _count_prior(mix, total, 1, "uniform")))
        free = numpyro.sample("count_nuclides", _count_prior(mix, total, len(mix.present), mix.count_prior))
        parts.append(jnp.zeros(len(mix.nuclides), free.dtype).at[mix.present].set(free))
        counts_per_component = numpyro.deterministic("counts", jnp.concatenate(parts))
        templates = mix.templates(signatures)
        rate = numpyro.deterministic("rate", jnp.maximum(counts_per_component @ templates, 1e-30))
        if mix.activities_defined():
            eta = mix.spectral_model.counts_per_decay(jnp.broadcast_to(parameter, (len(mix.nuclides),)))
            numpyro.deterministic("activity_bq", counts_per_component[-len(mix.nuclides) :] / (eta * mix.live_time_s))
        with numpyro.plate("channel", mix.n_channels):
            numpyro.sample("obs", dist.Poisson(rate), obs=counts)

    return model
