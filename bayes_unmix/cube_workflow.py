"""Cube workflows behind ``bayes-unmix fit-cube`` and ``bayes-unmix demo --cube``: files in, maps out.

Inputs are validated up front (cube, components, background, channels), so bad input stops with a
one-line :class:`CubeFitError` before anything is written; outputs are written to a temporary folder
and moved into place at the end (all or nothing):

* ``maps.nc``: the DataTree's ``maps`` group (mean, sd, 5 % and 95 % maps of amplitudes, latents and
  physical parameters; deviance), attrs and energies (see :mod:`bayes_unmix.inference.cube_convert`);
  ``posterior.nc`` too with ``save_draws``;
* ``map_<variable>.png`` (mean, sd, interval bounds side by side) and ``maps_mean.png``;
* ``summary.json`` and ``report.md``.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import jax
import numpy as np
import xarray as xr

from bayes_unmix.models.component import SpectralComponent
from bayes_unmix.models.cube import CubeInputError, CubeModel

__all__ = [
    "CubeFitError",
    "cube_summary",
    "fit_cube",
    "load_components",
    "parse_model_specs",
    "run_cube_demo",
    "write_cube_outputs",
]

METHODS = ("map", "vi", "nuts", "pixel")
# amplitude-prior scales tried by amplitude_scale="auto" (besides off); on the 94x94 toy cube held-out counts
# favoured 1.0 (log maps and ratio map; benchmarks/amplitude_prior_cv.py and the README's cube section)
AMPLITUDE_CANDIDATES = (0.3, 1.0, 3.0)
# presence priors tried by presence_prior="auto" (besides off)
PRESENCE_CANDIDATES = (0.5, 0.8, 0.95)
# fit_cube's priors when none are given: the scales cross-validation chose on the toy and sGMCA scenes, as near as
# one latent scale comes (kT and photon index 0.1, z 0.03), and the log-ratio prior at 1.0. At fit-cube's earlier
# defaults (0.02, no amplitude prior) VI intervals covered the toy's kT 34 % and photon index 5 %
# (benchmarks/cube_defaults.py)
DEFAULT_SPATIAL_SCALE = 0.1
DEFAULT_AMPLITUDE_SCALE = 1.0
# the log-uniform hyperprior of learned latent scales (learn_scales=True): fractions of each latent's range, wide
# around the cross-validation's candidates
SCALE_HYPERPRIOR = (0.001, 1.0)
_AMPLITUDE_MAPS = {"log": "log amplitudes", "ratio": "log amplitude ratios"}


class CubeFitError(ValueError):
    """A cube fit that cannot run (bad cube, model, background or option): one-line message."""


class _Renamed:
    """A component under another name (the ``NAME`` of ``--model NAME=SPEC``); everything else delegates."""

    def __init__(self, component: SpectralComponent, name: str):
        self._component, self.name = component, name

    def __getattr__(self, attr):
        return getattr(self._component, attr)

    @property
    def theta_bounds(self):
        return self._component.theta_bounds


def parse_model_specs(specs: Sequence[str]) -> dict[str, str]:
    """``["thermal=xray_thermal", "synchrotron=path.npz"]`` -> ``{name: spec}`` (order kept)."""
    out: dict[str, str] = {}
    for item in specs:
        name, sep, spec = item.partition("=")
        if not sep or not name or not spec:
            raise CubeFitError(f"--model must read NAME=MODEL (a file or a pretrained name), got {item!r}")
        if name in out:
            raise CubeFitError(f"component {name!r} given twice")
        out[name] = spec
    if not out:
        raise CubeFitError("give at least one --model NAME=MODEL")
    return out


def _load_one(spec: str) -> SpectralComponent:
    from bayes_unmix.iae.serialize import ModelFileError

    if spec.startswith("simulator:"):
        from bayes_unmix.data.xray import SimulatorComponent

        kind = spec.split(":", 1)[1]
        if kind not in ("thermal", "synchrotron"):
            raise CubeFitError(f"unknown simulator component {kind!r}; use simulator:thermal or simulator:synchrotron")
        return getattr(SimulatorComponent, kind)()
    try:
        from bayes_unmix.iae.component_model import IAEComponent
        from bayes_unmix.pretrained import XRAY_COMPONENTS, load_component

        path, _, coordinates = spec.partition(":")  # "xray_thermal:weights": barycentric latents
        if coordinates not in ("", "weights"):
            raise CubeFitError(f"{spec}: unknown coordinates {coordinates!r}; append nothing or ':weights'")
        if Path(path).is_file():
            component = IAEComponent.load(path)
            physical = not coordinates and component.physical_map is not None
            return component.in_physical_coordinates() if physical else component
        if path in XRAY_COMPONENTS:
            return load_component(path, coordinates=coordinates or "physical")
    except (ModelFileError, KeyError, OSError) as exc:
        raise CubeFitError(f"{spec}: {exc.args[0] if exc.args else exc}") from None
    raise CubeFitError(f"no model file {spec} (pretrained X-ray components: {', '.join(XRAY_COMPONENTS)})")


def load_components(models: Mapping[str, str | SpectralComponent]) -> tuple[SpectralComponent, ...]:
    """Components named by ``{name: spec}``; a spec is a component file (``.npz``), a pretrained name
    (``xray_thermal``, ``xray_synchrotron``), ``simulator:thermal|synchrotron``, or a component. IAE
    components come in physical coordinates when their file has a physical map; append ``:weights``
    (``xray_thermal:weights``) for the barycentric weights of the published SUSHI."""
    out = []
    for name, spec in models.items():
        comp = spec if isinstance(spec, SpectralComponent) else _load_one(str(spec))
        if comp.name != name:
            named_field = dataclasses.is_dataclass(comp) and "name" in {f.name for f in dataclasses.fields(comp)}
            comp = dataclasses.replace(comp, name=name) if named_field else _Renamed(comp, name)
        out.append(comp)
    return tuple(out)


def _load_cube(cube):
    from bayes_unmix.data.cube import Cube, CubeFormatError, load_cube

    if isinstance(cube, Cube):
        return cube
    try:
        return load_cube(cube)
    except (FileNotFoundError, CubeFormatError) as exc:
        raise CubeFitError(str(exc)) from None


def _load_background(path, shape: tuple[int, int, int]) -> np.ndarray | None:
    """A background of expected counts: a cube ``(E, H, W)`` or one spectrum ``(E,)`` for every pixel."""
    if path is None:
        return None
    try:
        b = np.load(path, allow_pickle=False)
        b = b["background"] if isinstance(b, np.lib.npyio.NpzFile) else b
    except (OSError, ValueError, KeyError) as exc:
        raise CubeFitError(f"background {path}: {exc}") from None
    b = np.asarray(b, dtype=np.float64)
    if b.shape == shape[:1]:
        b = np.broadcast_to(b[:, None, None], shape).copy()
    if b.shape != shape:
        raise CubeFitError(f"background {path} has shape {b.shape}; expected {shape} or ({shape[0]},)")
    if not np.all(np.isfinite(b)) or np.any(b < 0):
        raise CubeFitError(f"background {path} must be finite and non-negative")
    return b


def _build_model(
    components,
    counts: np.ndarray,
    spatial_prior: str,
    spatial_scale: float,
    amplitude_scale: float | None,
    amplitude_prior: str,
    amplitude_log_sd: float | None,
    n_scales: int,
    presence_prior: float | None = None,
    scale_hyperprior: tuple[float, float] | None = None,
) -> CubeModel:
    channels = {c.name: int(c.n_channels) for c in components}
    if any(n != counts.shape[0] for n in channels.values()):
        raise CubeFitError(f"the cube has {counts.shape[0]} channels but the components have {channels}")
    try:
        return CubeModel(
            components,
            *counts.shape[1:],
            spatial_prior=spatial_prior,
            n_scales=n_scales,
            spatial_scale=spatial_scale,
            amplitude_scale=amplitude_scale,
            amplitude_prior=amplitude_prior,
            amplitude_log_sd=amplitude_log_sd,
            presence_prior=presence_prior,
            scale_hyperprior=scale_hyperprior,
        )
    except CubeInputError as exc:
        raise CubeFitError(str(exc)) from None


def fit_cube(
    cube,
    models: Mapping[str, str | SpectralComponent],
    out_dir: str | Path,
    *,
    method: str = "map",
    background=None,
    spatial_prior: str = "starlet",
    spatial_scale: float | str | Mapping[str, float | Sequence[float]] = DEFAULT_SPATIAL_SCALE,
    amplitude_scale: float | str | None = "default",
    amplitude_prior: str = "default",
    amplitude_log_sd: float | str | None = 10.0,
    presence_prior: float | str | None = None,
    learn_scales: bool = False,
    n_scales: int = 2,
    vi_steps: int = 1500,
    guide: str = "pixel",
    num_warmup: int = 300,
    num_samples: int = 300,
    chains: int = 2,
    seed: int = 0,
    save_draws: bool = False,
    progress: bool = True,
) -> tuple[xr.DataTree, list[Path]]:
    """Fit a count cube (a path or a :class:`~bayes_unmix.data.cube.Cube`) and write maps and a report.

    ``method``: ``map`` (whole-cube MAP), ``vi`` (MAP then ``guide`` VI), ``nuts`` (joint NUTS, small
    cubes), ``pixel`` (independent per-pixel MAP, the baseline). ``background``: ``.npy`` of expected
    counts ``(E, H, W)`` or ``(E,)``. ``spatial_scale``: a fraction of each latent's range; one per component
    and latent (``{"thermal": [0.1, 0.03], "synchrotron": 0.1}``, or that mapping as a JSON string: scales an
    earlier ``auto`` run chose, from its report); or ``"auto"`` (one per latent map, cross-validated on halves
    of the counts by :func:`~bayes_unmix.inference.cube.select_spatial_scale` from the per-pixel MAP,
    candidates 0.01, 0.03, 0.1, 0.3; default :data:`DEFAULT_SPATIAL_SCALE`). ``amplitude_scale``: the same
    spatial prior on the log amplitude maps (``amplitude_prior="log"``) or on the log ratio maps
    ``log(a_c / a_0)`` (``"ratio"``; see :class:`~bayes_unmix.models.cube.CubeModel`): a number,
    ``None``/``"off"``, ``"auto"`` (off or one of :data:`AMPLITUDE_CANDIDATES`, by the same cross-validation;
    at the latent scales given, or after choosing them when ``spatial_scale="auto"``), or ``"default"``
    (:data:`DEFAULT_AMPLITUDE_SCALE`; off with ``spatial_prior="none"``). ``amplitude_prior``: ``"log"``,
    ``"ratio"`` or ``"default"`` (ratio with two or more components, log with one). ``amplitude_log_sd``: the
    sd of each pixel's log-normal amplitudes (default 10: nearly flat in ``log a``, so faint components keep
    calibrated intervals; under the ratio prior it is on each pixel's total alone; see
    :class:`~bayes_unmix.models.cube.CubeModel`) or ``None``/``"off"`` (exponential, flat in ``a``).
    ``presence_prior``: ``None``/``"off"`` (every component in every pixel) or the prior probability that a
    component is present in a pixel (absent: amplitude exactly 0; maps of the posterior probability of presence
    are added; see :class:`~bayes_unmix.models.cube.CubeModel`), or ``"auto"`` (off or one of
    :data:`PRESENCE_CANDIDATES`, by the same cross-validation, after any scales). ``learn_scales``: infer every
    latent map's scale with the maps (``vi`` and ``nuts``; log-uniform on :data:`SCALE_HYPERPRIOR`, starting at
    ``spatial_scale``; one fit instead of cross-validation, and the scales' uncertainty is in the intervals; the
    posterior medians and intervals are in the report).
    ``n_scales``: starlet detail planes (2 won on held-out counts of the 94x94 toy cube over 3 and 4). Raises
    :class:`CubeFitError` before writing on bad input.
    """
    if method not in METHODS:
        raise CubeFitError(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
    from bayes_unmix.inference.cube_vi import GUIDES

    if guide not in GUIDES:
        raise CubeFitError(f"unknown guide {guide!r}; use {', '.join(GUIDES)}")
    auto = spatial_scale == "auto"
    # cross-validation starts its fold fits at 0.02 (where its measured choices were made), not at the default
    scale = 0.02 if auto else _spatial_scale(spatial_scale)
    if amplitude_scale == "default":
        amplitude_scale = DEFAULT_AMPLITUDE_SCALE if spatial_prior != "none" else None
    if amplitude_prior == "default":
        amplitude_prior = "ratio" if len(models) > 1 else "log"
    amplitude_auto = amplitude_scale == "auto"
    amplitude = None
    if not (amplitude_auto or amplitude_scale in (None, "off")):
        amplitude = _positive(amplitude_scale, "the amplitude scale must be a positive number, 'off' or 'auto'")
    log_sd = None
    if amplitude_log_sd not in (None, "off"):
        log_sd = _positive(amplitude_log_sd, "the amplitude log sd must be a positive number or 'off'")
    presence_auto = presence_prior == "auto"
    if presence_auto and method == "pixel":
        raise CubeFitError(
            "presence_prior 'auto' is chosen by whole-cube cross-validation; give a number for pixel fits"
        )
    presence = None
    if not (presence_auto or presence_prior in (None, "off")):
        presence = _positive(presence_prior, "the presence prior must be a probability in (0, 1), 'off' or 'auto'")
    hyperprior = _scale_hyperprior(learn_scales, method, spatial_prior, auto)
    data = _load_cube(cube)
    components = load_components(models)
    model = _build_model(
        components,
        data.counts,
        spatial_prior,
        scale,
        amplitude,
        amplitude_prior,
        log_sd,
        n_scales,
        presence,
        hyperprior,
    )
    bkg = _load_background(background, data.counts.shape)
    start = time.perf_counter()
    held_out = None
    spatial = spatial_prior != "none"
    choose = {"latent": auto and spatial, "amplitude": amplitude_auto and spatial, "presence": presence_auto}
    if any(choose.values()) and method != "pixel":
        if not np.array_equal(data.counts, np.round(data.counts)):
            raise CubeFitError("'auto' priors are cross-validated on integer counts; give numbers for this cube")
        model, held_out = _select_scale(model, data, bkg, seed, choose, progress)
    tree = _run(model, data, bkg, method, guide, vi_steps, num_warmup, num_samples, chains, seed, progress)
    tree.attrs.update({"seed": seed, "fit_seconds": time.perf_counter() - start, "cube": str(data.source or cube)})
    if held_out is not None:  # the chosen scales are in the model's record
        tree.attrs.update(spatial_scale_held_out_loglik=json.dumps(held_out))
    context = {
        "cube": str(cube if not hasattr(cube, "counts") else data.source),
        "models": ", ".join(f"{k}={v}" for k, v in models.items()),
    }
    return tree, write_cube_outputs(tree, out_dir, context=context, save_draws=save_draws, truth=data.truth)


def _positive(value, message: str) -> float:
    """A positive finite number from a CLI/API value, or a :class:`CubeFitError` ``"{message}, got {value!r}"``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not (np.isfinite(number) and number > 0):
        raise CubeFitError(f"{message}, got {value!r}")
    return number


