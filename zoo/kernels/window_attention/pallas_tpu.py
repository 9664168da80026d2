"""Pallas TPU kernels for W.A.L.T window attention (forward + custom_vjp backward).

Everything here works on the *windowed* layout produced by `reference.window_partition`:
  q, k, v, out, dq, dk, dv   [G, N, S, D]    G = B * num_windows, N heads, S = wt*wh*ww tokens, D dims
  bias, dbias                [N, S, S]       float32, shared by every window (Swin relative bias)
  lse, delta                 [G, N, S, 1]    float32 softmax statistics (last dim 1: a column the
                                             kernel broadcasts along keys without a transpose)
  is_image                   [G] int32       scalar-prefetched into SMEM; 1 = identity mask

Windows are small (W.A.L.T: 256 or 320 tokens), so one (window, head) pair keeps its whole K and V
resident in VMEM; queries are tiled by the grid and keys are streamed by an in-kernel loop with an
online softmax (float32 running max / sum / accumulator), FlashAttention style. bf16 inputs feed the
MXU directly; every matmul accumulates in float32.

Grid order puts the window axis G innermost so the [block_q, S] bias tile, which depends only on
(head, query block), is fetched once and reused for all windows (the pipeline skips a copy whose block
index did not change), and so the dbias tile can accumulate in its output buffer across windows.

Image examples (W.A.L.T §4.2, identity mask) skip all matmuls: out = v, dv = dout, dq = dk = 0 and
they add nothing to dbias, which is exactly the gradient of softmax with a one-hot row.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import tpu as pltpu

# Contract the last dims of both operands: a @ b.T without materialising the transpose.
_NT = (((1,), (1,)), ((), ()))
# Contract the first dims of both operands: a.T @ b.
_TN = (((0,), (0,)), ((), ()))


def pick_block(size: int, target: int, multiple: int) -> int:
  """Largest divisor of `size` that is <= target and a multiple of `multiple`; else the full size.

  TPU blocks must have their last two dims divisible by (8, 128) or equal to the array's dims, so
  a block along the sublane axis needs multiple=8 and along the lane axis multiple=128.
  """
  if size <= target:
    return size
  for block in range(target - target % multiple, 0, -multiple):
    if size % block == 0:
      return block
  return size


def _scores(q, k, bias, scale):
  s = lax.dot_general(q, k, _NT, preferred_element_type=jnp.float32)
  return s * scale + bias


# ---------------------------------------------------------------------------------------------
# Forward
# ---------------------------------------------------------------------------------------------
def _forward_kernel(is_image_ref, q_ref, k_ref, v_ref, bias_ref, out_ref, lse_ref, *,
                    scale: float, block_kv: int):
  # q_ref [bq, D]; k_ref, v_ref [S, D]; bias_ref [bq, S]; out_ref [bq, D]; lse_ref [bq, 1]
  window = pl.program_id(2)
  query_block = pl.program_id(1)
  block_q, head_dim = q_ref.shape
  seq_len = k_ref.shape[0]
  num_kv_blocks = seq_len // block_kv

  @pl.when(is_image_ref[window] != 0)
  def _identity():
    start = query_block * block_q
    out_ref[...] = v_ref[pl.ds(start, block_q), :].astype(out_ref.dtype)
    lse_ref[...] = jnp.zeros(lse_ref.shape, jnp.float32)

  @pl.when(is_image_ref[window] == 0)
  def _attend():
    q = q_ref[...]

    def step(j, carry):
      row_max, row_sum, acc = carry
      kv = pl.ds(pl.multiple_of(j * block_kv, block_kv), block_kv)
      s = _scores(q, k_ref[kv, :], bias_ref[:, kv], scale)                    # [bq, bkv] f32
      new_max = jnp.maximum(row_max, jnp.max(s, axis=-1, keepdims=True))
      p = jnp.exp(s - new_max)
      correction = jnp.exp(row_max - new_max)
      row_sum = correction * row_sum + jnp.sum(p, axis=-1, keepdims=True)
      v = v_ref[kv, :]
      acc = correction * acc + jnp.dot(p.astype(v.dtype), v, preferred_element_type=jnp.float32)
      return new_max, row_sum, acc

    init = (jnp.full((block_q, 1), -jnp.inf, jnp.float32), jnp.zeros((block_q, 1), jnp.float32),
            jnp.zeros((block_q, head_dim), jnp.float32))
    row_max, row_sum, acc = lax.fori_loop(0, num_kv_blocks, step, init, unroll=num_kv_blocks <= 4)
    out_ref[...] = (acc / row_sum).astype(out_ref.dtype)
    lse_ref[...] = row_max + jnp.log(row_sum)


def _compiler_params(semantics, vmem_limit_bytes):
  return pltpu.CompilerParams(dimension_semantics=semantics, vmem_limit_bytes=vmem_limit_bytes)


def forward(q, k, v, bias, is_image, *, scale, block_q, block_kv, interpret, vmem_limit_bytes=None):
  """Returns (out [G, N, S, D] in q.dtype, lse [G, N, S, 1] f32)."""
  g, n, s, d = q.shape
  grid = (n, s // block_q, g)     # windows innermost: bias tile reused across windows
  q_spec = pl.BlockSpec((None, None, block_q, d), lambda h, i, w, img: (w, h, i, 0))
  kv_spec = pl.BlockSpec((None, None, s, d), lambda h, i, w, img: (w, h, 0, 0))
  bias_spec = pl.BlockSpec((None, block_q, s), lambda h, i, w, img: (h, i, 0))
  lse_spec = pl.BlockSpec((None, None, block_q, 1), lambda h, i, w, img: (w, h, i, 0))
  itemsize = q.dtype.itemsize
  cost = pl.CostEstimate(flops=4 * g * n * s * s * d, transcendentals=g * n * s * s,
                         bytes_accessed=4 * g * n * s * d * itemsize + n * s * s * 4 + g * n * s * 4)
  return pl.pallas_call(
      functools.partial(_forward_kernel, scale=scale, block_kv=block_kv),
      out_shape=(jax.ShapeDtypeStruct(q.shape, q.dtype),
                 jax.ShapeDtypeStruct((g, n, s, 1), jnp.float32)),
      grid_spec=pltpu.PrefetchScalarGridSpec(
          num_scalar_prefetch=1, grid=grid,
          in_specs=[q_spec, kv_spec, kv_spec, bias_spec],
          out_specs=[q_spec, lse_spec]),
      compiler_params=_compiler_params(("parallel", "parallel", "parallel"), vmem_limit_bytes),
      cost_estimate=cost, interpret=interpret, name="window_attention_fwd",
  )(is_image, q, k, v, bias)


# ---------------------------------------------------------------------------------------------
# Backward: dq and dbias (loop over key blocks), then dk and dv (loop over query blocks)
# ---------------------------------------------------------------------------------------------
def _dq_dbias_kernel(is_image_ref, q_ref, k_ref, v_ref, dout_ref, lse_ref, delta_ref, bias_ref,
                     dq_ref, dbias_ref, *, scale: float, block_kv: int):
  # q_ref, dout_ref, dq_ref [bq, D]; k_ref, v_ref [S, D]; lse/delta [bq, 1]; bias, dbias [bq, S]
  window = pl.program_id(2)
  block_q, head_dim = q_ref.shape
  num_kv_blocks = k_ref.shape[0] // block_kv

  @pl.when(window == 0)
  def _init():   # dbias accumulates over the (innermost, sequential) window axis
    dbias_ref[...] = jnp.zeros(dbias_ref.shape, dbias_ref.dtype)

  @pl.when(is_image_ref[window] != 0)
  def _identity():
    dq_ref[...] = jnp.zeros(dq_ref.shape, dq_ref.dtype)

  @pl.when(is_image_ref[window] == 0)
  def _attend():
    q, dout = q_ref[...], dout_ref[...]
    lse, delta = lse_ref[...], delta_ref[...]

    def step(j, dq_acc):
      kv = pl.ds(pl.multiple_of(j * block_kv, block_kv), block_kv)
      k = k_ref[kv, :]
      p = jnp.exp(_scores(q, k, bias_ref[:, kv], scale) - lse)                 # [bq, bkv]
      dp = lax.dot_general(dout, v_ref[kv, :], _NT, preferred_element_type=jnp.float32)
      ds = p * (dp - delta)                                                     # d(score)
      dbias_ref[:, kv] += ds
      return dq_acc + jnp.dot(ds.astype(k.dtype), k, preferred_element_type=jnp.float32)

    dq = lax.fori_loop(0, num_kv_blocks, step, jnp.zeros((block_q, head_dim), jnp.float32),
                       unroll=num_kv_blocks <= 4)
    dq_ref[...] = (dq * scale).astype(dq_ref.dtype)


def _dk_dv_kernel(is_image_ref, q_ref, k_ref, v_ref, dout_ref, lse_ref, delta_ref, bias_ref,
                  dk_ref, dv_ref, *, scale: float, block_q: int):
  # q_ref, dout_ref [S, D]; k_ref, v_ref, dk_ref, dv_ref [bkv, D]; lse/delta [S, 1]; bias [S, bkv]
  window = pl.program_id(2)
  kv_block = pl.program_id(1)
  block_kv, head_dim = k_ref.shape
  num_q_blocks = q_ref.shape[0] // block_q

  @pl.when(is_image_ref[window] != 0)
  def _identity():
    dk_ref[...] = jnp.zeros(dk_ref.shape, dk_ref.dtype)
    dv_ref[...] = dout_ref[pl.ds(kv_block * block_kv, block_kv), :].astype(dv_ref.dtype)

  @pl.when(is_image_ref[window] == 0)
  def _attend():
    k, v = k_ref[...], v_ref[...]

    def step(i, carry):
      dk_acc, dv_acc = carry
      rows = pl.ds(pl.multiple_of(i * block_q, block_q), block_q)
      q, dout = q_ref[rows, :], dout_ref[rows, :]
      p = jnp.exp(_scores(q, k, bias_ref[rows, :], scale) - lse_ref[rows, :])   # [bq, bkv]
      dv_acc += lax.dot_general(p.astype(dout.dtype), dout, _TN, preferred_element_type=jnp.float32)
      dp = lax.dot_general(dout, v, _NT, preferred_element_type=jnp.float32)
      ds = p * (dp - delta_ref[rows, :])
      dk_acc += lax.dot_general(ds.astype(q.dtype), q, _TN, preferred_element_type=jnp.float32)
      return dk_acc, dv_acc

    zeros = jnp.zeros((block_kv, head_dim), jnp.float32)
    dk, dv = lax.fori_loop(0, num_q_blocks, step, (zeros, zeros), unroll=num_q_blocks <= 4)
    dk_ref[...] = (dk * scale).astype(dk_ref.dtype)
    dv_ref[...] = dv.astype(dv_ref.dtype)


def backward(q, k, v, bias, is_image, out, lse, dout, *, scale, block_q, block_kv, interpret,
             vmem_limit_bytes=None):
  """Returns (dq, dk, dv [G, N, S, D], dbias [N, S, S] f32)."""
  g, n, s, d = q.shape
  # delta_i = sum_d dout_i * out_i = sum_j p_ij dp_ij: one cheap fused XLA elementwise pass.
  delta = jnp.sum(dout.astype(jnp.float32) * out.astype(jnp.float32), axis=-1, keepdims=True)
  operands = (is_image, q, k, v, dout, lse, delta, bias)

  # dq + dbias: grid (head, query block, window); the window axis accumulates dbias -> arbitrary.
  row_spec = pl.BlockSpec((None, None, block_q, d), lambda h, i, w, img: (w, h, i, 0))
  full_spec = pl.BlockSpec((None, None, s, d), lambda h, i, w, img: (w, h, 0, 0))
  stat_spec = pl.BlockSpec((None, None, block_q, 1), lambda h, i, w, img: (w, h, i, 0))
  bias_rows_spec = pl.BlockSpec((None, block_q, s), lambda h, i, w, img: (h, i, 0))
  dq, dbias = pl.pallas_call(
      functools.partial(_dq_dbias_kernel, scale=scale, block_kv=block_kv),
      out_shape=(jax.ShapeDtypeStruct(q.shape, q.dtype),
                 jax.ShapeDtypeStruct((n, s, s), jnp.float32)),
      grid_spec=pltpu.PrefetchScalarGridSpec(
          num_scalar_prefetch=1, grid=(n, s // block_q, g),
          in_specs=[row_spec, full_spec, full_spec, row_spec, stat_spec, stat_spec, bias_rows_spec],
          out_specs=[row_spec, bias_rows_spec]),
      compiler_params=_compiler_params(("parallel", "parallel", "arbitrary"), vmem_limit_bytes),
      cost_estimate=pl.CostEstimate(flops=6 * g * n * s * s * d, transcendentals=g * n * s * s,
                                    bytes_accessed=5 * g * n * s * d * q.dtype.itemsize
                                    + 2 * n * s * s * 4),
      interpret=interpret, name="window_attention_bwd_dq_dbias",
  )(*operands)

  # dk + dv: grid (head, key block, window), every axis independent.
  col_spec = pl.BlockSpec((None, None, block_kv, d), lambda h, j, w, img: (w, h, j, 0))
  full_spec = pl.BlockSpec((None, None, s, d), lambda h, j, w, img: (w, h, 0, 0))
  stat_spec = pl.BlockSpec((None, None, s, 1), lambda h, j, w, img: (w, h, 0, 0))
  bias_cols_spec = pl.BlockSpec((None, s, block_kv), lambda h, j, w, img: (h, 0, j))
  dk, dv = pl.pallas_call(
      functools.partial(_dk_dv_kernel, scale=scale, block_q=block_q),
      out_shape=(jax.ShapeDtypeStruct(k.shape, k.dtype), jax.ShapeDtypeStruct(v.shape, v.dtype)),
      grid_spec=pltpu.PrefetchScalarGridSpec(
          num_scalar_prefetch=1, grid=(n, s // block_kv, g),
          in_specs=[full_spec, col_spec, col_spec, full_spec, stat_spec, stat_spec, bias_cols_spec],
          out_specs=[col_spec, col_spec]),
      compiler_params=_compiler_params(("parallel", "parallel", "parallel"), vmem_limit_bytes),
      cost_estimate=pl.CostEstimate(flops=8 * g * n * s * s * d, transcendentals=g * n * s * s,
                                    bytes_accessed=6 * g * n * s * d * q.dtype.itemsize
                                    + n * s * s * 4),
      interpret=interpret, name="window_attention_bwd_dk_dv",
  )(*operands)
  return dq, dk, dv, dbias


# ---------------------------------------------------------------------------------------------
# custom_vjp on the windowed layout
# ---------------------------------------------------------------------------------------------
@functools.partial(jax.custom_vjp, nondiff_argnums=(5, 6, 7, 8, 9))
def windowed_attention(q, k, v, bias, is_image, scale, block_q, block_kv, interpret,
                       vmem_limit_bytes):
  """Attention inside each window. q, k, v [G, N, S, D]; bias [N, S, S] f32; is_image [G] int32."""
  out, _ = forward(q, k, v, bias, is_image, scale=scale, block_q=block_q, block_kv=block_kv,
                   interpret=interpret, vmem_limit_bytes=vmem_limit_bytes)
  return out


def _windowed_attention_fwd(q, k, v, bias, is_image, scale, block_q, block_kv, interpret,
                            vmem_limit_bytes):
  out, lse = forward(q, k, v, bias, is_image, scale=scale, block_q=block_q, block_kv=block_kv,
                     interpret=interpret, vmem_limit_bytes=vmem_limit_bytes)
  return out, (q, k, v, bias, is_image, out, lse)


def _windowed_attention_bwd(scale, block_q, block_kv, interpret, vmem_limit_bytes, residuals,
                            dout):
  q, k, v, bias, is_image, out, lse = residuals
  dq, dk, dv, dbias = backward(q, k, v, bias, is_image, out, lse, dout, scale=scale,
                               block_q=block_q, block_kv=block_kv, interpret=interpret,
                               vmem_limit_bytes=vmem_limit_bytes)
  # is_image is an integer input: its cotangent is None (symbolic zero).
  return dq, dk, dv, dbias.astype(bias.dtype), None


windowed_attention.defvjp(_windowed_attention_fwd, _windowed_attention_bwd)
