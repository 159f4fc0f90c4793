"""The ``bayes-unmix`` command line (thin: parsing and printing only; the work lives in the library)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

import bayes_unmix

app = typer.Typer(
    name="bayes-unmix",
    help="Bayesian unmixing of physics spectra with learned, data-frugal spectral models (IAE + NumPyro).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"bayes_unmix {bayes_unmix.__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Bayesian unmixing of physics spectra with learned spectral models.

    Typical flow: spectral library -> IAE -> probabilistic model -> inference -> report.
    """


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the trained model and figures.")] = Path("demo-out"),
    epochs: Annotated[int, typer.Option(min=1, help="IAE training epochs.")] = 1500,
    seed: Annotated[int, typer.Option(help="Seed of every random choice.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run the embedded demo on spectra the package generates itself (no data needed).

    Trains an IAE on a toy family of shielded gamma-ray spectra, fits held-out shield thicknesses
    and prints the reconstruction error per thickness.
    """
    from bayes_unmix.demo import run_iae_demo

    result = run_iae_demo(out, epochs=epochs, seed=seed, progress=not quiet)
    typer.echo(f"IAE trained in {result.train_seconds:.1f} s; held-out thicknesses:")
    typer.echo(f"{'thickness mm':>12} {'FI NMSE dB':>11} {'BSP NMSE dB':>12}")
    for t, fi, bsp in zip(result.thickness_mm, result.fi_nmse_db, result.bsp_nmse_db):
        typer.echo(f"{t:12.1f} {fi:11.2f} {bsp:12.2f}")
    typer.echo(f"median BSP NMSE: {float(_median(result.bsp_nmse_db)):.2f} dB")
    typer.echo(f"model:  {result.model_path}\nfigure: {result.figure_path}")


@app.command()
def info(model: Annotated[Path, typer.Argument(help="A model file written by bayes_unmix.")]) -> None:
    """Print a model file's architecture and metadata (checks its integrity)."""
    from bayes_unmix.iae.serialize import ModelFileError, load

    try:
        iae = load(model)
    except (ModelFileError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    summary = {
        "anchors": iae.n_anchors,
        "components": iae.n_components,
        "channels": iae.n_channels,
        "network": iae.network.to_dict(),
        "interpolation": vars(iae.interpolation),
        "metadata": {k: v for k, v in iae.metadata.items() if not isinstance(v, list) or len(v) <= 8},
    }
    typer.echo(json.dumps(summary, indent=2))


def _median(values) -> float:
    import numpy as np

    return float(np.median(values))
