"""The one place where cube inference output becomes an ArviZ DataTree (maps with named dims).

Every cube method (MAP, VI, NUTS, pixel-by-pixel) hands over draws of the sample sites shaped
``(chain, draw, P, ...)`` in the model's space; this module returns one schema:

* ``posterior``: ``amplitude`` (component, y, x) in expected counts per pixel, ``theta_<name>``
  (latent_<name>, y, x), and one map per physical parameter, ``<name>_<parameter>`` (y, x), e.g.
  ``thermal_kT_keV``, ``thermal_z``, ``synchrotron_photon_index``; for a model with a presence prior,
  ``amplitude`` is 0 in the draws where a component is absent (indicators drawn from their conditional
  posterior) and ``presence`` (component, y, x) is each component's conditional probability of presence;
* ``maps``: the same variables summarised over draws along a ``stat`` dim: ``mean``, ``sd`` and the
  equal-tailed quantiles of ``ci_prob`` (``q05``, ``q95`` for 90 %), plus ``deviance`` (y, x), the
  Poisson deviance per channel of each pixel at the posterior-mean point, ``expected_deviance`` (y, x), its
  expectation had the counts been drawn at those rates (about 1 only at high counts), and ``total_counts``
  (y, x);
* ``observed_data``: ``counts`` (channel, y, x); ``constant_data``: ``energy_kev`` (channel) if known;
* ``sample_stats``: what the method reports; attrs: method, components, versions and settings.
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import xarray as xr

import bayes_unmix
from bayes_unmix.models.cube import CubeModel, scale_sites

__all__ = [
    "expected_poisson_deviance",
    "load_maps",
    "map_point",
    "save_maps",
    "stat_labels",
    "summary_maps",
    "to_cube_datatree",
]

_PARAM_BATCH = 64  # draws per call when evaluating the physical parameters (bounds memory)


def stat_labels(ci_prob: float = 0.9) -> tuple[str, ...]:
    """Labels of the ``stat`` dim: ``("mean", "sd", "q05", "q95")`` for ``ci_prob=0.9``.

    >>> stat_labels(0.9)
    ('mean', 'sd', 'q05', 'q95')
    """
    if not 0 < ci_prob < 1:
        raise ValueError(f"ci_prob must be in (0, 1), got {ci_prob}")
    tail = 100 * (1 - ci_prob) / 2
    return "mean", "sd", f"q{tail:02.3g}", f"q{100 - tail:02.3g}"


def _parameters(model: CubeModel, draws: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Physical parameter draws ``{<name>_<parameter>: (chain, draw, P)}`` from the theta draws."""
    out = {}
    for c in model.components:
        theta = np.asarray(draws[f"theta_{c.name}"])
        flat = theta.reshape(-1, *theta.shape[2:])
        fn = jax.jit(c.parameters)
        values = np.concatenate(
            [np.asarray(fn(jnp.asarray(flat[i : i + _PARAM_BATCH]))) for i in range(0, len(flat), _PARAM_BATCH)]
        )
        values = values.reshape(*theta.shape[:-1], -1)
        for k, name in enumerate(c.parameter_names):
            out[f"{c.name}_{name}"] = values[..., k]
    return out


def _draw_presence(model: CubeModel, x: np.ndarray, draws: dict, background, key: jax.Array) -> dict:
    """Presence indicators drawn from their conditional posterior given each draw ``(chain, draw, P, ...)``."""
    masks, _ = model.presence_configurations()
    masks = jnp.asarray(masks, dtype=jnp.float64)
    obs = jnp.asarray(x.reshape(model.n_channels, -1).T)
    bkg = None if background is None else model.to_pixels(background)
    lead = np.shape(draws["amplitude"])[:2]
    flat = {k: jnp.asarray(np.asarray(v).reshape(-1, *np.shape(v)[2:])) for k, v in draws.items()}
    point = len(flat["amplitude"]) == 1

    def one(args):
        a, theta, k = args
        counts = model.component_counts(a, {n: theta[f"theta_{n}"] for n in model.names})
        log_post = jax.nn.log_softmax(model.observation(counts, bkg).configuration_log_likelihood(obs), axis=-1)
        chosen = jnp.argmax(log_post, -1) if point else jax.random.categorical(k, log_post)
        return jnp.exp(log_post) @ masks, a * masks[chosen]

    thetas = {f"theta_{n}": flat[f"theta_{n}"] for n in model.names}
    keys = jax.random.split(key, len(flat["amplitude"]))
    presence, present = jax.jit(lambda *a: jax.lax.map(one, a, batch_size=4))(flat["amplitude"], thetas, keys)
    reshape = lambda v: np.asarray(v).reshape(*lead, *v.shape[1:])
    return {**draws, "amplitude": reshape(present), "presence": reshape(presence)}


