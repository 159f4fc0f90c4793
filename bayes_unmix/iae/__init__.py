"""Interpolatory AutoEncoders: learned, differentiable models of spectral families."""

from bayes_unmix.iae.interpolator import affine_weights, barycentric_weights, project_simplex
from bayes_unmix.iae.model import IAE, InterpolationConfig, create_iae
from bayes_unmix.iae.network import NetworkConfig
from bayes_unmix.iae.train import History, TrainConfig, fit

__all__ = [
    "IAE",
    "History",
    "InterpolationConfig",
    "NetworkConfig",
    "TrainConfig",
    "affine_weights",
    "barycentric_weights",
    "create_iae",
    "fit",
    "project_simplex",
]
