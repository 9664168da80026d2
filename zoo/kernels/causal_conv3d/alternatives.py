"""Formulations of the causal 3-D conv that were measured on the 2-core CPU box and NOT used.

They are kept, tested against the reference, so the "tried" numbers in zoo/kernels/README.md can be
rerun side by side with the chosen path (`xla.py`) and torch:

    python -m tools.benchmark kernels --only conv-alternatives
    XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type= python -m tools.benchmark kernels --only conv-alternatives

Same contract as `causal_conv3d` at stride 1 (kt-1 past frames, "same" in space):
x [B, T, H, W, Cin], kernel [kt, kh, kw, Cin, Cout] -> [B, T, H, W, Cout]. Forward only: each lost on
the forward already.
"""
from __future__ import annotations

import jax.numpy as jnp
from jax import lax

from zoo.kernels.causal_conv3d import xla
from zoo.kernels.causal_conv3d.reference import causal_padding

_NHWC = ("NHWC", "HWIO", "NHWC")


def _pad_time(x, kt):
  return jnp.pad(x, ((0, 0), (kt - 1, 0), (0, 0), (0, 0), (0, 0)))


def conv2d_over_taps(x, kernel):
  """kt 2-D convolutions (frames folded into the batch, space padded by the convolution), one per
  temporal tap, summed. XLA:CPU hands a 2-D convolution to YNNPACK (or to Eigen with YNNPACK fusions
  switched off); it has no fast 3-D one."""
  kt = kernel.shape[0]
  b, frames, h, w, cin = x.shape
  xp = _pad_time(x, kt)
  spatial = causal_padding(kernel.shape[:3])[1:]
  out = None
  for dt in range(kt):
    frames_in = xp[:, dt:dt + frames].reshape(b * frames, h, w, cin)
    term = lax.conv_general_dilated(frames_in, kernel[dt], (1, 1), spatial, dimension_numbers=_NHWC)
    out = term if out is None else out + term
  return out.reshape(b, frames, *out.shape[1:])


def conv2d_taps_on_channels(x, kernel):
  """One 2-D convolution whose input stacks the kt time-shifted frames on the channel axis (K = kt·Cin)."""
  kt, kh, kw, cin, cout = kernel.shape
  b, frames, h, w, _ = x.shape
  xp = _pad_time(x, kt)
  stacked = jnp.concatenate([xp[:, dt:dt + frames] for dt in range(kt)], axis=-1)
  weight = kernel.transpose(1, 2, 0, 3, 4).reshape(kh, kw, kt * cin, cout)
  out = lax.conv_general_dilated(stacked.reshape(b * frames, h, w, kt * cin), weight, (1, 1),
                                 causal_padding(kernel.shape[:3])[1:], dimension_numbers=_NHWC)
  return out.reshape(b, frames, *out.shape[1:])


def chunked_with_frame_ring(x, kernel, target_pixels: int | None = None):
  """`xla.py`'s chunked GEMM, but each input frame's width columns are built once instead of kt times:
  row block by row block (lax.map), output frames inner, the last kt-1 frames' columns carried through
  a scan over groups of kt frames (so every slot index is static)."""
  kt, kh, kw, cin, cout = kernel.shape
  xp = jnp.pad(x, ((0, 0), *causal_padding(kernel.shape[:3]), (0, 0)))
  b, tp, hp, wp, _ = xp.shape
  frames, out_h, out_w = tp - kt + 1, hp - kh + 1, wp - kw + 1
  target = target_pixels or xla.chunk_pixels(kw, cin, jnp.dtype(xp.dtype).itemsize)
  # Same chunking and column building as the chosen path (xla.py), one frame at a time.
  rows = xla._rows_per_chunk(b, out_h, out_w, target)  # noqa: SLF001
  blocks = out_h // rows
  weight = kernel.reshape(kt, kh, kw * cin, cout)

  def columns(block, t):  # [B, rows + kh - 1, Wo, kw*Cin] of input frame t
    return xla._width_columns(xp, t * blocks + block, (1, kh, kw), 1, rows, blocks, out_w)[:, 0]  # noqa: SLF001

  def output_frame(window):  # window: the kt frames' columns, oldest first
    acc = None
    for dt in range(kt):
      for dh in range(kh):
        term = jnp.dot(window[dt][:, dh:dh + rows].reshape(-1, kw * cin), weight[dt, dh],
                       preferred_element_type=jnp.float32)
        acc = term if acc is None else acc + term
    return acc.astype(xp.dtype)

  groups, remainder = divmod(frames, kt)

  def block_outputs(block):
    def group(carry, g):
      window, outs = list(carry), []
      for i in range(kt):
        window.append(columns(block, g * kt + i + kt - 1))
        outs.append(output_frame(window[-kt:]))
      return tuple(window[len(window) - (kt - 1):]), jnp.stack(outs)

    carry = tuple(columns(block, t) for t in range(kt - 1))
    carry, outs = lax.scan(group, carry, jnp.arange(groups))
    outs = [outs.reshape(groups * kt, *outs.shape[2:])]
    window = list(carry)
    for i in range(remainder):
      window.append(columns(block, groups * kt + i + kt - 1))
      outs.append(output_frame(window[-kt:])[None])
    return jnp.concatenate(outs)                                  # [frames, B*rows*Wo, Cout]

  out = lax.map(block_outputs, jnp.arange(blocks))                # [blocks, frames, B*rows*Wo, Cout]
  out = out.reshape(blocks, frames, b, rows, out_w, cout)
  return out.transpose(2, 1, 0, 3, 4, 5).reshape(b, frames, out_h, out_w, cout)


ALTERNATIVES = {"2-D conv per tap": conv2d_over_taps, "2-D conv, taps on C": conv2d_taps_on_channels,
                "frame ring": chunked_with_frame_ring}
