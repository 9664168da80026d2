"""Window attention for W.A.L.T (arXiv 2312.06662 §4.2): dispatch between XLA and Pallas TPU.

    out = window_attention(q, k, v, relative_bias, window=(1, 16, 16))           # spatial layer
    out = window_attention(q, k, v, relative_bias, window=(5, 8, 8), is_image=flags)  # spatiotemporal

q, k, v and out are [B, T, H, W, num_heads, head_dim] on the latent token grid. relative_bias is the
Swin-style learned table [num_heads, (2wt-1)(2wh-1)(2ww-1)] (gathered here, so its gradient is a plain
XLA scatter-add) or an already-gathered [num_heads, S, S] with S = wt*wh*ww.

is_image [B] bool marks examples that are stacks of independent images: their tokens attend only to
themselves, so the output is their own value vector (the paper's identity mask). The flag applies to
whatever layer receives it, so the transformer passes it to spatiotemporal layers only; in a spatial
layer (window 1 x h x w) a frame of an image stack is an ordinary image and attends normally.

impl: "auto" -> Pallas on TPU; on GPU cuDNN's fused attention where it takes the inputs (16-bit dtypes,
head_dim a multiple of 8 up to 128), else XLA; XLA on CPU. "pallas" forces the TPU kernel (use
interpret=True off TPU, as the tests do); "xla" forces the XLA path; "cudnn" forces cuDNN (GPU only:
jax cannot even trace it without a GPU).
mesh: when given, the call runs inside jax.shard_map over all mesh axes (Pallas TPU kernels cannot be
auto-partitioned), with batch on `batch_axes` and heads on `head_axis` (axes absent from the mesh are
ignored) and check_vma=False (interpret mode breaks under it).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from zoo.kernels import dispatch

from zoo.kernels.window_attention import pallas_tpu
from zoo.kernels.window_attention import reference
from zoo.kernels.window_attention import xla
from zoo.kernels.window_attention.reference import (check_window, gather_relative_bias,
                                                     relative_position_index,
                                                     window_attention_reference, window_merge,
                                                     window_partition)

__all__ = ["window_attention", "window_attention_reference", "resolve_impl", "check_window",
           "gather_relative_bias", "relative_position_index", "window_partition", "window_merge"]

# jax.nn.dot_product_attention(implementation="cudnn") accepts these; 72-dim heads (W.A.L.T-XL) included.
CUDNN_DTYPES = ("bfloat16", "float16")
CUDNN_MAX_HEAD_DIM = 128
IMPLS = dispatch.IMPLS + ("cudnn",)


def cudnn_unsupported_reason(dtype, head_dim: int) -> str | None:
  """Why cuDNN's fused attention cannot take these inputs, or None when it can."""
  if jnp.dtype(dtype).name not in CUDNN_DTYPES:
    return f"cuDNN attention needs {' or '.join(CUDNN_DTYPES)} inputs, got {jnp.dtype(dtype).name}"
  if head_dim % 8 or head_dim > CUDNN_MAX_HEAD_DIM:
    return f"cuDNN attention needs head_dim a multiple of 8 up to {CUDNN_MAX_HEAD_DIM}, got {head_dim}"
  return None


def resolve_impl(impl: str, dtype=None, head_dim: int | None = None) -> str:
  """The path `impl` runs for inputs of `dtype` with `head_dim` on this backend (see the module
  docstring). Without dtype and head_dim, "auto" on GPU stays "auto" for window_attention to decide."""
  if impl not in IMPLS:
    raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
  gpu = jax.default_backend() == "gpu"
  if impl == "cudnn":
    if not gpu:
      raise ValueError("impl='cudnn' needs a GPU backend (jax cannot trace cuDNN attention without "
                       "one); use impl='auto' or 'xla'")
    reason = None if dtype is None else cudnn_unsupported_reason(dtype, head_dim)
    if reason:
      raise ValueError(f"impl='cudnn': {reason}; use impl='auto' (falls back to XLA) or 'xla'")
    return impl
  if impl == "auto" and gpu:
    if dtype is None:
      return "auto"
    return "xla" if cudnn_unsupported_reason(dtype, head_dim) else "cudnn"
  return dispatch.resolve_impl(impl)


def _mesh_axes(mesh, names):
  present = tuple(name for name in names if name in mesh.axis_names)
  return present if present else None


