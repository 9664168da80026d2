"""Forward process and conversions between the ε, x0 and v parameterisations.

v follows Salimans & Ho (2022): v = √ᾱ ε − √(1−ᾱ) x0. (The W.A.L.T text prints the coefficients swapped;
the standard form is used here, see ../shared/papers/walt.md §1.8.) With zero terminal SNR, ε-prediction
is undefined at the last step (√ᾱ_T = 0 gives x0 = (x_t − ε)/0); v and x0 predictions are not.
"""
from __future__ import annotations

import jax.numpy as jnp

from zoo.diffusion.schedules import DiffusionSchedule


def _bcast(a: jnp.ndarray, like: jnp.ndarray) -> jnp.ndarray:
  return a.reshape(a.shape + (1,) * (like.ndim - a.ndim))


def q_sample(schedule: DiffusionSchedule, x0, t, noise):
  """x_t = √ᾱ_t x0 + √(1−ᾱ_t) ε, with t of shape [B] broadcast over x0 [B, ...]."""
  signal, sigma = schedule.signal_and_noise(t)
  return _bcast(signal, x0) * x0 + _bcast(sigma, x0) * noise


def predict_v(schedule, x0, t, noise):
  signal, sigma = schedule.signal_and_noise(t)
  return _bcast(signal, x0) * noise - _bcast(sigma, x0) * x0


def predict_x0(schedule, x_t, t, v):
  """x0 = √ᾱ x_t − √(1−ᾱ) v."""
  signal, sigma = schedule.signal_and_noise(t)
  return _bcast(signal, x_t) * x_t - _bcast(sigma, x_t) * v


def predict_eps(schedule, x_t, t, v):
  """ε = √(1−ᾱ) x_t + √ᾱ v."""
  signal, sigma = schedule.signal_and_noise(t)
  return _bcast(sigma, x_t) * x_t + _bcast(signal, x_t) * v


def target_for(prediction: str, schedule, x0, t, noise):
  if prediction == "v":
    return predict_v(schedule, x0, t, noise)
  if prediction == "eps":
    return noise
  if prediction == "x0":
    return x0
  raise ValueError(f"Unknown prediction {prediction!r}; use 'v', 'eps' or 'x0'.")


def x0_from_prediction(prediction: str, schedule, x_t, t, output):
  """Turns a network output into (x0, ε) estimates for any parameterisation."""
  signal, sigma = schedule.signal_and_noise(t)
  signal, sigma = _bcast(signal, x_t), _bcast(sigma, x_t)
  if prediction == "v":
    return signal * x_t - sigma * output, sigma * x_t + signal * output
  if prediction == "eps":
    x0 = (x_t - sigma * output) / jnp.maximum(signal, 1e-8)
    return x0, output
  if prediction == "x0":
    eps = (x_t - signal * output) / jnp.maximum(sigma, 1e-8)
    return output, eps
  raise ValueError(f"Unknown prediction {prediction!r}; use 'v', 'eps' or 'x0'.")
