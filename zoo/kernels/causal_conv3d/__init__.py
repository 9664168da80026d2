"""Causal 3D convolution (MAGVIT-v2 §3.2; W.A.L.T §4.1 autoencoder): dispatch between XLA and Pallas.

    y = causal_conv3d(x, kernel, bias, spatial_stride=2)

x [B, T, H, W, Cin], kernel [kt, kh, kw, Cin, Cout], bias [Cout] or None ->
y [B, T, ceil(H/s), ceil(W/s), Cout]. Time is padded with kt-1 zero frames in the past only (frame t
never sees frames > t; frame 0 is encoded on its own), space with "same" zero padding.

impl: "auto" -> Pallas on TPU, XLA elsewhere: cuDNN's convolution on GPU, chunked im2col/GEMM on CPU
(xla.causal_conv picks per lowering platform); "pallas" (interpret=True off TPU) or "xla" force a
path. mesh: run inside jax.shard_map over all mesh axes with the batch on `batch_axes` (the kernel
and bias replicated), check_vma=False.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.sharding import PartitionSpec as P

from zoo.kernels.dispatch import IMPLS, resolve_impl

from zoo.kernels.causal_conv3d import pallas_tpu
from zoo.kernels.causal_conv3d import xla
from zoo.kernels.causal_conv3d.reference import (causal_conv3d_reference, causal_padding,
                                                  check_shapes)

__all__ = ["causal_conv3d", "causal_conv3d_reference", "causal_padding", "resolve_impl"]



def causal_conv3d(x, kernel, bias=None, *, spatial_stride: int = 1, impl: str = "auto",
                  interpret=False, mesh=None, batch_axes=("data", "fsdp"), block_h=None,
                  block_cout=None, vmem_limit_bytes=None):
  """Causal 3D convolution; see the module docstring. Matmuls accumulate in float32.

  block_h, block_cout: Pallas output-row and output-channel block sizes (default: chosen to fit a
  VMEM budget, see pallas_tpu.choose_blocks); vmem_limit_bytes: Pallas scoped-VMEM limit.
  """
  check_shapes(x, kernel, bias, spatial_stride)
  impl = resolve_impl(impl)

  def local(x, kernel, bias):
    padding = causal_padding(kernel.shape[:3])
    if impl == "xla":
      out = xla.causal_conv(x, kernel.astype(x.dtype), spatial_stride, padding)
      if bias is not None:
        out = (out.astype(jnp.float32) + bias.astype(jnp.float32)).astype(x.dtype)
      return out
    xp = jnp.pad(x, ((0, 0), *padding, (0, 0)))
    return pallas_tpu.causal_conv3d_padded(xp, kernel, bias, stride=spatial_stride,
                                           block_h=block_h, block_cout=block_cout,
                                           interpret=interpret, vmem_limit_bytes=vmem_limit_bytes)

  if mesh is None:
    return local(x, kernel, bias)
  batch = tuple(name for name in batch_axes if name in mesh.axis_names) or None
  x_spec = P(batch, None, None, None, None)
  if bias is None:
    return jax.shard_map(lambda x, kernel: local(x, kernel, None), mesh=mesh,
                         in_specs=(x_spec, P()), out_specs=x_spec, check_vma=False)(x, kernel)
  return jax.shard_map(local, mesh=mesh, in_specs=(x_spec, P(), P()), out_specs=x_spec,
                       check_vma=False)(x, kernel, bias)