def window_attention(q, k, v, relative_bias, *, window, is_image=None, scale=None, impl="auto",
                     interpret=False, mesh=None, batch_axes=("data", "fsdp"), head_axis="tensor",
                     block_q=None, block_kv=None, vmem_limit_bytes=None):
  """Multi-head self-attention inside non-overlapping (wt, wh, ww) windows of the [T, H, W] grid.

  Args:
    q, k, v: [B, T, H, W, N, D]; float32 or bfloat16 (matmuls accumulate in float32).
    relative_bias: [N, (2wt-1)(2wh-1)(2ww-1)] table or [N, S, S] gathered bias.
    window: (wt, wh, ww); each must divide (T, H, W) or a ValueError names the offending axis.
    is_image: optional [B] bool, W.A.L.T's identity mask for image stacks.
    scale: softmax scale, default 1/sqrt(D).
    impl, interpret, mesh, batch_axes, head_axis: see the module docstring.
    block_q, block_kv: Pallas query/key block sizes (default: whole window up to 512 tokens).
    vmem_limit_bytes: Pallas scoped-VMEM limit (None = compiler default).
  Returns:
    [B, T, H, W, N, D] in q.dtype.
  """
  if q.ndim != 6 or k.shape != q.shape or v.shape != q.shape:
    raise ValueError(f"q, k, v must all be [B, T, H, W, num_heads, head_dim]; got {q.shape}, "
                     f"{k.shape}, {v.shape}")
  window = tuple(int(w) for w in window)
  check_window(q.shape[1:4], window)
  b, n, d = q.shape[0], q.shape[4], q.shape[5]
  impl = resolve_impl(impl, q.dtype, d)
  seq = window[0] * window[1] * window[2]
  scale = reference.default_scale(d) if scale is None else float(scale)
  bias = gather_relative_bias(relative_bias, window)                  # [N, S, S]
  if bias.shape[0] != n:
    raise ValueError(f"relative_bias has {bias.shape[0]} heads, q has {n}")
  block_q = pallas_tpu.pick_block(seq, 512, 8) if block_q is None else block_q
  block_kv = pallas_tpu.pick_block(seq, 512, 128) if block_kv is None else block_kv
  if seq % block_q or seq % block_kv:
    raise ValueError(f"block_q={block_q} and block_kv={block_kv} must divide the window size {seq}")
  flags = None if is_image is None else jnp.asarray(is_image).astype(bool).reshape(b)

  def local(q, k, v, bias, flags):
    grid_shape = q.shape[:4]
    qw, kw, vw = (window_partition(x, window) for x in (q, k, v))
    num_windows = qw.shape[0] // grid_shape[0]
    flags_per_window = None if flags is None else jnp.repeat(flags, num_windows)
    if impl == "xla":
      out = xla.windowed_attention(qw, kw, vw, bias, flags_per_window, scale=scale)
    elif impl == "cudnn":
      out = xla.cudnn_windowed_attention(qw, kw, vw, bias, flags_per_window, scale=scale)
    else:
      if flags_per_window is None:
        flags_per_window = jnp.zeros((qw.shape[0],), bool)
      out = pallas_tpu.windowed_attention(qw, kw, vw, bias.astype(jnp.float32),
                                          flags_per_window.astype(jnp.int32), scale, block_q,
                                          block_kv, interpret, vmem_limit_bytes)
    return window_merge(out, window, grid_shape)

  if mesh is None:
    return local(q, k, v, bias, flags)
  batch = _mesh_axes(mesh, batch_axes)
  heads = _mesh_axes(mesh, (head_axis,))
  heads = heads[0] if heads else None
  token_spec = P(batch, None, None, None, heads, None)
  bias_spec = P(heads, None, None)
  if flags is None:
    sharded = jax.shard_map(lambda q, k, v, bias: local(q, k, v, bias, None), mesh=mesh,
                            in_specs=(token_spec,) * 3 + (bias_spec,), out_specs=token_spec,
                            check_vma=False)
    return sharded(q, k, v, bias)
  sharded = jax.shard_map(local, mesh=mesh, in_specs=(token_spec,) * 3 + (bias_spec, P(batch)),
                          out_specs=token_spec, check_vma=False)
  return sharded(q, k, v, bias, flags)