def _summary(values: np.ndarray, ci_prob: float) -> np.ndarray:
    """``(chain, draw, ...)`` -> ``(4, ...)``: mean, sd (NaN for one draw), lower and upper quantiles."""
    flat = values.reshape(-1, *values.shape[2:])
    if len(flat) < 2:
        nan = np.full(flat.shape[1:], np.nan)
        return np.stack([flat[0], nan, nan, nan])
    tail = (1 - ci_prob) / 2
    low, high = np.quantile(flat, [tail, 1 - tail], axis=0)
    return np.stack([flat.mean(0), flat.std(0, ddof=1), low, high])


def _deviance(
    model: CubeModel, x: np.ndarray, point: dict[str, np.ndarray], background
) -> tuple[np.ndarray, np.ndarray]:
    """Poisson deviance per channel of every pixel, ``(H, W)``, at ``point`` (sites ``(P, ...)``), and its
    expectation were the counts drawn from those rates (:func:`expected_poisson_deviance`)."""
    theta = {n: jnp.asarray(point[f"theta_{n}"]) for n in model.names}
    bkg = None if background is None else model.to_pixels(background)
    rate = np.asarray(model.expected_counts(jnp.asarray(point["amplitude"]), theta, bkg))
    obs = x.reshape(model.n_channels, -1).T
    log_term = np.where(obs > 0, obs * np.log(np.where(obs > 0, obs, 1.0) / rate), 0.0)
    shape = (model.height, model.width)
    deviance = 2 * (log_term - (obs - rate)).sum(-1) / model.n_channels
    return deviance.reshape(shape), expected_poisson_deviance(rate).mean(-1).reshape(shape)


@functools.cache
def _expected_deviance_table(n: int = 551) -> tuple[np.ndarray, np.ndarray]:
    """``E[D]`` on a grid of ``log10 mu`` from -8 to 3, by exact summation over the Poisson counts."""
    log_mu = np.linspace(-8.0, 3.0, n)
    mu = 10.0**log_mu
    k = np.arange(int(mu[-1] + 12 * np.sqrt(mu[-1]) + 40))[:, None]
    log_pmf = k * np.log(mu) - mu - np.cumsum(np.log(np.maximum(k, 1)), axis=0)
    k_log_k = np.where(k > 0, k * np.log(np.maximum(k, 1) / mu), 0.0)  # E[k - mu] = 0: only this term stays
    return log_mu, 2.0 * np.sum(np.exp(log_pmf) * k_log_k, axis=0)


def expected_poisson_deviance(rate) -> np.ndarray:
    """Expected Poisson deviance ``E[2 (k log(k / mu) - (k - mu))]`` of one count ``k ~ Poisson(mu)``, elementwise.

    About 1 at high counts (``1 + 1 / (6 mu)``), up to 1.14 near ``mu = 2`` and towards 0 at low rates (0.30
    at ``mu = 0.05``): a sparse cube's deviance per channel is judged against this, not against 1.

    >>> [round(float(v), 3) for v in expected_poisson_deviance(np.array([0.05, 2.0, 100.0]))]
    [0.303, 1.139, 1.002]
    """
    log_mu = np.log10(np.maximum(np.asarray(rate, dtype=np.float64), 1e-8))
    high = 1.0 + 1.0 / (6.0 * 10.0**log_mu)  # past the table: the large-mean expansion (error < 1e-6)
    return np.where(log_mu <= 3.0, np.interp(log_mu, *_expected_deviance_table()), high)


