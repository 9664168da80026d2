"""PSNR and SSIM for reconstructions (W.A.L.T's tokenizer check, issue 5; MAGVIT reports the same pair).

Both take images or videos of shape [..., H, W, C] and return one value per image, shape [...] (so
[B, T, H, W, C] videos give [B, T] per-frame values; average them for a per-video or dataset number).
Pixel values are in `value_range`: (−1, 1) is the zoo's model range, (0, 1) or (0, 255) work too; the
data range (high − low) sets PSNR's peak and SSIM's constants. Inputs are clipped to the range first, as a
saved image would be.

SSIM follows Wang et al. 2004 exactly as `skimage.metrics.structural_similarity(gaussian_weights=True,
sigma=1.5, use_sample_covariance=False, channel_axis=-1)` and `tf.image.ssim` compute it: 11-tap Gaussian
window (σ = 1.5), K1 = 0.01, K2 = 0.03, means over the valid (un-padded) window positions and channels.
It is computed on the picture shifted to [0, high − low], so it equals skimage's value on the [0, 1] (or
uint8) version of the image; skimage run directly on [−1, 1] arrays gives another number, because SSIM's
luminance term is not shift-invariant.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

SSIM_SIGMA = 1.5
SSIM_RADIUS = 5          # scipy/skimage: int(truncate 3.5 · σ + 0.5) -> 11 taps
SSIM_K1, SSIM_K2 = 0.01, 0.03


def _prepare(x, y, value_range):
  x, y = jnp.asarray(x, jnp.float32), jnp.asarray(y, jnp.float32)
  if x.shape != y.shape or x.ndim < 3:
    raise ValueError(f"Expected two arrays [..., H, W, C] of one shape; got {x.shape} and {y.shape}.")
  low, high = value_range
  return jnp.clip(x, low, high), jnp.clip(y, low, high), float(high - low)


@functools.partial(jax.jit, static_argnames=("value_range",))
def psnr(x: jax.Array, y: jax.Array, value_range: tuple[float, float] = (-1.0, 1.0)) -> jax.Array:
  """Peak signal-to-noise ratio in dB per image: 10 log10(range² / MSE), [..., H, W, C] -> [...].

  Identical images give +inf.
  """
  x, y, data_range = _prepare(x, y, value_range)
  mse = jnp.mean((x - y) ** 2, axis=(-3, -2, -1))
  return 10.0 * jnp.log10(data_range ** 2 / mse)


def _gaussian_valid_filter_matrix(size: int) -> np.ndarray:
  """[size − 10, size] matrix applying the normalised 11-tap Gaussian at every valid position."""
  taps = np.arange(-SSIM_RADIUS, SSIM_RADIUS + 1, dtype=np.float64)
  kernel = np.exp(-0.5 * (taps / SSIM_SIGMA) ** 2)
  kernel /= kernel.sum()
  out = size - 2 * SSIM_RADIUS
  matrix = np.zeros((out, size), np.float64)
  for i in range(out):
    matrix[i, i:i + kernel.size] = kernel
  return matrix.astype(np.float32)


@functools.partial(jax.jit, static_argnames=("value_range",))
def ssim(x: jax.Array, y: jax.Array, value_range: tuple[float, float] = (-1.0, 1.0)) -> jax.Array:
  """Structural similarity per image, [..., H, W, C] -> [...] (H, W >= 11)."""
  x, y, data_range = _prepare(x, y, value_range)
  height, width = x.shape[-3:-1]
  if min(height, width) < 2 * SSIM_RADIUS + 1:
    raise ValueError(f"SSIM needs images of at least {2 * SSIM_RADIUS + 1}×{2 * SSIM_RADIUS + 1}; "
                     f"got {height}×{width}.")
  rows = jnp.asarray(_gaussian_valid_filter_matrix(height))
  cols = jnp.asarray(_gaussian_valid_filter_matrix(width))
  # SSIM's luminance term is not shift-invariant, and the formula assumes intensities >= 0: measure the
  # picture as it would be saved, shifted to [0, high − low]. The same picture then scores the same in
  # (−1, 1), (0, 1) or (0, 255) (SSIM is scale-invariant once C1, C2 scale with the data range).
  x, y = x - value_range[0], y - value_range[0]

  def blur(image):  # separable Gaussian over H and W, valid positions only
    image = jnp.einsum("oh,...hwc->...owc", rows, image, precision=jax.lax.Precision.HIGHEST)
    return jnp.einsum("pw,...owc->...opc", cols, image, precision=jax.lax.Precision.HIGHEST)

  mean_x, mean_y = blur(x), blur(y)
  var_x = blur(x * x) - mean_x ** 2
  var_y = blur(y * y) - mean_y ** 2
  cov_xy = blur(x * y) - mean_x * mean_y
  c1, c2 = (SSIM_K1 * data_range) ** 2, (SSIM_K2 * data_range) ** 2
  ssim_map = ((2 * mean_x * mean_y + c1) * (2 * cov_xy + c2)
              / ((mean_x ** 2 + mean_y ** 2 + c1) * (var_x + var_y + c2)))
  return jnp.mean(ssim_map, axis=(-3, -2, -1))