def _scale_hyperprior(learn: bool, method: str, spatial_prior: str, auto: bool) -> tuple[float, float] | None:
    if not learn:
        return None
    if method not in ("vi", "nuts"):
        raise CubeFitError(f"learned scales need a posterior (method vi or nuts), not {method!r}")
    if spatial_prior == "none" or auto:
        raise CubeFitError("learned scales need a spatial prior and a starting scale, not 'none' or 'auto'")
    return SCALE_HYPERPRIOR


def _spatial_scale(value) -> float | Mapping:
    """A positive number, or a per-component mapping (given, or as a JSON object string) for
    :class:`~bayes_unmix.models.cube.CubeModel` to check against the components."""
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise CubeFitError(f"the spatial prior scale {value!r} is not valid JSON: {exc}") from None
    if isinstance(value, Mapping):
        return value
    return _positive(value, "the spatial prior scale must be a positive number, a per-component mapping or 'auto'")


def _select_scale(
    model, data, bkg, seed: int, choose: Mapping[str, bool], progress: bool
) -> tuple[CubeModel, dict[str, float]]:
    """The cross-validated model: latent scales if ``choose["latent"]`` (else the model's own), then the
    amplitude prior of the model's kind if ``choose["amplitude"]``, then the presence prior if
    ``choose["presence"]``."""
    from bayes_unmix.inference.cube import SCALE_CANDIDATES, select_spatial_scale
    from bayes_unmix.inference.cube_pixel import pixel_map_point

    init = pixel_map_point(model, data.counts, background=bkg, progress=progress)
    key = jax.random.fold_in(jax.random.key(seed), 1)
    return select_spatial_scale(
        model,
        data.counts,
        key=key,
        scales=SCALE_CANDIDATES if choose["latent"] else (),
        amplitude_scales=AMPLITUDE_CANDIDATES if choose["amplitude"] else (),
        amplitude_priors=(model.amplitude_prior,),
        presence_priors=PRESENCE_CANDIDATES if choose["presence"] else (),
        init=init,
        background=bkg,
        progress=progress,
    )