def to_cube_datatree(
    model: CubeModel,
    counts,
    draws: dict[str, np.ndarray],
    *,
    method: str,
    background=None,
    energies_kev=None,
    sample_stats: dict[str, np.ndarray] | None = None,
    attrs: dict[str, Any] | None = None,
    ci_prob: float = 0.9,
    key: jax.Array | None = None,
) -> xr.DataTree:
    """DataTree of a cube posterior (or a point estimate: one chain, one draw).

    Parameters
    ----------
    model : CubeModel
    counts : array, shape (E, H, W)
    draws : dict
        ``amplitude`` ``(chain, draw, P, C)`` and ``theta_<name>`` ``(chain, draw, P, n_latent)``.
    method : str
        Recorded in ``attrs["method"]``.
    background : array, shape (E, H, W), optional
        Used for the deviance map.
    energies_kev : array, shape (E,), optional
    sample_stats : dict, optional
        Per-draw diagnostics ``(chain, draw)``.
    attrs : dict, optional
        Extra attributes (settings, timings).
    ci_prob : float
        Probability of the equal-tailed interval of the ``maps`` group.
    key : jax.Array, optional
        With a ``presence_prior``, draws the presence indicators (default ``jax.random.key(0)``): ``amplitude``
        then holds the amplitudes of the present components and 0 for the absent ones, and ``presence`` each
        component's probability of being present given the draw's amplitudes and latents (its mean over draws
        is the posterior probability). A point estimate (one draw) takes the most probable configuration.
    """
    x = model.check_counts(counts)
    dims = {"amplitude": ["component", "y", "x"], "counts": ["channel", "y", "x"], "energy_kev": ["channel"]}
    missing = [s for s in ("amplitude", *(f"theta_{n}" for n in model.names)) if s not in draws]
    if missing:
        raise ValueError(f"draws lack the sites {missing}")
    if model.presence_prior is not None:
        draws = _draw_presence(model, x, draws, background, jax.random.key(0) if key is None else key)
    posterior = {"amplitude": model.to_maps(draws["amplitude"])}
    if "presence" in draws:
        posterior["presence"] = model.to_maps(draws["presence"])
        dims["presence"] = ["component", "y", "x"]
    for c in model.components:
        posterior[f"theta_{c.name}"] = model.to_maps(draws[f"theta_{c.name}"])
        dims[f"theta_{c.name}"] = [f"latent_{c.name}", "y", "x"]
        if f"scale_{c.name}" in draws:  # learned scales: one per latent, not maps
            posterior[f"scale_{c.name}"] = np.asarray(draws[f"scale_{c.name}"])
            dims[f"scale_{c.name}"] = [f"latent_{c.name}"]
    for name, values in _parameters(model, draws).items():
        posterior[name] = values.reshape(*values.shape[:2], model.height, model.width)
        dims[name] = ["y", "x"]
    coords = {"component": list(model.names), "y": np.arange(model.height), "x": np.arange(model.width)}
    integer = np.all(x == np.round(x))
    groups = {"posterior": posterior, "observed_data": {"counts": x.astype(np.int64) if integer else x}}
    if energies_kev is not None:
        groups["constant_data"] = {"energy_kev": np.asarray(energies_kev, dtype=np.float64)}
    if sample_stats:
        groups["sample_stats"] = {}
        for name, v in sample_stats.items():  # per-pixel stats (chain, draw, P) become maps
            v = np.asarray(v)
            if v.ndim == 3:
                v, dims[name] = v.reshape(*v.shape[:2], model.height, model.width), ["y", "x"]
            groups["sample_stats"][name] = v
    tree = az.from_dict(groups, dims=dims, coords=coords)
    tree["maps"] = xr.DataTree(_maps_dataset(model, x, tree, draws, background, ci_prob))
    tree.attrs.update(_record(model, method, ci_prob, attrs))
    if scale_sites(model) and all(k in draws for k in scale_sites(model)):  # a MAP point has none
        tree.attrs.update(_learned_scales(model, draws, ci_prob))
    return tree


def _learned_scales(model: CubeModel, draws: dict, ci_prob: float) -> dict[str, str]:
    """Posterior medians of learned scales as ``spatial_scale`` JSON (reusable as fixed scales) and their
    equal-tailed ``ci_prob`` intervals, ``{name: [[low, high] per latent]}``."""
    tail = 100 * (1 - ci_prob) / 2
    median, interval = {}, {}
    for c in model.components:
        s = np.asarray(draws[f"scale_{c.name}"]).reshape(-1, c.n_latent)
        median[c.name] = [float(f"{v:.3g}") for v in np.median(s, 0)]
        interval[c.name] = [[float(f"{v:.3g}") for v in pair] for pair in np.percentile(s, [tail, 100 - tail], 0).T]
    return {"learned_spatial_scale": json.dumps(median), "learned_spatial_scale_interval": json.dumps(interval)}


