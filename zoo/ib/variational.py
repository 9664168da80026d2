"""Variational information bottleneck for present → future (paper §C3; Alemi et al. 2017 style).

Encoder q(h|x_t) = N(μ(x_t), diag s(x_t)²); rate KL(q ‖ N(0, I)) ≥ I(X_t; H) is an upper bound; the decoder
p(x_{t+τ} | h) is a categorical over future bins (or a diagonal Gaussian), and H(E) − E[−log p(e|h)] ≤ I(E; H)
is a lower bound. The exact IB minimises I(V;H) − β I(E;H); dividing by β, the per-sample loss here is

    loss = E[−log p(e|h)] + KL(q(h|x) ‖ N(0, I)) / β,

so `beta` means the same thing as in `zoo/ib/exact.py`: large β keeps more of the future, small β
compresses more. Everything is in nats; metrics also report bits.

`variational_ib_loss(model, batch, rng, beta) -> (loss, metrics)` is a pure function for the common loop.
`make_training_pairs` turns simulated trajectories into (present, future) arrays; `train` is a small
standalone optax helper for tests and `zoo/ib/analysis.py` only.
"""
from __future__ import annotations

import math
from typing import Iterable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from zoo.ib import systems

LOG2 = math.log(2.0)


class MLP(nnx.Module):
  """Dense → tanh stack; `features` lists the widths of the hidden layers and the output."""

  def __init__(self, in_features: int, features: Iterable[int], *, rngs: nnx.Rngs):
    features = list(features)
    widths = [in_features] + features
    self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(widths[:-1], widths[1:])])

  def __call__(self, x):
    for layer in self.layers[:-1]:
      x = jnp.tanh(layer(x))
    return self.layers[-1](x)


class VariationalIB(nnx.Module):
  """Stochastic encoder x_t [B, d] → h [B, latent_dim]; decoder h → distribution of the future.

  decoder="categorical": logits [B, num_future_bins] over the future's bin (batch["future"] int bin ids).
  decoder="gaussian": mean and log-scale [B, d] of x_{t+τ} (batch["future"] float [B, d]).
  The input is standardised with fixed `input_shift`/`input_scale` (e.g. the box centre and half-width),
  so the tanh layers see O(1) values whatever the system's units.
  """

  def __init__(self, state_dim: int, latent_dim: int = 1, hidden: int = 64, num_layers: int = 2,
               decoder: str = "categorical", num_future_bins: int = 100,
               input_shift: float | np.ndarray = 0.0, input_scale: float | np.ndarray = 1.0, *,
               rngs: nnx.Rngs):
    if decoder not in ("categorical", "gaussian"):
      raise ValueError(f"decoder must be 'categorical' or 'gaussian', got {decoder!r}")
    self.decoder_kind = decoder
    self.latent_dim = latent_dim
    self.input_shift = nnx.Variable(jnp.broadcast_to(jnp.asarray(input_shift, jnp.float32), (state_dim,)))
    self.input_scale = nnx.Variable(jnp.broadcast_to(jnp.asarray(input_scale, jnp.float32), (state_dim,)))
    self.encoder = MLP(state_dim, [hidden] * num_layers + [2 * latent_dim], rngs=rngs)
    out = num_future_bins if decoder == "categorical" else 2 * state_dim
    self.decoder = MLP(latent_dim, [hidden] * num_layers + [out], rngs=rngs)

  def encode(self, present):
    """Mean and log standard deviation of q(h|x), each [B, latent_dim]."""
    x = (present - self.input_shift[...]) / self.input_scale[...]
    stats = self.encoder(x)
    return stats[..., : self.latent_dim], stats[..., self.latent_dim:]

  def decode(self, latent):
    """Categorical logits [B, bins], or (mean, log_scale) [B, d] in standardised units."""
    out = self.decoder(latent)
    if self.decoder_kind == "categorical":
      return out
    half = out.shape[-1] // 2
    return out[..., :half], out[..., half:]


def gaussian_kl_to_standard_normal(mean, log_std):
  """KL(N(mean, diag e^{2 log_std}) ‖ N(0, I)) [B] in nats."""
  return 0.5 * jnp.sum(mean**2 + jnp.exp(2.0 * log_std) - 1.0 - 2.0 * log_std, axis=-1)


