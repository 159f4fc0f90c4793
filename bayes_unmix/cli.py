"""The ``bayes-unmix`` command line (thin: parsing and printing only; the work lives in the library)."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

import bayes_unmix
from bayes_unmix.data.library import STEEL_PATTERN
from bayes_unmix.iae.library_fit import GAMMA_TRAINING

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
    out: Annotated[Path, typer.Option(help="Folder for results and figures.")] = Path("demo-out"),
    iae: Annotated[bool, typer.Option("--iae", help="Instead: train and evaluate an IAE on a toy family.")] = False,
    quick: Annotated[bool, typer.Option("--quick", help="Fewer NUTS draws (smoke test).")] = False,
    epochs: Annotated[int, typer.Option(min=1, help="IAE training epochs (with --iae).")] = 1500,
    seed: Annotated[int, typer.Option(help="Seed of every random choice.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    cube: Annotated[
        bool, typer.Option("--cube", help="Instead: unmix the toy X-ray cube (maps with uncertainty vs truth).")
    ] = False,
) -> None:
    """Run the embedded demo (no data needed): a simulated shielded measurement with known truth,
    unmixed by NUTS with the shipped pretrained model; the summary is printed next to the truth."""
    if cube:
        from bayes_unmix.cube_workflow import run_cube_demo

        typer.echo("Toy supernova-remnant cube (thermal + synchrotron): cube MAP -> VI...")
        _, summary, written, seconds = run_cube_demo(out, seed=seed, quick=quick, progress=not quiet)
        typer.echo(f"{'map':>26} {'RMSE':>10} {'90% coverage':>13}")
        for label, entry in summary.items():
            typer.echo(
                f"{label:>26} {entry.get('rmse', float('nan')):10.4g} {entry.get('coverage', float('nan')):13.3f}"
            )
        typer.echo(f"done in {seconds:.1f} s; wrote {', '.join(map(str, written))}")
        return
    if iae:
        from bayes_unmix.demo import run_iae_demo

        result = run_iae_demo(out, epochs=epochs, seed=seed, progress=not quiet)
        typer.echo(f"IAE trained in {result.train_seconds:.1f} s; held-out thicknesses:")
        typer.echo(f"{'thickness mm':>12} {'FI NMSE dB':>11} {'BSP NMSE dB':>12}")
        for t, fi, bsp in zip(result.thickness_mm, result.fi_nmse_db, result.bsp_nmse_db):
            typer.echo(f"{t:12.1f} {fi:11.2f} {bsp:12.2f}")
        typer.echo(f"model:  {result.model_path}\nfigure: {result.figure_path}")
        return
    from bayes_unmix.demo import DEMO_LIVE_TIME_S, DEMO_THICKNESS_MM, run_unmixing_demo

    typer.echo(
        f"Simulated 3-inch NaI(Tl) measurement: Co60, Ba133, Cs137 (Co57 absent) behind {DEMO_THICKNESS_MM} mm of "
        f"steel, {DEMO_LIVE_TIME_S:.0f} s live time, natural background; unmixing with NUTS..."
    )
    result = run_unmixing_demo(out, seed=seed, progress=not quiet, quick=quick)
    typer.echo(result.table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    typer.echo(
        f"fit in {result.seconds:.1f} s (90 % equal-tailed intervals); wrote {', '.join(map(str, result.written))}"
    )


@app.command("train-iae")
def train_iae(
    library_dir: Annotated[
        Path, typer.Argument(help="Library: one sub-folder per nuclide, one file per parameter value.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Model file to write (.npz).")],
    nuclides: Annotated[
        list[str] | None, typer.Option(help="Nuclides to include (repeat or comma-separate); default: all sub-folders.")
    ] = None,
    joint: Annotated[
        bool, typer.Option("--joint/--individual", help="One shared latent, or one IAE per nuclide.")
    ] = False,
    emin: Annotated[float | None, typer.Option(help="Lower end of the energy window (keV).")] = None,
    emax: Annotated[float | None, typer.Option(help="Upper end of the energy window (keV).")] = None,
    rebin: Annotated[int, typer.Option(min=1, help="Raw channels summed into one.")] = 1,
    pattern: Annotated[str, typer.Option(help="Regex reading the parameter from file names.")] = STEEL_PATTERN,
    parameter_name: Annotated[str, typer.Option(help="Name and unit of the parameter.")] = "thickness_mm",
    kev_per_channel: Annotated[float, typer.Option(help="Raw energy calibration: keV per channel.")] = 1.0,
    first_channel_kev: Annotated[float, typer.Option(help="Raw energy calibration: centre of channel 0 (keV).")] = 1.0,
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs.")] = GAMMA_TRAINING.epochs,
    seed: Annotated[int, typer.Option(help="Seed of every random choice.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Train individual or joint IAEs on a spectral library and save them with their preprocessing,
    a weights-to-parameter map and (when decays are known) efficiencies."""
    import dataclasses

    import jax

    from bayes_unmix.data.library import load_library
    from bayes_unmix.iae.library_fit import default_preprocessing, train_spectral_model

    names = [n for item in nuclides or [] for n in item.split(",") if n] or None
    try:
        library = load_library(
            library_dir,
            nuclides=names,
            pattern=pattern,
            parameter_name=parameter_name,
            kev_per_channel=kev_per_channel,
            first_channel_kev=first_channel_kev,
        )
        preprocessing = default_preprocessing(library, emin, emax, rebin)
    except (OSError, KeyError, ValueError) as exc:
        _fail(exc)
    config = dataclasses.replace(GAMMA_TRAINING, epochs=epochs)
    command = {
        "command": "bayes-unmix train-iae",
        "joint": joint,
        "emin": emin,
        "emax": emax,
        "rebin": rebin,
        "seed": seed,
    }
    model = train_spectral_model(
        library,
        joint=joint,
        key=jax.random.key(seed),
        preprocessing=preprocessing,
        config=config,
        progress=not quiet,
        record=command,
    )
    model.save(out)
    kind = "joint" if joint else "individual"
    typer.echo(
        f"{kind} model of {', '.join(library.nuclides)} over {library.parameter_values.size} values of "
        f"{parameter_name} ({preprocessing.n_channels} channels) written to {out}"
    )


