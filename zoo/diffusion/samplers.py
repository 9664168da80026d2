"""DDIM (Song et al. 2021) and DDPM ancestral sampling, classifier-free guidance, self-conditioning.

The denoiser is `denoise_fn(x_t, t, x0_previous) -> network output` in the configured parameterisation;
`x0_previous` is the previous step's x0 estimate (zeros at the first step), which a self-conditioned model
(W.A.L.T §4.3) concatenates to its input and other models ignore. Loops are `lax.fori_loop`s so a whole
sampler jits into one program.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from zoo.diffusion.parameterization import x0_from_prediction
from zoo.diffusion.schedules import DiffusionSchedule

DenoiseFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


def classifier_free_guidance(conditional: jax.Array, unconditional: jax.Array, scale: float) -> jax.Array:
  """ŷ = ŷ_uncond + s (ŷ_cond − ŷ_uncond) (Ho & Salimans 2022); s = 1 is the conditional model."""
  return unconditional + scale * (conditional - unconditional)


def ddim_timesteps(num_train_steps: int, num_sample_steps: int) -> np.ndarray:
  """Evenly spaced steps from T−1 down to 0 ("trailing" spacing, which starts at the pure-noise step as
  zero-terminal-SNR schedules require; Lin et al. 2023 §3.3)."""
  steps = np.round(np.linspace(num_train_steps - 1, 0, num_sample_steps)).astype(np.int32)
  return steps


def ddim_sample(denoise_fn: DenoiseFn, schedule: DiffusionSchedule, shape, rng: jax.Array, *,
                num_steps: int = 50, eta: float = 0.0, prediction: str = "v",
                x_init: jax.Array | None = None, clip_x0: float | None = None) -> jax.Array:
  """DDIM with stochasticity η (0 = deterministic). Returns x0 samples of `shape`."""
  timesteps = jnp.asarray(ddim_timesteps(schedule.num_steps, num_steps))
  init_key, loop_key = jax.random.split(rng)
  x = jax.random.normal(init_key, shape) if x_init is None else x_init
  abar = schedule.alphas_cumprod

  def body(i, carry):
    x, x0_prev = carry
    t = timesteps[i]
    t_batch = jnp.full((shape[0],), t, jnp.int32)
    output = denoise_fn(x, t_batch, x0_prev)
    x0, eps = x0_from_prediction(prediction, schedule, x, t_batch, output)
    if clip_x0 is not None:
      x0 = jnp.clip(x0, -clip_x0, clip_x0)
    is_last = i == num_steps - 1
    t_next = jnp.where(is_last, 0, timesteps[jnp.minimum(i + 1, num_steps - 1)])
    a_t, a_next = abar[t], jnp.where(is_last, 1.0, abar[t_next])
    sigma = eta * jnp.sqrt(jnp.clip((1 - a_next) / jnp.maximum(1 - a_t, 1e-12), 0.0, 1.0)
                           * jnp.clip(1 - a_t / a_next, 0.0, 1.0))
    # Re-derive ε from x0 so the update stays consistent when x0 is clipped.
    eps = jnp.where(1 - a_t > 1e-12, (x - jnp.sqrt(a_t) * x0) / jnp.sqrt(jnp.maximum(1 - a_t, 1e-12)), eps)
    noise = jax.random.normal(jax.random.fold_in(loop_key, i), shape)
    x_next = (jnp.sqrt(a_next) * x0 + jnp.sqrt(jnp.clip(1 - a_next - sigma**2, 0.0, None)) * eps
              + sigma * noise)
    x_next = jnp.where(is_last, x0, x_next)
    return x_next, x0

  x, _ = jax.lax.fori_loop(0, num_steps, body, (x, jnp.zeros(shape, x.dtype)))
  return x


def ddpm_sample(denoise_fn: DenoiseFn, schedule: DiffusionSchedule, shape, rng: jax.Array, *,
                prediction: str = "v", clip_x0: float | None = None) -> jax.Array:
  """Ancestral sampling over all training steps (Ho et al. 2020, posterior q(x_{t−1} | x_t, x0))."""
  init_key, loop_key = jax.random.split(rng)
  x = jax.random.normal(init_key, shape)
  abar, betas = schedule.alphas_cumprod, schedule.betas
  steps = schedule.num_steps

  def body(i, carry):
    x, x0_prev = carry
    t = steps - 1 - i
    t_batch = jnp.full((shape[0],), t, jnp.int32)
    x0, _ = x0_from_prediction(prediction, schedule, x, t_batch, denoise_fn(x, t_batch, x0_prev))
    if clip_x0 is not None:
      x0 = jnp.clip(x0, -clip_x0, clip_x0)
    a_t = abar[t]
    a_prev = jnp.where(t > 0, abar[jnp.maximum(t - 1, 0)], 1.0)
    beta = betas[t]
    coef_x0 = jnp.sqrt(a_prev) * beta / (1 - a_t)
    coef_xt = jnp.sqrt(1 - beta) * (1 - a_prev) / (1 - a_t)
    variance = beta * (1 - a_prev) / (1 - a_t)
    noise = jax.random.normal(jax.random.fold_in(loop_key, i), shape)
    x_prev = coef_x0 * x0 + coef_xt * x + jnp.where(t > 0, jnp.sqrt(variance), 0.0) * noise
    return x_prev, x0

  x, _ = jax.lax.fori_loop(0, steps, body, (x, jnp.zeros(shape, x.dtype)))
  return x
