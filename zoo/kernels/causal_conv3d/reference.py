"""Pure-jnp causal 3D convolution (MAGVIT-v2 §3.2, used by W.A.L.T's autoencoder, §4.1).

A causal conv pads kt-1 frames of zeros in the *past* and none in the future, so output frame t sees
input frames t-kt+1 .. t only and the first frame is encoded on its own (an image is a 1-frame video).
Space gets "same" zero padding ((k-1)//2 before, k//2 after, as MAGVIT-v2's PyTorch code pads
k//2 both sides for odd k) and an optional stride.

Layouts: x [B, T, H, W, Cin]; kernel [kt, kh, kw, Cin, Cout]; bias [Cout];
output [B, T, ceil(H/s), ceil(W/s), Cout] for spatial stride s.
"""
from __future__ import annotations

import jax.numpy as jnp
from jax import lax


def causal_padding(kernel_size) -> tuple[tuple[int, int], ...]:
  """Padding for the (T, H, W) axes: kt-1 past frames, "same" in space."""
  kt, kh, kw = kernel_size
  return ((kt - 1, 0), ((kh - 1) // 2, kh // 2), ((kw - 1) // 2, kw // 2))


def check_shapes(x, kernel, bias, spatial_stride):
  if x.ndim != 5:
    raise ValueError(f"x must be [B, T, H, W, Cin], got shape {x.shape}")
  if kernel.ndim != 5 or kernel.shape[3] != x.shape[-1]:
    raise ValueError(f"kernel must be [kt, kh, kw, Cin={x.shape[-1]}, Cout], got {kernel.shape}")
  if bias is not None and bias.shape != (kernel.shape[4],):
    raise ValueError(f"bias must be [Cout={kernel.shape[4]}], got {bias.shape}")
  if spatial_stride < 1:
    raise ValueError(f"spatial_stride must be >= 1, got {spatial_stride}")


def causal_conv3d_reference(x, kernel, bias=None, *, spatial_stride: int = 1):
  """[B, T, H, W, Cin] -> [B, T, ceil(H/s), ceil(W/s), Cout], computed in float32, output x.dtype."""
  check_shapes(x, kernel, bias, spatial_stride)
  (pt, ph, pw) = causal_padding(kernel.shape[:3])
  padded = jnp.pad(x.astype(jnp.float32), ((0, 0), pt, ph, pw, (0, 0)))
  out = lax.conv_general_dilated(
      padded, kernel.astype(jnp.float32), window_strides=(1, spatial_stride, spatial_stride),
      padding="VALID", dimension_numbers=("NTHWC", "THWIO", "NTHWC"),
      precision=lax.Precision.HIGHEST)
  if bias is not None:
    out = out + bias.astype(jnp.float32)
  return out.astype(x.dtype)
