"""Causal 3D convolution for CPU and GPU (the `impl="xla"` path): the fastest plain-XLA formulation for
the platform it is lowered for (`causal_conv`, chosen by `lax.platform_dependent` at lowering time):

  * GPU: one `lax.conv_general_dilated` with the causal padding as its padding, which XLA hands to
    cuDNN. Measured on an H200 (zoo/kernels/README.md): cuDNN runs at torch's speed, the chunked GEMM
    below at 0.07-0.13x of it (its lax.map runs the chunks one after another, each far too small for
    the GPU).
  * CPU (and anything else): chunked im2col + GEMM, below.

XLA:CPU lowers a 3D `conv_general_dilated` to a slow generic loop (about 30% of the f32 matmul peak on
the 2-core box). A convolution is a GEMM over im2col columns, but materialising all columns at once
costs 27x the input in memory traffic. So the output is produced in chunks of (one frame, a few rows)
with lax.map: each chunk concatenates its kw taps on the channel axis (3x, small enough to stay in
cache) and accumulates kt*kh GEMMs with K = kw*Cin. The backward pass is a custom_vjp built from the
same pieces:
  dx = the same chunked conv applied to the (stride-dilated, fully padded) output gradient with the
       kernel flipped in (t, h, w) and Cin/Cout swapped,
  dW = sum over chunks of (doutᵀ @ columns)ᵀ (a scan with the [Cout, K] accumulator as its carry).

The chunked functions take the input already padded (see reference.causal_padding), i.e. "valid" conv.
Layouts: xp [B, Tp, Hp, Wp, Cin], kernel [kt, kh, kw, Cin, Cout], out [B, T, Ho, Wo, Cout].
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

# GEMM rows (B * rows * Wo) per chunk: large enough for an efficient GEMM, small enough that the chunk's
# columns (pixels x kw*Cin) stay in a core's L2 (1 MiB on the 2-core box). Measured there on idle cores,
# forward+backward, interleaved in one process: Cin 64 (f32, 17x64x64) 1024-pixel chunks 0.73x the time of
# 512 (2048: 0.79x); Cin 128 (9x32x32) 512 best, 1024 1.12x; Cin 256 (9x16x16) 128-512 within 5%. A
# 768 KiB column budget picks each of those; the clamp keeps GEMMs long for thin inputs (RGB) and bounded.
CHUNK_COLUMN_BYTES = 768 * 1024
MIN_CHUNK_PIXELS, MAX_CHUNK_PIXELS = 512, 4096


def output_size(padded: int, kernel: int, stride: int) -> int:
  return (padded - kernel) // stride + 1


def chunk_pixels(kw: int, cin: int, itemsize: int) -> int:
  """Target GEMM rows per chunk: the chunk's columns (kw*cin values per pixel) within CHUNK_COLUMN_BYTES."""
  return int(min(MAX_CHUNK_PIXELS, max(MIN_CHUNK_PIXELS, CHUNK_COLUMN_BYTES // (kw * cin * itemsize))))


def _rows_per_chunk(batch: int, out_h: int, out_w: int, target_pixels: int) -> int:
  best = 1
  for rows in range(1, out_h + 1):
    if out_h % rows == 0 and batch * rows * out_w <= target_pixels:
      best = rows
  return best


def _chunks(xp, kernel_size, stride):
  """Chunk geometry: (num_frames, rows per chunk, chunks per frame, Ho, Wo)."""
  b, tp, hp, wp, cin = xp.shape
  kt, kh, kw = kernel_size
  out_h, out_w = output_size(hp, kh, stride), output_size(wp, kw, stride)
  rows = _rows_per_chunk(b, out_h, out_w, chunk_pixels(kw, cin, jnp.dtype(xp.dtype).itemsize))
  return tp - kt + 1, rows, out_h // rows, out_h, out_w


def _width_columns(xp, chunk_index, kernel_size, stride, rows, chunks_per_frame, out_w):
  """One chunk's input with the kw taps concatenated on channels: [B, kt, in_rows, Wo, kw*Cin].

  Concatenating only the kw taps copies 3x the input instead of 27x for full im2col; the kt*kh
  taps then become row offsets of this array, each a GEMM with K = kw*Cin (measured faster).
  """
  b, _, _, wp, cin = xp.shape
  kt, kh, kw = kernel_size
  t, row_block = chunk_index // chunks_per_frame, chunk_index % chunks_per_frame
  in_rows = stride * (rows - 1) + kh
  patch = lax.dynamic_slice(xp, (0, t, row_block * rows * stride, 0, 0), (b, kt, in_rows, wp, cin))
  return jnp.concatenate(
      [patch[:, :, :, dw:dw + stride * (out_w - 1) + 1:stride] for dw in range(kw)], axis=-1)


def _tap_rows(columns, dt, dh, stride, rows):
  """[B * rows * Wo, kw*Cin]: the rows tap (dt, dh) reads for the chunk's output rows."""
  taps = columns[:, dt, dh:dh + stride * (rows - 1) + 1:stride]
  return taps.reshape(-1, columns.shape[-1])


def _conv_valid_impl(xp, kernel, stride):
  kt, kh, kw, cin, cout = kernel.shape
  frames, rows, chunks_per_frame, out_h, out_w = _chunks(xp, (kt, kh, kw), stride)
  weight = kernel.reshape(kt, kh, kw * cin, cout)

  def chunk(index):
    columns = _width_columns(xp, index, (kt, kh, kw), stride, rows, chunks_per_frame, out_w)
    acc = None
    for dt in range(kt):
      for dh in range(kh):
        term = jnp.dot(_tap_rows(columns, dt, dh, stride, rows), weight[dt, dh],
                       preferred_element_type=jnp.float32)
        acc = term if acc is None else acc + term
    return acc.astype(xp.dtype)

  out = lax.map(chunk, jnp.arange(frames * chunks_per_frame))   # [chunks, B*rows*Wo, Cout]
  b = xp.shape[0]
  out = out.reshape(frames, chunks_per_frame, b, rows, out_w, cout)
  return out.transpose(2, 0, 1, 3, 4, 5).reshape(b, frames, out_h, out_w, cout)


def _kernel_gradient(xp, dout, kernel_shape, stride):
  kt, kh, kw, cin, cout = kernel_shape
  frames, rows, chunks_per_frame, out_h, out_w = _chunks(xp, (kt, kh, kw), stride)
  b = xp.shape[0]
  # Chunk-major copy of dout so each scan step reads one contiguous [B*rows*Wo, Cout] slab.
  dout_chunks = dout.reshape(b, frames, chunks_per_frame, rows, out_w, cout) \
      .transpose(1, 2, 0, 3, 4, 5).reshape(frames * chunks_per_frame, b * rows * out_w, cout)

  # Each tap's gradient is computed as doutᵀ @ columns ([Cout, kw*Cin], dout as the GEMM's left operand):
  # measured on the 2-core box 24% faster than columnsᵀ @ dout at Cin 64 (stride 1 and 2), the same at
  # Cin 128/256 (zoo/kernels/README.md). The accumulator is transposed back once, at the end.
  def step(acc, inputs):
    index, g = inputs
    columns = _width_columns(xp, index, (kt, kh, kw), stride, rows, chunks_per_frame, out_w)
    grads = [lax.dot_general(g, _tap_rows(columns, dt, dh, stride, rows), (((0,), (0,)), ((), ())),
                             preferred_element_type=jnp.float32)
             for dt in range(kt) for dh in range(kh)]
    return acc + jnp.stack(grads), None

  acc = jnp.zeros((kt * kh, cout, kw * cin), jnp.float32)
  acc, _ = lax.scan(step, acc, (jnp.arange(frames * chunks_per_frame), dout_chunks))
  return acc.reshape(kt, kh, cout, kw, cin).transpose(0, 1, 3, 4, 2)


def _input_gradient(dout, kernel, stride, padded_shape, needed):
  """d xp: the chunked conv of the dilated, fully padded dout with the flipped, transposed kernel.

  Only the region `needed` = ((t0, t1), (h0, h1), (w0, w1)) of xp is computed (the padding's gradient
  is thrown away anyway: 15% of the work for 3x3x3 at 17x64x64); the rest is zero-filled.
  """
  kt, kh, kw = kernel.shape[:3]
  b, frames, out_h, out_w, cout = dout.shape
  _, tp, hp, wp, cin = padded_shape
  if stride > 1:   # transposed strided conv: put dout on the stride grid, zeros in between
    dilated = jnp.zeros((b, frames, (out_h - 1) * stride + 1, (out_w - 1) * stride + 1, cout),
                        dout.dtype)
    dout = dilated.at[:, :, ::stride, ::stride].set(dout)
  extra_h = hp - (dout.shape[2] + kh - 1)
  extra_w = wp - (dout.shape[3] + kw - 1)
  padded = jnp.pad(dout, ((0, 0), (kt - 1, kt - 1), (kh - 1, kh - 1 + extra_h),
                          (kw - 1, kw - 1 + extra_w), (0, 0)))
  # Valid-conv output [a, b) reads input [a, b + k - 1): crop the input to the needed outputs.
  (t0, t1), (h0, h1), (w0, w1) = needed
  cropped = padded[:, t0:t1 + kt - 1, h0:h1 + kh - 1, w0:w1 + kw - 1]
  flipped = jnp.flip(kernel, axis=(0, 1, 2)).swapaxes(3, 4)            # [kt, kh, kw, Cout, Cin]
  inner = _conv_valid_impl(cropped, flipped, 1)
  return jnp.pad(inner, ((0, 0), (t0, tp - t1), (h0, hp - h1), (w0, wp - w1), (0, 0)))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def conv_valid(xp, kernel, stride: int, needed=None):
  """Valid (already padded) 3D conv, stride (1, s, s): [B, Tp, Hp, Wp, Cin] -> [B, T, Ho, Wo, Cout].

  needed: ((t0, t1), (h0, h1), (w0, w1)), the region of xp whose gradient matters (the unpadded
  input); None means all of it.
  """
  del needed  # only used by the backward pass
  return _conv_valid_impl(xp, kernel, stride)


def _conv_valid_fwd(xp, kernel, stride, needed):
  return _conv_valid_impl(xp, kernel, stride), (xp, kernel)


def _conv_valid_bwd(stride, needed, residuals, dout):
  xp, kernel = residuals
  if needed is None:
    needed = tuple((0, size) for size in xp.shape[1:4])
  dxp = _input_gradient(dout, kernel, stride, xp.shape, needed)
  dkernel = _kernel_gradient(xp, dout, kernel.shape, stride)
  return dxp.astype(xp.dtype), dkernel.astype(kernel.dtype)


conv_valid.defvjp(_conv_valid_fwd, _conv_valid_bwd)


def _cudnn_conv(x, kernel, stride, padding):
  """GPU formulation: one convolution, padded by the convolution itself (no padded copy of x)."""
  return lax.conv_general_dilated(x, kernel, (1, stride, stride), padding,
                                  dimension_numbers=("NTHWC", "THWIO", "NTHWC"))


def _chunked_conv(x, kernel, stride, padding):
  """CPU formulation: zero-pad, then the chunked im2col/GEMM conv with its own backward pass."""
  xp = jnp.pad(x, ((0, 0), *padding, (0, 0)))
  # The padding's gradient is discarded, so the backward computes dx on the input region only.
  needed = tuple((low, low + size) for (low, _), size in zip(padding, x.shape[1:4]))
  return conv_valid(xp, kernel, stride, needed)


def causal_conv(x, kernel, stride: int, padding):
  """x [B, T, H, W, Cin] (unpadded), kernel [kt, kh, kw, Cin, Cout] in x.dtype, padding ((t0, t1),
  (h0, h1), (w0, w1)) -> [B, T, Ho, Wo, Cout]: cuDNN's convolution where this lowers for a GPU, the
  chunked GEMM elsewhere. The choice is made per lowering platform, so a program lowered for `cuda`
  from a CPU machine (AOT) gets the GPU formulation."""
  padding = tuple(tuple(pair) for pair in padding)
  gpu = functools.partial(_cudnn_conv, stride=stride, padding=padding)
  return lax.platform_dependent(
      x, kernel, cuda=gpu, rocm=gpu, default=functools.partial(_chunked_conv, stride=stride, padding=padding))