class Method(str, Enum):
    map = "map"
    nuts = "nuts"
    vi = "vi"


@app.command()
def fit(
    spectrum: Annotated[Path, typer.Argument(help="Raw measured spectrum (.spe, .csv, or one count per line).")],
    model: Annotated[str, typer.Option(help="Spectral model file, or the name of a pretrained model.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder.")],
    background: Annotated[
        Path | None, typer.Option(help="Raw background spectrum (default: the simulated natural background).")
    ] = None,
    no_background: Annotated[bool, typer.Option("--no-background", help="Fit without a background component.")] = False,
    live_time: Annotated[float | None, typer.Option("--live-time", help="Live time in s (activities in Bq).")] = None,
    method: Annotated[
        Method, typer.Option(help="map (fast point estimate), nuts (posterior), vi (mean-field).")
    ] = Method.nuts,
    ci: Annotated[float, typer.Option(min=0.01, max=0.999, help="Credible-interval probability.")] = 0.9,
    num_warmup: Annotated[int, typer.Option(min=1, help="NUTS warm-up steps per chain.")] = 300,
    num_samples: Annotated[int, typer.Option(min=1, help="NUTS draws per chain.")] = 1000,
    chains: Annotated[int, typer.Option(min=1, help="NUTS chains.")] = 2,
    seed: Annotated[int, typer.Option(help="Seed of every random choice.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Unmix a raw spectrum: counts (and activities) with credible intervals, the shield parameter,
    and summary.csv, posterior.nc, fit.png and report.md in OUT."""
    from bayes_unmix.inference.mcmc import NUTSConfig
    from bayes_unmix.workflow import FitInputError, fit_spectrum

    nuts_config = NUTSConfig(num_warmup=num_warmup, num_samples=num_samples, num_chains=chains)
    try:
        result, written = fit_spectrum(
            spectrum,
            model,
            out,
            background=background,
            use_background=not no_background,
            live_time_s=live_time,
            method=method.value,
            ci_prob=ci,
            seed=seed,
            progress=not quiet,
            nuts_config=nuts_config,
        )
    except FitInputError as exc:
        _fail(exc)
    typer.echo(result.summary(ci).to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    typer.echo(f"wrote {', '.join(str(p) for p in written)}")


@app.command()
def identify(
    spectrum: Annotated[Path, typer.Argument(help="Raw measured spectrum (.spe, .csv, or one count per line).")],
    model: Annotated[str, typer.Option(help="Spectral model file (the candidates), or a pretrained model name.")],
    out: Annotated[Path, typer.Option("--out", help="Output folder.")],
    background: Annotated[
        Path | None, typer.Option(help="Raw background spectrum (default: the simulated natural background).")
    ] = None,
    live_time: Annotated[float | None, typer.Option("--live-time", help="Live time in s (limits in Bq).")] = None,
    alpha: Annotated[
        float, typer.Option(min=1e-6, max=0.5, help="False-positive probability per absent nuclide.")
    ] = 0.01,
    beta: Annotated[float, typer.Option(min=1e-6, max=0.5, help="Miss probability at the detection limit.")] = 0.05,
    familywise: Annotated[
        bool, typer.Option("--familywise", help="alpha per spectrum (Bonferroni over the candidates).")
    ] = False,
) -> None:
    """Which of the model's nuclides are present? Likelihood-ratio decisions at false-positive rate ALPHA,
    posterior inclusion probabilities, estimates and ISO 11929 limits; writes identification.csv and
    identification.png in OUT."""
    from bayes_unmix.inference.identify import IdentificationConfig
    from bayes_unmix.workflow import FitInputError, identify_spectrum

    try:
        config = IdentificationConfig(alpha=alpha, beta=beta, familywise=familywise)
        result, written = identify_spectrum(
            spectrum, model, out, background=background, live_time_s=live_time, config=config
        )
    except (FitInputError, ValueError) as exc:
        _fail(exc)
    typer.echo(result.table().to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    typer.echo(f"wrote {', '.join(str(p) for p in written)}")


@app.command("fit-cube")
def fit_cube(
    cube: Annotated[Path, typer.Argument(help="Count cube (channels, height, width): .npy, .npz or FITS.")],
    model: Annotated[
        list[str], typer.Option("--model", help="NAME=MODEL per component: a component file or a pretrained name.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Output folder.")],
    method: Annotated[
        str, typer.Option(help="map (whole cube), vi (MAP then VI), nuts (small cubes), pixel (per-pixel baseline).")
    ] = "map",
    background: Annotated[Path | None, typer.Option(help="Expected background counts .npy: (E, H, W) or (E,).")] = None,
    prior: Annotated[str, typer.Option(help="Spatial prior of the latent maps: starlet, smooth or none.")] = "starlet",
    prior_scale: Annotated[
        str,
        typer.Option(
            help="Spatial prior scale (fraction of latent range); per component and latent as JSON "
            "('{\"thermal\": [0.1, 0.03], \"synchrotron\": 0.1}'); or 'auto' (per latent, by Poisson "
            "cross-validation, about 30 min for a 94x94 cube on 2 cores)."
        ),
    ] = "0.1",
    amplitude_scale: Annotated[
        str,
        typer.Option(
            help="The same spatial prior on the log amplitude (or ratio) maps: a scale (natural log units), 'off', "
            "'auto' (off, 0.3, 1 or 3 by the same cross-validation), or 'default' (1; off with --prior none)."
        ),
    ] = "default",
    amplitude_prior: Annotated[
        str,
        typer.Option(
            help="Maps under --amplitude-scale: log (each log amplitude), ratio (log of each component over "
            "the first; pixel totals free) or 'default' (ratio with two or more components, log with one)."
        ),
    ] = "default",
    amplitude_log_sd: Annotated[
        str,
        typer.Option(
            help="Each pixel's amplitude prior: the sd of a log-normal (nearly flat in log amplitude; point "
            "estimates are then modes in log amplitude; under the ratio prior, on the pixel's total alone) or "
            "'off' (exponential, flat in the amplitude)."
        ),
    ] = "10",
    presence_prior: Annotated[
        str,
        typer.Option(
            help="Prior probability that a component is present in a pixel (absent: amplitude exactly 0; adds "
            "maps of the posterior probability of presence), 'off' (every component everywhere), or 'auto' "
            "(off, 0.5, 0.8 or 0.95 by the same cross-validation)."
        ),
    ] = "off",
    learn_scales: Annotated[
        bool,
        typer.Option(
            "--learn-scales",
            help="Infer each latent map's prior scale with the maps (vi, nuts), starting at --prior-scale: one fit "
            "instead of cross-validation; the learned scales are in the report.",
        ),
    ] = False,
    starlet_scales: Annotated[
        int, typer.Option(min=1, help="Starlet detail planes of the starlet prior (needs images wider than 2^N px).")
    ] = 2,
    steps: Annotated[int, typer.Option(min=1, help="VI steps.")] = 1500,
    guide: Annotated[
        str,
        typer.Option(
            help="VI guide: pixel (full covariance within each pixel), spatial (those, correlated between neighbours: "
            "use it with --prior smooth), meanfield or lowrank."
        ),
    ] = "pixel",
    num_warmup: Annotated[int, typer.Option(min=1, help="NUTS warm-up steps.")] = 300,
    num_samples: Annotated[int, typer.Option(min=1, help="NUTS draws per chain.")] = 300,
    chains: Annotated[int, typer.Option(min=1, help="NUTS chains.")] = 2,
    save_draws: Annotated[bool, typer.Option("--save-draws", help="Also write posterior.nc (large).")] = False,
    seed: Annotated[int, typer.Option(help="Seed of every random choice.")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Unmix an X-ray count cube: maps of amplitudes and physical parameters (mean, sd, 90 % bounds)
    as PNG, maps.nc, summary.json and report.md in OUT."""
    from bayes_unmix import cube_workflow as cw

    try:
        _, written = cw.fit_cube(
            cube,
            cw.parse_model_specs(model),
            out,
            method=method,
            background=background,
            spatial_prior=prior,
            spatial_scale=prior_scale,
            amplitude_scale=amplitude_scale,
            amplitude_prior=amplitude_prior,
            amplitude_log_sd=amplitude_log_sd,
            presence_prior=presence_prior,
            learn_scales=learn_scales,
            n_scales=starlet_scales,
            vi_steps=steps,
            guide=guide,
            num_warmup=num_warmup,
            num_samples=num_samples,
            chains=chains,
            seed=seed,
            save_draws=save_draws,
            progress=not quiet,
        )
    except cw.CubeFitError as exc:
        _fail(exc)
    typer.echo(f"wrote {', '.join(str(p) for p in written)}")


def _fail(exc: BaseException) -> None:
    message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


@app.command()
def info(model: Annotated[Path, typer.Argument(help="A model file written by bayes_unmix.")]) -> None:
    """Print a model file's architecture and metadata (checks its integrity)."""
    from bayes_unmix.iae.serialize import ModelFileError, load_bundle

    try:
        iaes, metadata = load_bundle(model)
    except (ModelFileError, FileNotFoundError) as exc:
        _fail(exc)

    def short(d: dict) -> dict:
        return {k: v for k, v in d.items() if not isinstance(v, list) or len(v) <= 8}

    summary = {
        name: {
            "anchors": iae.n_anchors,
            "components": iae.n_components,
            "channels": iae.n_channels,
            "network": short(iae.network.to_dict()),
            "interpolation": vars(iae.interpolation),
            "metadata": short(iae.metadata),
        }
        for name, iae in iaes.items()
    }
    typer.echo(json.dumps({"models": summary, "metadata": short(metadata)}, indent=2, default=str))