def _maps_dataset(model, x, tree, draws, background, ci_prob) -> xr.Dataset:
    post = tree["posterior"].to_dataset()
    labels = stat_labels(ci_prob)
    maps = {
        name: xr.DataArray(
            _summary(da.values, ci_prob), dims=("stat", *da.dims[2:]), coords=da.coords.drop_vars(["chain", "draw"])
        )
        for name, da in post.data_vars.items()
        if {"y", "x"} <= set(da.dims)
    }
    mean_point = {k: np.asarray(v).reshape(-1, *np.shape(v)[2:]).mean(0) for k, v in draws.items()}
    deviance, expected = _deviance(model, x, mean_point, background)
    maps["deviance"] = xr.DataArray(deviance, dims=("y", "x"))
    maps["expected_deviance"] = xr.DataArray(expected, dims=("y", "x"))
    maps["total_counts"] = xr.DataArray(x.sum(0), dims=("y", "x"))
    ds = xr.Dataset(maps).assign_coords(stat=list(labels))
    ds.attrs["ci_prob"] = ci_prob
    return ds


def scale_attr(model: CubeModel) -> float | str:
    """The spatial prior's scale as a netCDF attribute: a number, or per-latent scales as JSON."""
    scale = model.spatial_scale
    return json.dumps(scale) if isinstance(scale, dict) else scale


def _record(model: CubeModel, method: str, ci_prob: float, attrs: dict | None) -> dict[str, Any]:
    return {
        "method": method,
        "components": ",".join(model.names),
        "parameters": ",".join(f"{c.name}_{p}" for c in model.components for p in c.parameter_names),
        "spatial_prior": model.spatial_prior,
        "spatial_scale": scale_attr(model),
        "amplitude_scale": "off" if model.amplitude_scale is None else model.amplitude_scale,
        "amplitude_prior": model.amplitude_prior,
        "amplitude_log_sd": "off" if model.amplitude_log_sd is None else model.amplitude_log_sd,
        "presence_prior": "off" if model.presence_prior is None else model.presence_prior,
        "scale_hyperprior": "off" if model.scale_hyperprior is None else json.dumps(model.scale_hyperprior),
        "n_scales": model.n_scales,
        "ci_prob": ci_prob,
        "bayes_unmix_version": bayes_unmix.__version__,
        "jax_version": jax.__version__,
        "numpyro_version": numpyro.__version__,
        **(attrs or {}),
    }


def summary_maps(tree: xr.DataTree) -> xr.Dataset:
    """The ``maps`` group: every posterior variable with a leading ``stat`` dim (see the module docstring)."""
    return tree["maps"].to_dataset()


def map_point(tree: xr.DataTree) -> dict[str, np.ndarray]:
    """Posterior-mean sites ``{site: (P, ...)}`` (e.g. to warm-start another method; with a presence prior the
    amplitude is the mean of the reported amplitudes, 0 where a component was absent in every draw)."""
    post = tree["posterior"].to_dataset()
    point = {}
    for name in [v for v in post.data_vars if v == "amplitude" or v.startswith("theta_")]:
        mean = post[name].mean(("chain", "draw")).values  # (k, H, W)
        point[name] = mean.reshape(mean.shape[0], -1).T
    return point


def save_maps(tree: xr.DataTree, path: str | os.PathLike, *, posterior: bool = False) -> Path:
    """Write the maps (and attrs, energies) to netCDF; the posterior draws and the count cube only
    when ``posterior`` (they can be large: draws x pixels x variables, channels x pixels)."""
    keep = ["maps", "constant_data", "sample_stats"] + (["posterior", "observed_data"] if posterior else [])
    out = xr.DataTree(name=tree.name)
    out.attrs.update(tree.attrs)
    for name in keep:
        if name in tree.children:
            out[name] = tree[name].copy()
    path = Path(path)
    out.to_netcdf(path, engine="h5netcdf")
    return path


def load_maps(path: str | os.PathLike) -> xr.DataTree:
    """Read a file written by :func:`save_maps` (fully loaded; the file is closed)."""
    with xr.open_datatree(path, engine="h5netcdf") as tree:
        return tree.load()
