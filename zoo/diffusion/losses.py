"""The denoising loss: L2 on the chosen target (W.A.L.T §3 trains with v-prediction)."""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from zoo.diffusion.parameterization import q_sample, target_for
from zoo.diffusion.schedules import DiffusionSchedule


def diffusion_loss(model_fn: Callable[[jax.Array, jax.Array], jax.Array], schedule: DiffusionSchedule,
                   x0: jax.Array, rng: jax.Array, *, prediction: str = "v",
                   weights: jax.Array | None = None) -> tuple[jax.Array, dict[str, jax.Array]]:
  """Samples t ~ U{0..T-1} and ε ~ N(0, I) per example; returns (mean loss, metrics).

  `model_fn(x_t, t)` returns the prediction with x0's shape. `weights` [B] optionally weights examples
  (e.g. to mask padding).
  """
  t_key, noise_key = jax.random.split(rng)
  batch = x0.shape[0]
  t = jax.random.randint(t_key, (batch,), 0, schedule.num_steps)
  noise = jax.random.normal(noise_key, x0.shape, x0.dtype)
  x_t = q_sample(schedule, x0, t, noise)
  output = model_fn(x_t, t)
  target = target_for(prediction, schedule, x0, t, noise)
  per_example = jnp.mean(jnp.square(output.astype(jnp.float32) - target.astype(jnp.float32)),
                         axis=tuple(range(1, x0.ndim)))
  if weights is None:
    loss = per_example.mean()
  else:
    loss = (per_example * weights).sum() / jnp.maximum(weights.sum(), 1.0)
  return loss, {"diffusion_mse": loss}
