"""End-to-end workflows behind the command line: raw files in, result files out.

Each step is a call into the library (data -> spectral model -> mixture -> inference -> report);
this module only validates inputs up front, so bad input stops before anything is written.
"""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from bayes_unmix.data.io import SpectrumFormatError, read_spectrum
from bayes_unmix.data.preprocess import ChannelMismatchError, Preprocessing
from bayes_unmix.iae.serialize import ModelFileError
from bayes_unmix.iae.spectral_model import SpectralModel
from bayes_unmix.inference.identify import Identification, IdentificationConfig
from bayes_unmix.inference.mcmc import NUTSConfig
from bayes_unmix.inference.result import UnmixingResult
from bayes_unmix.models.gamma import GammaMixture

__all__ = [
    "FitInputError",
    "default_background",
    "fit_spectrum",
    "identify_spectrum",
    "load_model",
    "measurement_mixture",
    "prepare_counts",
]


class FitInputError(ValueError):
    """Input that cannot be fitted (bad counts, wrong channels, corrupt model...): one-line message."""


def load_model(model: str | Path | SpectralModel) -> SpectralModel:
    """A spectral model from a file path, or a pretrained model by name (a model passes through)."""
    from bayes_unmix.pretrained import gamma_models, load_pretrained

    if isinstance(model, SpectralModel):
        return model
    try:
        if Path(model).is_file():
            return SpectralModel.load(model)
        if str(model) in gamma_models():
            return load_pretrained(str(model))
    except ModelFileError as exc:
        raise FitInputError(str(exc)) from None
    raise FitInputError(f"no model file {model!s} (pretrained models: {', '.join(gamma_models())})")


def prepare_counts(path: str | Path, preprocessing: Preprocessing) -> tuple[np.ndarray, float | None]:
    """Raw spectrum file -> integer counts on the model's window, and the file's live time if any."""
    try:
        spectrum = read_spectrum(path).require_integer_counts()
        counts = preprocessing.window(spectrum.counts)
    except (FileNotFoundError, SpectrumFormatError, ChannelMismatchError) as exc:
        raise FitInputError(str(exc)) from None
    if counts.sum() == 0:
        raise FitInputError(f"{path}: no counts inside the model's energy window")
    return counts, spectrum.live_time_s


def default_background(preprocessing: Preprocessing) -> np.ndarray:
    """The simulated natural background (K40, U and Th chains) on the model's grid."""
    from bayes_unmix.data.simulate import simulate_background

    energies = preprocessing.first_channel_kev + preprocessing.kev_per_channel * np.arange(preprocessing.raw_channels)
    return preprocessing.background(simulate_background(energies))


def measurement_mixture(
    spectrum: str | Path,
    model: str | Path | SpectralModel,
    background: str | Path | None = None,
    use_background: bool = True,
    live_time_s: float | None = None,
) -> tuple[GammaMixture, np.ndarray]:
    """Validated counts of a raw spectrum on the model's window, and the mixture that explains them."""
    spectral_model = load_model(model)
    pre = spectral_model.preprocessing
    counts, file_live_time = prepare_counts(spectrum, pre)
    bkg = None
    if use_background:
        try:
            bkg = pre.background(read_spectrum(background).counts) if background else default_background(pre)
        except (FileNotFoundError, SpectrumFormatError, ChannelMismatchError, ValueError) as exc:
            raise FitInputError(f"background: {exc}") from None
    live = live_time_s or file_live_time
    if live is not None and not live > 0:
        raise FitInputError("the live time must be positive")
    return GammaMixture.from_spectral_model(spectral_model, bkg, live_time_s=live), counts


def identify_spectrum(
    spectrum: str | Path,
    model: str | Path | SpectralModel,
    out_dir: str | Path,
    *,
    background: str | Path | None = None,
    live_time_s: float | None = None,
    config: IdentificationConfig | None = None,
) -> tuple[Identification, list[Path]]:
    """Identify the nuclides of a raw spectrum; write ``identification.csv`` and ``identification.png``."""
    from bayes_unmix.inference.identify import identify
    from bayes_unmix.report.outputs import write_identification

    mix, counts = measurement_mixture(spectrum, model, background, True, live_time_s)
    result = identify(mix, counts, config=config or IdentificationConfig())
    return result, write_identification(result, Path(out_dir))


def fit_spectrum(
    spectrum: str | Path,
    model: str | Path | SpectralModel,
    out_dir: str | Path,
    *,
    background: str | Path | None = None,
    use_background: bool = True,
    live_time_s: float | None = None,
    method: str = "nuts",
    ci_prob: float = 0.9,
    seed: int = 0,
    progress: bool = True,
    nuts_config: NUTSConfig = NUTSConfig(),
) -> tuple[UnmixingResult, list[Path]]:
    """Fit one raw spectrum with ``method`` (``map``, ``nuts`` or ``vi``) and write the result files."""
    from bayes_unmix.inference.map import map_estimate
    from bayes_unmix.inference.mcmc import nuts
    from bayes_unmix.inference.vi import variational
    from bayes_unmix.report.outputs import write_fit_outputs

    mix, counts = measurement_mixture(spectrum, model, background, use_background, live_time_s)
    spectral_model, pre, live = mix.spectral_model, mix.spectral_model.preprocessing, mix.live_time_s
    key = jax.random.key(seed)
    energies = pre.energies_kev
    if method == "map":
        result = map_estimate(mix, counts, key=key, energies_kev=energies)
    elif method == "nuts":
        result = nuts(mix, counts, key=key, config=nuts_config, energies_kev=energies, progress=progress)
    elif method == "vi":
        result = variational(mix, counts, key=key, energies_kev=energies, progress=progress)
    else:
        raise FitInputError(f"unknown method {method!r}")
    context = {
        "spectrum": str(spectrum),
        "model": str(model)
        if isinstance(model, (str, Path))
        else f"{spectral_model.training.get('command', 'in-memory')} ({', '.join(spectral_model.nuclides)})",
        "background": str(background or "simulated natural"),
        "live time (s)": str(live or "unknown"),
        "seed": str(seed),
    }
    return result, write_fit_outputs(result, Path(out_dir), ci_prob=ci_prob, context=context)
