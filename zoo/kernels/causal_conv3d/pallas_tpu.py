"""Pallas TPU kernels for the causal 3D convolution (forward + custom_vjp backward).

Data movement is arranged in XLA so the kernels only ever index untiled leading dimensions:
  1. pad: kt-1 past frames, "same" space (reference.causal_padding);
  2. width im2col: the kw taps (with the spatial stride) are concatenated on the channel axis, so each
     MXU matmul has K = kw*Cin (384..1536 for W.A.L.T's 128..512 channels) and no unaligned
     sublane shifts happen in-kernel;
  3. height phases + row tiles: rows are split by stride phase (a stride-s tap dh reads phase dh % s,
     row offset dh // s) and cut into tiles of block_h output rows plus a (kh-1)//s halo, copied so
     tiles overlap. The halo copy costs (block_h + halo) / block_h extra input traffic.
  Result: tiles [B, Tp, n_tiles, s, block_h + halo, Wo, kw*Cin].
The forward kernel reads kt time-shifted tiles (the same array passed kt times, its BlockSpec index
shifted by dt: element offsets, since the time block is 1 frame) and accumulates kt*kh matmuls in
float32. Backward (both Pallas):
  dtiles: for input frame τ, sum over (dt, dh) of dout[τ - dt] @ W[dt, dh]ᵀ placed at row offset dh//s
          of phase dh % s (dout padded with kt-1 zero frames both sides, so no bounds checks);
  dW:     sum over (b, t, tile) of tileᵀ @ dout, the reduction axes last in the grid ("arbitrary")
          with the [kh, kw*Cin, block_cout] f32 output block resident in VMEM.
XLA's autodiff of steps 1-3 (slices and concatenations) turns dtiles into dx.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl
from jax.experimental.pallas import tpu as pltpu

_TN = (((0,), (0,)), ((), ()))          # aᵀ @ b
_NT = (((1,), (1,)), ((), ()))          # a @ bᵀ

# Scoped-VMEM budget the automatic block choice aims for (double-buffered blocks + accumulators);
# below v5e's 16 MiB default scoped limit so no flag is needed.
VMEM_BUDGET_BYTES = 12 * 2**20
# Ceiling for an automatically raised limit: half of v5e/v6e VMEM, leaving room for XLA's own use.
MAX_VMEM_LIMIT_BYTES = 64 * 2**20


def _halo(kh: int, stride: int) -> int:
  return (kh - 1) // stride


def input_grad_block_k(k_width: int) -> int:
  """Block of the kw*Cin axis for the input-gradient kernel (its weight block is [kt, kh, bk, Cout])."""
  for block in (512, 384, 256, 128):
    if k_width % block == 0:
      return block
  return k_width


def _block_bytes(block_h, block_cout, *, kt, kh, stride, out_w, k_width, cout, itemsize):
  tile = stride * (block_h + _halo(kh, stride)) * out_w * k_width * itemsize
  forward = (2 * kt * tile + 2 * kt * kh * k_width * block_cout * itemsize
             + 2 * block_h * out_w * block_cout * itemsize + block_h * out_w * block_cout * 4)
  block_k = input_grad_block_k(k_width)
  tile_k = tile // k_width * block_k
  input_grad = (2 * kt * block_h * out_w * cout * itemsize + 2 * kt * kh * block_k * cout * itemsize
                + 2 * tile_k + tile_k // itemsize * 4)
  kernel_grad = 2 * tile + 2 * block_h * out_w * block_cout * itemsize + 2 * kh * k_width * block_cout * 4
  return max(forward, input_grad, kernel_grad)


def choose_blocks(out_h, out_w, k_width, cout, *, kt, kh, stride, itemsize, block_h=None,
                  block_cout=None):
  """(block_h, block_cout, estimated VMEM bytes): the largest blocks within VMEM_BUDGET_BYTES.

  Prefers wide output-channel blocks (fewer re-reads of the input tiles), then tall row blocks.
  When nothing fits the budget, returns the smallest blocks; the caller raises the VMEM limit.
  """
  couts = [block_cout] if block_cout else [c for c in (256, 128) if cout % c == 0] or [cout]
  heights = [block_h] if block_h else [h for h in range(out_h, 0, -1) if out_h % h == 0]
  estimate = functools.partial(_block_bytes, kt=kt, kh=kh, stride=stride, out_w=out_w,
                               k_width=k_width, cout=cout, itemsize=itemsize)
  # Second pass with a larger budget: the halo copy makes tiny row blocks expensive in HBM
  # (block_h=1 triples the input again), so a raised VMEM limit beats the smallest blocks.
  for budget in (VMEM_BUDGET_BYTES, MAX_VMEM_LIMIT_BYTES // 2):
    for bc in couts:
      for bh in heights:
        if estimate(bh, bc) <= budget:
          return bh, bc, estimate(bh, bc)
  return heights[-1], couts[-1], estimate(heights[-1], couts[-1])


def _make_tiles(xp, kernel_size, stride, block_h):
  """[B, Tp, Hp, Wp, Cin] -> [B, Tp, n_tiles, s, block_h + halo, Wo, kw*Cin] (steps 2-3 above)."""
  b, tp, hp, wp, cin = xp.shape
  _, kh, kw = kernel_size
  out_h, out_w = (hp - kh) // stride + 1, (wp - kw) // stride + 1
  halo = _halo(kh, stride)
  cols = jnp.concatenate([xp[:, :, :, dw:dw + stride * (out_w - 1) + 1:stride] for dw in range(kw)],
                         axis=-1)                                     # [B, Tp, Hp, Wo, kw*Cin]
  rows_per_phase = out_h + halo
  need = rows_per_phase * stride
  cols = jnp.pad(cols, ((0, 0), (0, 0), (0, max(0, need - hp)), (0, 0), (0, 0)))[:, :, :need]
  phases = cols.reshape(b, tp, rows_per_phase, stride, out_w, kw * cin).swapaxes(2, 3)
  n_tiles = out_h // block_h
  tiles = [phases[:, :, :, i * block_h:i * block_h + block_h + halo] for i in range(n_tiles)]
  return jnp.stack(tiles, axis=2)


# ---------------------------------------------------------------------------------------------
# Kernels
# ---------------------------------------------------------------------------------------------
def _forward_kernel(*refs, kt, kh, stride, has_bias):
  x_refs, w_ref = refs[:kt], refs[kt]
  bias_ref = refs[kt + 1] if has_bias else None
  out_ref = refs[-1]
  # x_refs[dt] [s, block_h + halo, Wo, K]; w_ref [kt, kh, K, bc]; out_ref [block_h, Wo, bc]
  block_h, out_w, block_cout = out_ref.shape
  k_width = w_ref.shape[2]
  acc = jnp.zeros((block_h * out_w, block_cout), jnp.float32)
  for dt in range(kt):
    for dh in range(kh):
      rows = x_refs[dt][dh % stride, pl.ds(dh // stride, block_h)]            # [block_h, Wo, K]
      acc += jnp.dot(rows.reshape(block_h * out_w, k_width), w_ref[dt, dh],
                     preferred_element_type=jnp.float32)
  if has_bias:
    acc += bias_ref[...].astype(jnp.float32)
  out_ref[...] = acc.reshape(block_h, out_w, block_cout).astype(out_ref.dtype)


def _input_grad_kernel(*refs, kt, kh, stride):
  dout_refs, w_ref, dx_ref, acc_ref = refs[:kt], refs[kt], refs[kt + 1], refs[kt + 2]
  # dout_refs[dt] [block_h, Wo, bc] = dout[τ - dt] (bc: a block of Cout, the contraction axis);
  # w_ref [kt, kh, bk, bc]; dx_ref, acc_ref [s, block_h + halo, Wo, bk] (bk: a block of kw*Cin).
  # The last grid axis walks the Cout blocks ("arbitrary"), accumulating in acc_ref: wide convs
  # (e.g. the tokenizer's 512 -> 4096 upsampler) never need the whole [kt, kh, bk, Cout] weight in VMEM.
  block_h, out_w, block_c = dout_refs[0].shape
  k_width = w_ref.shape[2]
  c = pl.program_id(4)

  @pl.when(c == 0)
  def _init():
    acc_ref[...] = jnp.zeros(acc_ref.shape, jnp.float32)

  for dt in range(kt):
    g = dout_refs[dt][...].reshape(block_h * out_w, block_c)
    for dh in range(kh):
      contribution = lax.dot_general(g, w_ref[dt, dh], _NT, preferred_element_type=jnp.float32)
      acc_ref[dh % stride, pl.ds(dh // stride, block_h)] += contribution.reshape(
          block_h, out_w, k_width)

  @pl.when(c == pl.num_programs(4) - 1)
  def _write():
    dx_ref[...] = acc_ref[...].astype(dx_ref.dtype)


def _kernel_grad_kernel(x_ref, dout_ref, dw_ref, *, kh, stride):
  # x_ref [s, block_h + halo, Wo, K]; dout_ref [block_h, Wo, bc]; dw_ref [kh, K, bc] (f32, resident)
  block_h, out_w, block_cout = dout_ref.shape
  k_width = x_ref.shape[-1]

  @pl.when((pl.program_id(2) == 0) & (pl.program_id(3) == 0) & (pl.program_id(4) == 0))
  def _init():
    dw_ref[...] = jnp.zeros(dw_ref.shape, dw_ref.dtype)

  g = dout_ref[...].reshape(block_h * out_w, block_cout)
  for dh in range(kh):
    rows = x_ref[dh % stride, pl.ds(dh // stride, block_h)].reshape(block_h * out_w, k_width)
    dw_ref[dh] += lax.dot_general(rows, g, _TN, preferred_element_type=jnp.float32)


def _params(semantics, vmem_limit_bytes):
  return pltpu.CompilerParams(dimension_semantics=semantics, vmem_limit_bytes=vmem_limit_bytes)


def _tile_spec(shape, index_map):
  return pl.BlockSpec((None, None, None, *shape), index_map)


def _forward(tiles, weight, bias, *, kt, kh, stride, block_h, block_cout, interpret,
             vmem_limit_bytes):
  b, tp, n_tiles, s, tile_rows, out_w, k_width = tiles.shape
  cout = weight.shape[-1]
  frames = tp - kt + 1
  grid = (cout // block_cout, b, frames, n_tiles)    # Cout outermost: weights stay resident
  x_specs = [_tile_spec((s, tile_rows, out_w, k_width),
                        lambda c, n, t, i, dt=dt: (n, t + dt, i, 0, 0, 0, 0)) for dt in range(kt)]
  w_spec = pl.BlockSpec((kt, kh, k_width, block_cout), lambda c, n, t, i: (0, 0, 0, c))
  out_spec = pl.BlockSpec((None, None, block_h, out_w, block_cout),
                          lambda c, n, t, i: (n, t, i, 0, c))
  operands = [tiles] * kt + [weight]
  in_specs = x_specs + [w_spec]
  if bias is not None:
    operands.append(bias.reshape(1, cout).astype(jnp.float32))
    in_specs.append(pl.BlockSpec((1, block_cout), lambda c, n, t, i: (0, c)))
  flops = 2 * b * frames * n_tiles * block_h * out_w * kt * kh * k_width * cout
  return pl.pallas_call(
      functools.partial(_forward_kernel, kt=kt, kh=kh, stride=stride, has_bias=bias is not None),
      out_shape=jax.ShapeDtypeStruct((b, frames, n_tiles * block_h, out_w, cout), tiles.dtype),
      grid=grid, in_specs=in_specs, out_specs=out_spec,
      compiler_params=_params(("parallel",) * 4, vmem_limit_bytes),
      cost_estimate=pl.CostEstimate(flops=flops, transcendentals=0,
                                    bytes_accessed=kt * tiles.size * tiles.dtype.itemsize),
      interpret=interpret, name="causal_conv3d_fwd",
  )(*operands)


def input_grad_block_cout(kt: int, kh: int, block_k: int, cout: int, itemsize: int = 4,
                          budget: int = 12 * 2**20) -> int:
  """Block of the Cout (contraction) axis for the input-gradient kernel: the largest of Cout, 2048, …, 128
  dividing Cout whose double-buffered weight block [kt, kh, bk, bc] stays within `budget`."""
  for block in (cout, 2048, 1024, 512, 256, 128):
    if cout % block == 0 and 2 * kt * kh * block_k * block * itemsize <= budget:
      return block
  return 128 if cout % 128 == 0 else cout


def _input_grad(dout, weight, tiles_shape, *, kt, kh, stride, interpret, vmem_limit_bytes,
                block_cout=None):
  b, tp, n_tiles, s, tile_rows, out_w, k_width = tiles_shape
  block_h, cout = dout.shape[2] // n_tiles, dout.shape[-1]
  block_k = input_grad_block_k(k_width)
  block_c = block_cout or input_grad_block_cout(kt, kh, block_k, cout, weight.dtype.itemsize)
  if cout % block_c:
    raise ValueError(f"block_cout={block_c} must divide Cout={cout}")
  padded = jnp.pad(dout, ((0, 0), (kt - 1, kt - 1), (0, 0), (0, 0), (0, 0)))
  dout_specs = [pl.BlockSpec((None, None, block_h, out_w, block_c),
                             lambda k, n, tau, i, c, dt=dt: (n, tau + kt - 1 - dt, i, 0, c))
                for dt in range(kt)]
  w_spec = pl.BlockSpec((kt, kh, block_k, block_c), lambda k, n, tau, i, c: (0, 0, k, c))
  dx_spec = _tile_spec((s, tile_rows, out_w, block_k),
                       lambda k, n, tau, i, c: (n, tau, i, 0, 0, 0, k))
  return pl.pallas_call(
      functools.partial(_input_grad_kernel, kt=kt, kh=kh, stride=stride),
      out_shape=jax.ShapeDtypeStruct(tiles_shape, dout.dtype),
      grid=(k_width // block_k, b, tp, n_tiles, cout // block_c), in_specs=dout_specs + [w_spec],
      out_specs=dx_spec,
      scratch_shapes=[pltpu.VMEM((s, tile_rows, out_w, block_k), jnp.float32)],
      compiler_params=_params(("parallel",) * 4 + ("arbitrary",), vmem_limit_bytes),
      interpret=interpret, name="causal_conv3d_bwd_input",
  )(*([padded] * kt), weight)


def _kernel_grad(tiles, dout, *, kt, kh, stride, block_cout, interpret, vmem_limit_bytes):
  b, tp, n_tiles, s, tile_rows, out_w, k_width = tiles.shape
  frames, cout = tp - kt + 1, dout.shape[-1]
  block_h = dout.shape[2] // n_tiles
  x_spec = _tile_spec((s, tile_rows, out_w, k_width),
                      lambda c, dt, n, t, i: (n, t + dt, i, 0, 0, 0, 0))
  dout_spec = pl.BlockSpec((None, None, block_h, out_w, block_cout),
                           lambda c, dt, n, t, i: (n, t, i, 0, c))
  dw_spec = pl.BlockSpec((None, kh, k_width, block_cout), lambda c, dt, n, t, i: (dt, 0, 0, c))
  return pl.pallas_call(
      functools.partial(_kernel_grad_kernel, kh=kh, stride=stride),
      out_shape=jax.ShapeDtypeStruct((kt, kh, k_width, cout), jnp.float32),
      grid=(cout // block_cout, kt, b, frames, n_tiles), in_specs=[x_spec, dout_spec],
      out_specs=dw_spec,
      compiler_params=_params(("parallel", "parallel", "arbitrary", "arbitrary", "arbitrary"),
                              vmem_limit_bytes),
      interpret=interpret, name="causal_conv3d_bwd_kernel",
  )(tiles, dout)


@functools.partial(jax.custom_vjp, nondiff_argnums=(3, 4, 5, 6, 7, 8, 9))
def conv_tiles(tiles, weight, bias, kt, kh, stride, block_h, block_cout, interpret,
               vmem_limit_bytes):
  """tiles (see _make_tiles), weight [kt, kh, kw*Cin, Cout], bias [Cout] or None."""
  return _forward(tiles, weight, bias, kt=kt, kh=kh, stride=stride, block_h=block_h,
                  block_cout=block_cout, interpret=interpret, vmem_limit_bytes=vmem_limit_bytes)


def _conv_tiles_fwd(tiles, weight, bias, kt, kh, stride, block_h, block_cout, interpret,
                    vmem_limit_bytes):
  out = conv_tiles(tiles, weight, bias, kt, kh, stride, block_h, block_cout, interpret,
                   vmem_limit_bytes)
  return out, (tiles, weight, bias)


def _conv_tiles_bwd(kt, kh, stride, block_h, block_cout, interpret, vmem_limit_bytes, residuals,
                    dout):
  tiles, weight, bias = residuals
  dtiles = _input_grad(dout, weight, tiles.shape, kt=kt, kh=kh, stride=stride, interpret=interpret,
                       vmem_limit_bytes=vmem_limit_bytes)
  dweight = _kernel_grad(tiles, dout, kt=kt, kh=kh, stride=stride, block_cout=block_cout,
                         interpret=interpret, vmem_limit_bytes=vmem_limit_bytes)
  dbias = None if bias is None else jnp.sum(dout.astype(jnp.float32), axis=(0, 1, 2, 3)) \
      .astype(bias.dtype)
  return dtiles, dweight.astype(weight.dtype), dbias


conv_tiles.defvjp(_conv_tiles_fwd, _conv_tiles_bwd)


def causal_conv3d_padded(xp, kernel, bias, *, stride, block_h=None, block_cout=None,
                         interpret=False, vmem_limit_bytes=None):
  """Pallas conv of an already causally padded xp [B, Tp, Hp, Wp, Cin] -> [B, T, Ho, Wo, Cout]."""
  kt, kh, kw, cin, cout = kernel.shape
  out_h = (xp.shape[2] - kh) // stride + 1
  out_w = (xp.shape[3] - kw) // stride + 1
  block_h, block_cout, estimate = choose_blocks(
      out_h, out_w, kw * cin, cout, kt=kt, kh=kh, stride=stride, itemsize=xp.dtype.itemsize,
      block_h=block_h, block_cout=block_cout)
  if vmem_limit_bytes is None and estimate > VMEM_BUDGET_BYTES:
    # Wide layers (512 channels at 128x128) need more than v5e's 16 MiB default scoped VMEM even
    # with one output row per block; v5e/v6e have 128 MiB of VMEM, so ask for what the blocks need.
    vmem_limit_bytes = min(2 * estimate, MAX_VMEM_LIMIT_BYTES)
  if out_h % block_h or cout % block_cout:
    raise ValueError(f"block_h={block_h} must divide Ho={out_h} and block_cout={block_cout} "
                     f"must divide Cout={cout}")
  tiles = _make_tiles(xp, (kt, kh, kw), stride, block_h)
  weight = kernel.astype(xp.dtype).reshape(kt, kh, kw * cin, cout)
  return conv_tiles(tiles, weight, bias, kt, kh, stride, block_h, block_cout, interpret,
                    vmem_limit_bytes)