def _run(model, data, bkg, method, guide, vi_steps, num_warmup, num_samples, chains, seed, progress):
    from bayes_unmix.inference.cube import cube_map, cube_map_point, cube_nuts
    from bayes_unmix.inference.cube_pixel import pixel_fit
    from bayes_unmix.inference.cube_vi import cube_vi

    key = jax.random.key(seed)
    kw = {"background": bkg, "energies_kev": data.energies_kev, "progress": progress}
    if method == "pixel":
        return pixel_fit(model, data.counts, method="map", **kw)
    # MAP from SUSHI's neutral start: per-pixel starts can sit on extrapolated latents in faint pixels
    if method == "map":
        return cube_map(model, data.counts, **kw)
    init = cube_map_point(model, data.counts, background=bkg, progress=progress).point
    if method == "vi":
        return cube_vi(model, data.counts, key=key, guide=guide, steps=vi_steps, init=init, **kw)
    return cube_nuts(
        model, data.counts, key=key, num_warmup=num_warmup, num_samples=num_samples, num_chains=chains, init=init, **kw
    )


def _truth_maps(truth) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Truth and masks keyed by map labels (see :func:`bayes_unmix.report.maps.map_variables`)."""
    if truth is None:
        return {}, {}
    maps = {f"amplitude[{c}]": truth.amplitudes[i] for i, c in enumerate(truth.component_names)}
    masks = {}
    for comp, names in truth.parameter_names.items():
        i = truth.component_names.index(comp)
        for k, name in enumerate(names):
            maps[f"{comp}_{name}"] = truth.parameters[comp][k]
            masks[f"{comp}_{name}"] = truth.amplitudes[i] > 0
    return maps, masks


def cube_summary(tree: xr.DataTree, truth=None) -> dict[str, dict[str, float]]:
    """Per reportable map: mean over pixels of the posterior mean and sd; with ``truth`` (a
    :class:`~bayes_unmix.data.cube.CubeTruth`), the RMSE of the mean and the coverage of the interval
    over the pixels where the truth is finite (parameters, and amplitudes' coverage: where the component is
    present)."""
    from bayes_unmix.report.maps import _select, map_variables

    ds = tree["maps"].to_dataset()
    lower, upper = [str(s) for s in ds.stat.values[2:4]]
    truths, masks = _truth_maps(truth)
    out = {}
    for label, selection in map_variables(ds):
        da = _select(ds, selection)
        entry = {"mean": _nanmean(da.sel(stat="mean").values), "sd": _nanmean(da.sel(stat="sd").values)}
        if label in truths:
            t = np.asarray(truths[label], dtype=float)
            keep = np.isfinite(t) & masks.get(label, np.ones_like(t, dtype=bool))
            est = da.sel(stat="mean").values
            entry["rmse"] = float(np.sqrt(np.mean((est[keep] - t[keep]) ** 2)))
            # a positive amplitude's interval never holds a zero truth: cover only where the component is present
            cover = keep & (t > 0) if label.startswith("amplitude[") else keep
            lo, hi = da.sel(stat=lower).values[cover], da.sel(stat=upper).values[cover]
            if np.isfinite(lo).all():
                entry["coverage"] = float(np.mean((lo <= t[cover]) & (t[cover] <= hi)))
        out[label] = entry
    return out


def _nanmean(values: np.ndarray) -> float:
    """Mean over finite entries; NaN (without a warning) when there are none (e.g. the sd of a MAP)."""
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def write_cube_outputs(
    tree: xr.DataTree,
    out_dir: str | Path,
    *,
    context: Mapping[str, str] | None = None,
    save_draws: bool = False,
    truth=None,
) -> list[Path]:
    """Write ``maps.nc`` (and ``posterior.nc``), the PNG maps, ``summary.json`` and ``report.md``
    into ``out_dir``, all or nothing."""
    from bayes_unmix.inference.cube_convert import save_maps
    from bayes_unmix.report.maps import save_map_images

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    summary = cube_summary(tree, truth)
    truths, masks = _truth_maps(truth)
    with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=f".{out_dir.name}-") as tmp:
        tmp = Path(tmp)
        names = [save_maps(tree, tmp / "maps.nc").name]
        if save_draws:
            names.append(save_maps(tree, tmp / "posterior.nc", posterior=True).name)
        names += [p.name for p in save_map_images(tree, tmp, truth=truths, masks=masks)]
        record = {"attrs": {k: _plain(v) for k, v in tree.attrs.items()}, "maps": summary}
        (tmp / "summary.json").write_text(json.dumps(record, indent=2))
        (tmp / "report.md").write_text(_report(tree, summary, context or {}, names))
        names += ["summary.json", "report.md"]
        out_dir.mkdir(exist_ok=True)
        for name in names:
            shutil.move(tmp / name, out_dir / name)
    return [out_dir / n for n in names]


def _describe_pixel_amplitude_prior(attrs: Mapping) -> str:
    log_sd = attrs.get("amplitude_log_sd", "off")
    if log_sd == "off":
        return "exponential, mean = pixel counts / components (flat in the amplitude)"
    if attrs.get("amplitude_prior") == "ratio" and attrs.get("amplitude_scale", "off") != "off":
        return f"log-normal pixel total around its counts, sd {log_sd} in log total; shares: ratio prior"
    return f"log-normal around pixel counts / components, sd {log_sd} in log amplitude"


def _describe_presence(attrs: Mapping) -> str:
    prior = attrs.get("presence_prior", "off")
    if prior == "off":
        return "every component in every pixel"
    return (
        f"each component present in a pixel with prior probability {prior} (else amplitude 0); "
        "presence[...] maps: posterior probability of presence"
    )


def _describe_cross_validation(attrs: Mapping) -> list[str]:
    if "spatial_scale_held_out_loglik" not in attrs:
        return []
    best = max(json.loads(attrs["spatial_scale_held_out_loglik"]).values())
    line = "- priors given as auto: chosen by two-fold cross-validation on held-out counts (best held-out "
    line += f"log-likelihood {best:.1f}; every candidate's: spatial_scale_held_out_loglik in summary.json)"
    reuse = f"--prior-scale '{attrs.get('spatial_scale')}' --amplitude-scale {attrs.get('amplitude_scale', 'off')}"
    reuse += f" --amplitude-prior {attrs.get('amplitude_prior', 'log')} --presence-prior {attrs.get('presence_prior', 'off')}"
    return [line, f"- the same priors on another cube, without cross-validating again: `{reuse}`"]


def _describe_learned_scales(attrs: Mapping) -> list[str]:
    if "learned_spatial_scale" not in attrs:
        return []
    line = f"- latent scales learned (log-uniform hyperprior on {attrs.get('scale_hyperprior')}, started at "
    line += f"{attrs.get('spatial_scale')}): posterior medians {attrs['learned_spatial_scale']}, "
    line += f"{float(attrs.get('ci_prob', 0.9)):.0%} intervals {attrs['learned_spatial_scale_interval']}"
    reuse = f"--prior-scale '{attrs['learned_spatial_scale']}'"
    return [line, f"- the same scales fixed on another cube, without learning them again: `{reuse}`"]


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v if isinstance(v, (str, int, float, bool)) else str(v)


def _report(tree: xr.DataTree, summary: dict, context: Mapping[str, str], files: list[str]) -> str:
    attrs = tree.attrs
    lines = [f"# Cube unmixing report ({attrs.get('method', '')})", ""]
    lines += [f"- {k}: {v}" for k, v in context.items()]
    lines += [
        (
            f"- spatial prior: {attrs.get('spatial_prior')} (scale {attrs.get('spatial_scale')} of each latent's "
            f"range; on the {_AMPLITUDE_MAPS[attrs.get('amplitude_prior', 'log')]}: "
            f"{attrs.get('amplitude_scale', 'off')})"
        ),
        f"- pixel amplitude prior: {_describe_pixel_amplitude_prior(attrs)}",
        f"- presence: {_describe_presence(attrs)}",
        *_describe_cross_validation(attrs),
        *_describe_learned_scales(attrs),
        f"- fit time: {attrs.get('fit_seconds', float('nan')):.1f} s; bayes_unmix {attrs.get('bayes_unmix_version')}",
        f"- maps: posterior mean, sd and the equal-tailed {float(attrs.get('ci_prob', 0.9)):.0%} interval per pixel",
        "",
        "| map | mean over pixels | mean sd | RMSE vs truth | coverage |",
        "|---|---|---|---|---|",
    ]
    fmt = lambda e, k: f"{e[k]:.4g}" if k in e and np.isfinite(e[k]) else ""
    lines += [
        f"| {k} | {fmt(e, 'mean')} | {fmt(e, 'sd')} | {fmt(e, 'rmse')} | {fmt(e, 'coverage')} |"
        for k, e in summary.items()
    ]
    maps = tree["maps"]
    fit = f"Median Poisson deviance per channel: {np.nanmedian(maps['deviance'].values):.3f}"
    if "expected_deviance" in maps:  # absent from maps.nc files written before it existed
        expected = np.nanmedian(maps["expected_deviance"].values)
        fit += f" (counts drawn from the fitted rates would give {expected:.3f}; far above it: the model misses"
        fit += " structure in the data)"
    lines += ["", fit + ".", ""]
    method = str(attrs.get("method", ""))
    if method == "map":
        state = "converged" if attrs.get("converged") else "**not converged** (raise the iteration cap)"
        lines += [f"Whole-cube MAP: {attrs.get('iterations')} iterations ({attrs.get('optimizer')}), {state}.", ""]
    if method.endswith("map"):
        lines += ["MAP is a point estimate: sd and intervals are not defined; use `--method vi` or `nuts`.", ""]
    lines += [f"![{name}]({name})" for name in files if name.endswith(".png")]
    return "\n".join(lines) + "\n"


def run_cube_demo(
    out_dir: str | Path, *, seed: int = 0, quick: bool = False, progress: bool = True
) -> tuple[xr.DataTree, dict[str, dict[str, float]], list[Path], float]:
    """The toy supernova-remnant cube (94 x 94 x 375; ``quick``: 32 x 32) unmixed end to end with the
    shipped IAE components: log-normal pixel amplitudes (sd 10), spatial scales (latent maps, then the log
    synchrotron / thermal ratio map) by cross-validation, whole-cube MAP, then VI (per-pixel full-covariance
    guide); maps are written with the truth beside them. Returns the tree, the per-map summary (RMSE, coverage), files and seconds."""
    from bayes_unmix.data.cube import toy_remnant_cube

    size = 32 if quick else 94
    cube = toy_remnant_cube(seed, size=size, radius=41.0 * size / 94)
    models = {"thermal": "xray_thermal", "synchrotron": "xray_synchrotron"}
    start = time.perf_counter()
    tree, written = fit_cube(
        cube,
        models,
        out_dir,
        method="vi",
        spatial_scale="auto",
        amplitude_scale="auto",
        amplitude_prior="ratio",  # held-out counts favour it over the log amplitude maps at every scale
        vi_steps=1000 if quick else 1500,
        seed=seed,
        progress=progress,
    )
    return tree, cube_summary(tree, cube.truth), written, time.perf_counter() - start
