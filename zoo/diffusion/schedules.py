"""Discrete noise schedules. ᾱ_t ("gamma" in W.A.L.T §3) is the signal fraction: x_t = √ᾱ_t x0 + √(1−ᾱ_t) ε."""
from __future__ import annotations

import dataclasses

import jax.numpy as jnp
import numpy as np


def linear_betas(num_steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> np.ndarray:
  """DDPM's linear β schedule (Ho et al. 2020), float64 for an exact rescale."""
  return np.linspace(beta_start, beta_end, num_steps, dtype=np.float64)


def rescale_zero_terminal_snr(betas: np.ndarray) -> np.ndarray:
  """Lin et al. 2023, "Common diffusion noise schedules and sample steps are flawed", Algorithm 1.

  Shifts and scales √ᾱ so that the last step has √ᾱ_T = 0 (pure noise, SNR 0) while keeping √ᾱ_1.
  W.A.L.T §3: without it UCF-101 FVD degrades from 60.7 to 91.0 (Table 3 ablation).
  """
  sqrt_abar = np.sqrt(np.cumprod(1.0 - betas))
  first, last = sqrt_abar[0], sqrt_abar[-1]
  sqrt_abar = (sqrt_abar - last) * first / (first - last)
  abar = sqrt_abar**2
  alphas = np.concatenate([abar[:1], abar[1:] / abar[:-1]])
  return 1.0 - alphas


@dataclasses.dataclass(frozen=True)
class DiffusionSchedule:
  """Per-step tables, index t ∈ [0, num_steps): t = 0 is the least noisy step."""
  betas: jnp.ndarray
  alphas_cumprod: jnp.ndarray

  @property
  def num_steps(self) -> int:
    return int(self.betas.shape[0])

  def signal_and_noise(self, t: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """(√ᾱ_t, √(1−ᾱ_t)) for integer steps t of any shape."""
    abar = self.alphas_cumprod[t]
    return jnp.sqrt(abar), jnp.sqrt(1.0 - abar)

  def snr(self, t: jnp.ndarray) -> jnp.ndarray:
    abar = self.alphas_cumprod[t]
    return abar / (1.0 - abar)


def make_schedule(num_steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02,
                  zero_terminal_snr: bool = True) -> DiffusionSchedule:
  betas = linear_betas(num_steps, beta_start, beta_end)
  if zero_terminal_snr:
    betas = rescale_zero_terminal_snr(betas)
  abar = np.cumprod(1.0 - betas)
  return DiffusionSchedule(betas=jnp.asarray(betas, jnp.float32), alphas_cumprod=jnp.asarray(abar, jnp.float32))
