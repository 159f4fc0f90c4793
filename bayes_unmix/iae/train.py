"""Training an IAE with optax.

Every training spectrum is auto-encoded through the barycentric bottleneck (no mixing of pairs).
The loss on a batch ``X`` is

    L = R(decode(B), X) + mu * ||encode(X) - B||^2 / mean_a ||encode(anchor_a)||^2,
    B = lambda(encode(X)) @ encode(anchors),

with ``R`` the relative squared error ``||(x_hat - x) / w||^2 / ||x / w||^2`` averaged over the batch
(``w`` = the model's per-channel scale for ``loss="weighted"``, ``w = 1`` for ``loss="mse"``), or
``log R + mu log(latent)`` for ``loss="log"``. ``mu`` weights the latent consistency term (the
SEMSUN convention). The latent term is normalised by the anchor codes so that shrinking the codes
cannot cheat it.

Training is deterministic given the key: a fresh permutation per epoch and fresh noise for the
denoising augmentation (on the encoder input only) every step. Chunks of epochs run as one
compiled ``lax.scan``; the parameters with the best validation error are returned.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm.auto import tqdm

from bayes_unmix.iae.model import IAE

__all__ = ["History", "TrainConfig", "TrainInfo", "TrainState", "fit", "loss_fn", "make_optimizer"]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Training recipe.

    Parameters
    ----------
    epochs:
        Passes over the training set (``floor(N / batch_size)`` steps each; the partial batch is
        dropped, the permutation changes every epoch so every spectrum is used).
    batch_size:
        Minibatch size (capped at the training-set size).
    learning_rate, schedule, warmup_epochs:
        Peak learning rate; ``"constant"``, ``"cosine"`` (warm-up then cosine decay to 1 % of the
        peak) or ``"exponential"`` (decay to 1 % at the end).
    optimizer, weight_decay:
        ``"adam"`` or ``"adamw"``.
    loss, mu:
        See the module docstring.
    noise_snr_db:
        Denoising augmentation: Gaussian noise at this SNR (dB, per spectrum) on the encoder input.
    eval_every:
        Epochs between validation evaluations (one compiled chunk).
    grad_clip:
        Global-norm gradient clipping (``None`` to disable).
    """

    epochs: int = 2000
    batch_size: int = 64
    learning_rate: float = 1e-3
    schedule: Literal["constant", "cosine", "exponential"] = "cosine"
    warmup_epochs: int = 20
    optimizer: Literal["adam", "adamw"] = "adam"
    weight_decay: float = 1e-4
    loss: Literal["mse", "weighted", "log"] = "weighted"
    mu: float = 0.1
    noise_snr_db: float | None = None
    eval_every: int = 100
    grad_clip: float | None = 1.0

    def steps_per_epoch(self, n_train: int) -> int:
        return max(n_train // min(self.batch_size, n_train), 1)


class TrainState(NamedTuple):
    """Carried state: parameters, optimiser state, global step."""

    params: dict
    opt_state: optax.OptState
    step: jax.Array


class TrainInfo(NamedTuple):
    """Per-step report."""

    loss: jax.Array
    reconstruction: jax.Array
    latent: jax.Array


@dataclasses.dataclass
class History:
    """Training record: epochs at which validation ran, mean training loss, validation error (dB)."""

    epochs: list[int] = dataclasses.field(default_factory=list)
    train_loss: list[float] = dataclasses.field(default_factory=list)
    valid_nmse_db: list[float] = dataclasses.field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0


def make_optimizer(config: TrainConfig, n_train: int) -> optax.GradientTransformation:
    """The optax optimiser described by ``config`` (schedule counted in optimiser steps)."""
    total = config.epochs * config.steps_per_epoch(n_train)
    warmup = min(config.warmup_epochs * config.steps_per_epoch(n_train), total // 2)
    lr = config.learning_rate
    if config.schedule == "constant":
        schedule = optax.constant_schedule(lr)
    elif config.schedule == "cosine":
        schedule = optax.warmup_cosine_decay_schedule(0.0, lr, max(warmup, 1), total, end_value=0.01 * lr)
    elif config.schedule == "exponential":
        schedule = optax.exponential_decay(lr, total, 0.01)
    else:
        raise ValueError(f"unknown schedule {config.schedule!r}")
    if config.optimizer == "adam":
        opt = optax.adam(schedule)
    elif config.optimizer == "adamw":
        opt = optax.adamw(schedule, weight_decay=config.weight_decay)
    else:
        raise ValueError(f"unknown optimizer {config.optimizer!r}")
    return optax.chain(optax.clip_by_global_norm(config.grad_clip), opt) if config.grad_clip else opt


def _relative_sq_error(x_hat: jax.Array, x: jax.Array, weight: jax.Array) -> jax.Array:
    err = jnp.sum(((x_hat - x) / weight) ** 2, axis=(-2, -1))
    ref = jnp.sum((x / weight) ** 2, axis=(-2, -1))
    return err / ref


def loss_fn(
    params: dict, iae: IAE, batch: jax.Array, noisy: jax.Array, config: TrainConfig
) -> tuple[jax.Array, TrainInfo]:
    """Training loss of ``batch`` (``(B, C, n)``); ``noisy`` is the encoder input."""
    model = iae.replace(params=params)
    anchor_codes = model.anchor_codes()
    codes = model.encode(noisy)
    lam = model.weights_of_codes(codes, anchor_codes)
    bary = lam @ anchor_codes
    x_hat = model.decode(bary)
    weight = model.scale if config.loss in ("weighted", "log") else jnp.ones_like(model.scale)
    recon = jnp.mean(_relative_sq_error(x_hat, batch, weight))
    latent = jnp.mean(jnp.sum((codes - bary) ** 2, -1)) / jnp.mean(jnp.sum(anchor_codes**2, -1))
    if config.loss == "log":
        loss = jnp.log(recon) + config.mu * jnp.log(latent + 1e-30)
    else:
        loss = recon + config.mu * latent
    return loss, TrainInfo(loss, recon, latent)


def _add_noise(key: jax.Array, batch: jax.Array, snr_db: float | None) -> jax.Array:
    if snr_db is None:
        return batch
    rms = jnp.sqrt(jnp.mean(batch**2, axis=(-2, -1), keepdims=True))
    return batch + rms * 10.0 ** (-snr_db / 20.0) * jax.random.normal(key, batch.shape, batch.dtype)


def _build_chunk(iae: IAE, config: TrainConfig, optimizer: optax.GradientTransformation, n_train: int):
    batch_size = min(config.batch_size, n_train)
    n_batches = config.steps_per_epoch(n_train)
    grad_fn = jax.grad(loss_fn, has_aux=True)

    def step(state: TrainState, inputs: tuple[jax.Array, jax.Array]) -> tuple[TrainState, TrainInfo]:
        batch, key = inputs
        grads, info = grad_fn(state.params, iae, batch, _add_noise(key, batch, config.noise_snr_db), config)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        return TrainState(optax.apply_updates(state.params, updates), opt_state, state.step + 1), info

    def epoch(state: TrainState, inputs: tuple[jax.Array, jax.Array]) -> tuple[TrainState, jax.Array]:
        data, key = inputs
        k_perm, k_noise = jax.random.split(key)
        idx = jax.random.permutation(k_perm, n_train)[: n_batches * batch_size].reshape(n_batches, batch_size)
        state, infos = jax.lax.scan(step, state, (data[idx], jax.random.split(k_noise, n_batches)))
        return state, jnp.mean(infos.loss)

    @jax.jit
    def chunk(state: TrainState, data: jax.Array, keys: jax.Array) -> tuple[TrainState, jax.Array]:
        return jax.lax.scan(lambda s, k: epoch(s, (data, k)), state, keys)

    return chunk


@jax.jit
def _nmse_db(iae: IAE, spectra: jax.Array) -> jax.Array:
    """Median NMSE (dB, higher is better) of the auto-encoded spectra."""
    err = jnp.sum((iae.reconstruct(spectra) - spectra) ** 2, axis=(-2, -1)) / jnp.sum(spectra**2, axis=(-2, -1))
    return jnp.median(-10.0 * jnp.log10(err))


def fit(
    iae: IAE,
    train: jax.Array,
    valid: jax.Array | None = None,
    config: TrainConfig = TrainConfig(),
    *,
    key: jax.Array,
    progress: bool = True,
) -> tuple[IAE, History]:
    """Train ``iae`` on spectra ``train`` (``(N, C, n)``; ``(N, n)`` for one component).

    Returns the model with the best validation score (median NMSE in dB of the auto-encoded
    validation spectra; the training set is scored when ``valid`` is ``None``) and the history.
    """
    train = _as_batch(train, iae)
    valid = train if valid is None else _as_batch(valid, iae)
    n_train = train.shape[0]
    optimizer = make_optimizer(config, n_train)
    chunk = _build_chunk(iae, config, optimizer, n_train)
    state = TrainState(iae.params, optimizer.init(iae.params), jnp.zeros((), jnp.int32))

    history = History()
    best_params, best_score = iae.params, -np.inf
    start = time.perf_counter()
    done = 0
    with tqdm(total=config.epochs, desc="IAE training", unit="epoch", disable=not progress) as bar:
        while done < config.epochs:
            n = min(config.eval_every, config.epochs - done)
            key, sub = jax.random.split(key)
            state, losses = chunk(state, train, jax.random.split(sub, n))
            done += n
            score = float(_nmse_db(iae.replace(params=state.params), valid))
            history.epochs.append(done)
            history.train_loss.append(float(jnp.mean(losses)))
            history.valid_nmse_db.append(score)
            if score > best_score:
                best_params, best_score, history.best_epoch = state.params, score, done
            bar.set_postfix(loss=f"{history.train_loss[-1]:.3g}", valid_dB=f"{score:.2f}")
            bar.update(n)
    history.seconds = time.perf_counter() - start
    return iae.replace(params=best_params), history


def _as_batch(spectra: jax.Array, iae: IAE) -> jax.Array:
    spectra = jnp.asarray(spectra, dtype=jnp.float64)
    if spectra.ndim == 2 and iae.n_components == 1:
        spectra = spectra[:, None, :]
    expected = (iae.n_components, iae.n_channels)
    if spectra.ndim != 3 or spectra.shape[1:] != expected:
        raise ValueError(f"training spectra must have shape (N, {expected[0]}, {expected[1]}), got {spectra.shape}")
    if spectra.shape[0] == 0 or not bool(jnp.all(jnp.isfinite(spectra))):
        raise ValueError("training spectra must be non-empty and finite")
    return spectra
