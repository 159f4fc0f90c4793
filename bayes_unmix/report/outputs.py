"""Files of a fit: ``summary.csv``, ``posterior.nc``, ``fit.png``, ``report.md``, written all or nothing."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

__all__ = ["markdown_table", "write_fit_outputs", "write_identification"]


def markdown_table(table: pd.DataFrame, digits: int = 4) -> str:
    """A plain Markdown table (no extra dependency)."""

    def cell(v) -> str:
        if isinstance(v, float):
            return "" if np.isnan(v) else f"{v:.{digits}g}"
        return str(v)

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def write_fit_outputs(result, out_dir: Path, *, ci_prob: float, context: dict[str, str]) -> list[Path]:
    """Write the four output files of a fit into ``out_dir``.

    Everything is first written to a temporary folder beside ``out_dir`` and moved in at the end,
    so an error leaves no half-written output. ``context`` (spectrum, model, ...) goes in the report.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    summary = result.summary(ci_prob)
    with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=f".{out_dir.name}-") as tmp:
        tmp = Path(tmp)
        summary.to_csv(tmp / "summary.csv", index=False, float_format="%.6g")
        result.save(tmp / "posterior.nc")
        fig = result.plot_fit(ci_prob=ci_prob)
        fig.savefig(tmp / "fit.png", dpi=120)
        plt.close(fig)
        (tmp / "report.md").write_text(_report(result, summary, ci_prob, context))
        out_dir.mkdir(exist_ok=True)
        written = []
        for name in ("summary.csv", "posterior.nc", "fit.png", "report.md"):
            shutil.move(tmp / name, out_dir / name)
            written.append(out_dir / name)
    return written


def _report(result, summary: pd.DataFrame, ci_prob: float, context: dict[str, str]) -> str:
    attrs = result.tree.attrs
    lines = [f"# Unmixing report ({attrs.get('method', '')})", ""]
    lines += [f"- {k}: {v}" for k, v in context.items()]
    lines += [
        f"- bayes_unmix {attrs.get('bayes_unmix_version', '')}, decoder sha256 {attrs.get('decoder_sha256', '')}",
        f"- credible intervals: equal-tailed {ci_prob:.0%}; counts are expected counts inside the model's energy window",
        "",
        "## Estimates",
        "",
        markdown_table(summary),
        "",
    ]
    if result.is_sampled and result.posterior.sizes["chain"] > 1:
        report = result.check_convergence(warn=False)
        problems = report["problems"] or ["none"]
        lines += ["## Convergence", "", *[f"- {p}" for p in problems], ""]
    elif not result.is_sampled:
        lines += ["## Note", "", "MAP is a point estimate: no uncertainty is reported; use `--method nuts`.", ""]
    lines += ["![fit](fit.png)", ""]
    return "\n".join(lines)


def write_identification(result, out_dir: Path, spectrum: int = 0) -> list[Path]:
    """Write ``identification.csv`` and ``identification.png`` of one spectrum's identification (all or nothing)."""
    from bayes_unmix.report.plots import plot_identification

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    table = result.table(spectrum)
    with tempfile.TemporaryDirectory(dir=out_dir.parent, prefix=f".{out_dir.name}-") as tmp:
        tmp = Path(tmp)
        table.to_csv(tmp / "identification.csv", index=False, float_format="%.6g")
        fig = plot_identification(table, critical_deviance=result.critical_deviance)
        fig.savefig(tmp / "identification.png", dpi=120)
        plt.close(fig)
        out_dir.mkdir(exist_ok=True)
        written = []
        for name in ("identification.csv", "identification.png"):
            shutil.move(tmp / name, out_dir / name)
            written.append(out_dir / name)
    return written
