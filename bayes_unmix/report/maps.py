"""Map images of cube results, with their uncertainty (built from the DataTree's ``maps`` group only)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt
import numpy as np
import xarray as xr
from matplotlib.figure import Figure

__all__ = ["map_variables", "plot_map_row", "plot_maps", "save_map_images"]

_TITLES = {"mean": "posterior mean", "sd": "posterior sd"}


def _maps(source: xr.DataTree | xr.Dataset) -> xr.Dataset:
    return source["maps"].to_dataset() if isinstance(source, xr.DataTree) else source


def map_variables(source: xr.DataTree | xr.Dataset) -> list[tuple[str, dict]]:
    """The reportable maps as ``(label, selection)``: one per component amplitude (and, for a model with a
    presence prior, its probability of presence), then one per physical parameter (``(y, x)`` maps with a ``stat`` dim), e.g. ``("amplitude[thermal]", {...})``."""
    ds = _maps(source)
    components = [str(c) for c in ds["amplitude"].component.values]
    out = [(f"amplitude[{c}]", {"var": "amplitude", "component": c}) for c in components]
    if "presence" in ds:  # models with a presence prior
        out += [(f"presence[{c}]", {"var": "presence", "component": c}) for c in components]
    for name, da in ds.data_vars.items():
        if (
            name not in ("amplitude", "presence")
            and not name.startswith("theta_")
            and set(da.dims) == {"stat", "y", "x"}
        ):
            out.append((name, {"var": name}))
    return out


def _select(ds: xr.Dataset, selection: dict) -> xr.DataArray:
    da = ds[selection["var"]]
    return da.sel(component=selection["component"]) if "component" in selection else da


def plot_map_row(
    source: xr.DataTree | xr.Dataset,
    label: str,
    *,
    truth: np.ndarray | None = None,
    mask: np.ndarray | None = None,
) -> Figure:
    """One variable: posterior mean, sd, and the interval bounds side by side (point estimates: the
    mean only), then the truth and the error map when ``truth`` ``(H, W)`` is given.

    ``mask`` ``(H, W)`` (True = shown) hides pixels where the variable is meaningless (e.g. the
    temperature where there is no thermal emission).
    """
    ds = _maps(source)
    selection = dict(map_variables(ds))[label]
    da = _select(ds, selection)
    stats = [str(s) for s in da.stat.values if np.isfinite(da.sel(stat=s).values).any()]
    panels = [(_TITLES.get(s, s), da.sel(stat=s).values) for s in stats]
    if truth is not None:
        truth = np.asarray(truth, dtype=float)
        panels += [("truth", truth), ("mean - truth", da.sel(stat="mean").values - truth)]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.1 * len(panels), 3.0), squeeze=False)
    value_panels = [v for t, v in panels if t not in ("posterior sd", "mean - truth")]
    finite = np.concatenate([v[np.isfinite(v)].ravel() for v in value_panels]) if value_panels else np.array([0.0])
    vmin, vmax = np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0)
    for ax, (title, values) in zip(axes[0], panels):
        shown = np.where(mask, values, np.nan) if mask is not None else values
        if title == "mean - truth":
            lim = np.nanmax(np.abs(shown)) if np.isfinite(shown).any() else 1.0
            im = ax.imshow(shown, origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim)
        elif title == "posterior sd":
            im = ax.imshow(shown, origin="lower", cmap="magma")
        else:
            im = ax.imshow(shown, origin="lower", cmap="viridis", vmin=vmin, vmax=vmax)
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    fig.suptitle(f"{label} ({source.attrs.get('method', '') if hasattr(source, 'attrs') else ''})", fontsize=10)
    fig.tight_layout()
    return fig


def plot_maps(source: xr.DataTree | xr.Dataset, stat: str = "mean", *, labels: Sequence[str] | None = None) -> Figure:
    """All reportable maps of one ``stat`` (``"mean"``, ``"sd"``, ``"q05"``, ...) in one figure."""
    ds = _maps(source)
    chosen = [(lab, sel) for lab, sel in map_variables(ds) if labels is None or lab in labels]
    fig, axes = plt.subplots(1, len(chosen), figsize=(3.1 * len(chosen), 3.0), squeeze=False)
    for ax, (label, selection) in zip(axes[0], chosen):
        im = ax.imshow(_select(ds, selection).sel(stat=stat).values, origin="lower", cmap="viridis")
        ax.set_title(f"{label}\n{_TITLES.get(stat, stat)}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    fig.tight_layout()
    return fig


def save_map_images(
    tree: xr.DataTree,
    out_dir: str | Path,
    *,
    truth: Mapping[str, np.ndarray] | None = None,
    masks: Mapping[str, np.ndarray] | None = None,
    dpi: int = 110,
) -> list[Path]:
    """One PNG per reportable map (``map_<label>.png``) in ``out_dir``, plus ``maps_mean.png``.

    ``truth`` / ``masks`` map labels (see :func:`map_variables`) to ``(H, W)`` arrays.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for label, _ in map_variables(tree):
        fig = plot_map_row(tree, label, truth=(truth or {}).get(label), mask=(masks or {}).get(label))
        path = out_dir / f"map_{label.replace('[', '_').replace(']', '')}.png"
        fig.savefig(path, dpi=dpi)
        plt.close(fig)
        written.append(path)
    fig = plot_maps(tree, "mean")
    fig.savefig(out_dir / "maps_mean.png", dpi=dpi)
    plt.close(fig)
    return [*written, out_dir / "maps_mean.png"]