def variational_ib_loss(model: VariationalIB, batch: dict, rng, beta):
  """Loss = E[−log p(future | h)] + KL(q(h|present) ‖ N(0, I)) / β, h ~ q by reparameterisation.

  batch["present"]: [B, d] float32; batch["future"]: [B] int bin ids (categorical decoder) or [B, d] float32.
  Returns (scalar loss, metrics) with rate/distortion in nats and bits.
  """
  present = batch["present"]
  mean, log_std = model.encode(present)
  noise = jax.random.normal(rng, mean.shape, mean.dtype)
  latent = mean + jnp.exp(log_std) * noise
  rate = gaussian_kl_to_standard_normal(mean, log_std)
  if model.decoder_kind == "categorical":
    logits = model.decode(latent)
    distortion = optax.softmax_cross_entropy_with_integer_labels(logits, batch["future"])
  else:
    future = (batch["future"] - model.input_shift[...]) / model.input_scale[...]
    future_mean, future_log_scale = model.decode(latent)
    # Negative log-likelihood of the standardised future; the Jacobian of the standardisation is a
    # constant and does not change the optimum.
    distortion = jnp.sum(0.5 * ((future - future_mean) * jnp.exp(-future_log_scale)) ** 2 + future_log_scale
                         + 0.5 * math.log(2.0 * math.pi), axis=-1)
  loss = jnp.mean(distortion) + jnp.mean(rate) / beta
  metrics = {
      "loss": loss,
      "rate_nats": jnp.mean(rate),
      "rate_bits": jnp.mean(rate) / LOG2,
      "distortion_nats": jnp.mean(distortion),
      "latent_std": jnp.mean(jnp.exp(log_std)),
  }
  return loss, metrics


# ----------------------------------------------------------------------------------------------------------
# Data.


def make_training_pairs(trajectories: np.ndarray, lag: int, grid: systems.Grid | None = None) -> dict:
  """(present, future) pairs from trajectories [N, T, d] at a lag of `lag` records.

  Returns {"present": [M, d] float32, "future": [M, d] float32} and, with a grid, "future_bin": [M] int32
  (−1 where the future left the box; `drop_outside` style filtering is left to the caller).
  """
  trajectories = np.asarray(trajectories, np.float32)
  if trajectories.ndim == 2:
    trajectories = trajectories[None]
  present = trajectories[:, :-lag].reshape(-1, trajectories.shape[-1])
  future = trajectories[:, lag:].reshape(-1, trajectories.shape[-1])
  pairs = {"present": present, "future": future}
  if grid is not None:
    index, inside = grid.state_index(jnp.asarray(future))
    pairs["future_bin"] = np.where(np.asarray(inside), np.asarray(index), -1).astype(np.int32)
  return pairs


def simulate_stationary_pairs(system: systems.LangevinSystem, stationary: np.ndarray, num_pairs: int,
                              lag_steps: int, dt: float = systems.AUTHORS_DT, seed: int = 0) -> np.ndarray:
  """Short trajectories [num_pairs, 2, d] from stationary starts to `lag_steps` EM steps later.

  Long trajectories of the four-well cross the central barrier every ~10⁵ steps at σ = 0.2; starting many
  short ones from π (cell drawn from the generator's π, uniform inside the cell) samples the same
  stationary pairs without the wait.
  """
  key = jax.random.key(seed)
  cell_key, offset_key, path_key = jax.random.split(key, 3)
  cells = jax.random.choice(cell_key, stationary.shape[0], (num_pairs,), p=jnp.asarray(stationary, jnp.float32))
  grid = system.grid
  offsets = jax.random.uniform(offset_key, (num_pairs, grid.dim), minval=-0.5, maxval=0.5)
  x0 = jnp.asarray(grid.centers(), jnp.float32)[cells] + offsets * jnp.asarray(grid.widths, jnp.float32)
  x1 = systems.euler_maruyama(system, x0, path_key, lag_steps, dt)
  return np.stack([np.asarray(x0), np.asarray(x1)], axis=1)


# ----------------------------------------------------------------------------------------------------------
# Standalone training helper (tests and analysis only; the zoo's common loop is the real trainer).


def train(model: VariationalIB, pairs: dict, beta: float, num_steps: int = 1000, batch_size: int = 256,
          learning_rate: float = 3e-3, seed: int = 0, future_key: str = "future_bin") -> list[dict]:
  """Adam on `variational_ib_loss`; returns the metrics of every step (as floats)."""
  optimizer = nnx.Optimizer(model, optax.adam(learning_rate), wrt=nnx.Param)

  @nnx.jit
  def step(model, optimizer, batch, rng):
    grad_fn = nnx.value_and_grad(variational_ib_loss, has_aux=True)
    (_, metrics), grads = grad_fn(model, batch, rng, beta)
    optimizer.update(model, grads)
    return metrics

  valid = pairs[future_key] >= 0 if pairs[future_key].ndim == 1 else np.ones(len(pairs["present"]), bool)
  present, future = pairs["present"][valid], pairs[future_key][valid]
  rng = np.random.default_rng(seed)
  key = jax.random.key(seed)
  history = []
  for i in range(num_steps):
    index = rng.integers(0, len(present), batch_size)
    batch = {"present": jnp.asarray(present[index]), "future": jnp.asarray(future[index])}
    metrics = step(model, optimizer, batch, jax.random.fold_in(key, i))
    history.append({k: float(v) for k, v in metrics.items()})
  return history


def latent_mean(model: VariationalIB, present: np.ndarray) -> np.ndarray:
  """Encoder means μ(x) [N, latent_dim] (the deterministic part of the latent)."""
  mean, _ = model.encode(jnp.asarray(present, jnp.float32))
  return np.asarray(mean)
