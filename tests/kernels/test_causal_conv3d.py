"""Causal 3D conv (MAGVIT-v2 §3.2 / W.A.L.T §4.1): Pallas (interpret) and XLA paths against the
reference, causality, shard_map on 8 fake devices, and AOT TPU compilation at paper scale."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from zoo.kernels import tpu_aot
from zoo.kernels.causal_conv3d import causal_conv3d
from zoo.kernels.causal_conv3d import causal_conv3d_reference

F32_TOL = 2e-5
BF16_TOL = 3e-2


def _inputs(x_shape, kernel_shape, dtype, with_bias=True, seed=0):
  keys = jax.random.split(jax.random.PRNGKey(seed), 3)
  x = jax.random.normal(keys[0], x_shape).astype(dtype)
  kernel = (0.2 * jax.random.normal(keys[1], kernel_shape)).astype(dtype)
  bias = jax.random.normal(keys[2], kernel_shape[-1:]) if with_bias else None
  return x, kernel, bias


def _assert_close(actual, expected, tol, what):
  actual = np.asarray(jnp.asarray(actual, jnp.float32))
  expected = np.asarray(jnp.asarray(expected, jnp.float32))
  assert actual.shape == expected.shape, f"{what}: {actual.shape} vs {expected.shape}"
  scale = max(1.0, float(np.max(np.abs(expected))))
  error = float(np.max(np.abs(actual - expected)))
  assert error <= tol * scale, f"{what}: max error {error:.3g} > {tol} * {scale:.3g}"


def _loss_and_grads(conv, x, kernel, bias):
  def loss(x, kernel, bias):
    out = conv(x, kernel, bias)
    weights = jnp.cos(jnp.arange(out.size, dtype=jnp.float32)).reshape(out.shape)
    return jnp.sum(out.astype(jnp.float32) * weights), out
  argnums = (0, 1) if bias is None else (0, 1, 2)
  (_, out), grads = jax.value_and_grad(loss, argnums=argnums, has_aux=True)(x, kernel, bias)
  return out, grads


# (dtype, tolerance, x [B, T, H, W, Cin], kernel [kt, kh, kw, Cin, Cout], spatial stride, bias?,
# Pallas block_h). bf16 on one case only: interpret mode is slow and CI has 5 minutes for all kernels.
_F32, _BF16 = (jnp.float32, F32_TOL), (jnp.bfloat16, BF16_TOL)
CASES = [
    pytest.param(*_F32, (2, 3, 8, 8, 4), (3, 3, 3, 4, 8), 1, True, None, id="3x3x3-f32"),
    pytest.param(*_F32, (1, 3, 8, 8, 4), (3, 3, 3, 4, 8), 2, True, 2, id="stride2-row-tiles-f32"),
    pytest.param(*_BF16, (1, 3, 8, 8, 4), (3, 3, 3, 4, 8), 2, True, 2, id="stride2-row-tiles-bf16"),
    pytest.param(*_F32, (1, 2, 6, 6, 3), (2, 1, 3, 3, 5), 1, False, None, id="even-kt-no-bias-f32"),
]


@pytest.mark.parametrize("dtype,tol,x_shape,kernel_shape,stride,with_bias,block_h", CASES)
@pytest.mark.parametrize("impl", ["pallas", "xla"])
def test_matches_reference_forward_and_gradients(impl, dtype, tol, x_shape, kernel_shape, stride,
                                                 with_bias, block_h):
  x, kernel, bias = _inputs(x_shape, kernel_shape, dtype, with_bias)
  ours = functools.partial(causal_conv3d, spatial_stride=stride, impl=impl, interpret=True,
                           block_h=block_h)
  truth = functools.partial(causal_conv3d_reference, spatial_stride=stride)
  out, grads = _loss_and_grads(ours, x, kernel, bias)
  out_ref, grads_ref = _loss_and_grads(truth, x, kernel, bias)
  expected_shape = (x_shape[0], x_shape[1], -(-x_shape[2] // stride), -(-x_shape[3] // stride),
                    kernel_shape[-1])
  assert out.shape == expected_shape and out.dtype == dtype
  _assert_close(out, out_ref, tol, "output")
  for name, grad, grad_ref in zip(("dx", "dkernel", "dbias"), grads, grads_ref):
    assert grad.dtype == grad_ref.dtype, name
    _assert_close(grad, grad_ref, tol, name)


@pytest.mark.parametrize("impl", ["pallas", "xla", "reference"])
def test_is_causal_in_time(impl):
  """Changing frames > t leaves outputs <= t unchanged; the first frame is encoded on its own."""
  x, kernel, bias = _inputs((1, 4, 4, 4, 2), (3, 3, 3, 2, 3), jnp.float32, seed=1)
  # jit: the two full-length calls share one compilation.
  conv = jax.jit(causal_conv3d_reference if impl == "reference" else
                 functools.partial(causal_conv3d, impl=impl, interpret=True))
  out = conv(x, kernel, bias)
  changed_future = x.at[:, 2:].add(jax.random.normal(jax.random.PRNGKey(9), x[:, 2:].shape))
  out_changed = conv(changed_future, kernel, bias)
  np.testing.assert_array_equal(out_changed[:, :2], out[:, :2])
  assert float(jnp.max(jnp.abs(out_changed[:, 2:] - out[:, 2:]))) > 0.1   # the future did change
  np.testing.assert_allclose(conv(x[:, :1], kernel, bias), out[:, :1], atol=1e-6)


def test_rejects_mismatched_shapes():
  x = jnp.zeros((1, 2, 4, 4, 3))
  with pytest.raises(ValueError, match="Cin=3"):
    causal_conv3d(x, jnp.zeros((3, 3, 3, 4, 8)), impl="xla")
  with pytest.raises(ValueError, match="bias"):
    causal_conv3d(x, jnp.zeros((3, 3, 3, 3, 8)), jnp.zeros((4,)), impl="xla")


def test_shard_map_on_eight_devices_equals_unsharded():
  assert jax.device_count() == 8, "tests/conftest.py should give 8 fake CPU devices"
  mesh = jax.make_mesh((4, 2, 1), ("data", "fsdp", "tensor"),
                       axis_types=(jax.sharding.AxisType.Auto,) * 3)
  x, kernel, bias = _inputs((8, 2, 4, 4, 2), (3, 3, 3, 2, 4), jnp.float32, seed=2)
  x = jax.device_put(x, NamedSharding(mesh, P(("data", "fsdp"))))
  sharded = functools.partial(causal_conv3d, impl="pallas", interpret=True, mesh=mesh)
  unsharded = functools.partial(causal_conv3d, impl="pallas", interpret=True)
  out, grads = jax.jit(functools.partial(_loss_and_grads, sharded))(x, kernel, bias)
  out_ref, grads_ref = _loss_and_grads(unsharded, x, kernel, bias)
  assert out.sharding.is_equivalent_to(x.sharding, out.ndim)
  _assert_close(out, out_ref, 1e-6, "output")
  for name, grad, grad_ref in zip(("dx", "dkernel", "dbias"), grads, grads_ref):
    _assert_close(grad, grad_ref, 1e-5, name)


# W.A.L.T autoencoder scale (17 frames of 128x128; channels 128 at full resolution, 512 deeper).
# The decoder's depth-to-space upsampler at the lowest level is a 512 -> 4096-channel conv on the 5×16×16
# latent grid: its input gradient must tile the 4096-wide contraction (found by compiling the paper
# tokenizer with tools/aot_compile.py).
TPU_CASES = [pytest.param(128, 128, 1, (17, 128, 128), id="128to128"),
             pytest.param(256, 512, 2, (17, 128, 128), id="256to512-s2"),
             pytest.param(512, 4096, 1, (5, 16, 16), id="512to4096-upsampler")]


def test_input_gradient_reduces_over_cout_blocks():
  """Splitting the Cout contraction of the input-gradient kernel over grid steps changes nothing."""
  from zoo.kernels.causal_conv3d import pallas_tpu
  x, kernel, _ = _inputs((1, 2, 4, 8, 4), (3, 3, 3, 4, 256), jnp.float32)
  xp = jnp.pad(x, ((0, 0), (2, 0), (1, 1), (1, 1), (0, 0)))
  tiles = pallas_tpu._make_tiles(xp, (3, 3, 3), 1, 4)
  dout = jax.random.normal(jax.random.key(5), (1, 2, 4, 8, 256))
  weight = kernel.reshape(3, 3, 3 * 4, 256)
  whole = pallas_tpu._input_grad(dout, weight, tiles.shape, kt=3, kh=3, stride=1, interpret=True,
                                 vmem_limit_bytes=None, block_cout=256)
  split = pallas_tpu._input_grad(dout, weight, tiles.shape, kt=3, kh=3, stride=1, interpret=True,
                                 vmem_limit_bytes=None, block_cout=128)
  _assert_close(split, whole, 1e-5, "dx tiles")
  assert pallas_tpu.input_grad_block_cout(3, 3, 512, 4096) == 256
  assert pallas_tpu.input_grad_block_cout(3, 3, 512, 256) == 256


@pytest.mark.parametrize("cin,cout,stride,grid", TPU_CASES)
def test_compiles_for_tpu_in_shard_map_forward_and_backward(cin, cout, stride, grid):
  pytest.importorskip("libtpu")
  mesh = tpu_aot.topology_mesh("v5e:2x2", (4, 1, 1), ("data", "fsdp", "tensor"))
  x = jax.ShapeDtypeStruct((4, *grid, cin), jnp.bfloat16)
  kernel = jax.ShapeDtypeStruct((3, 3, 3, cin, cout), jnp.bfloat16)
  bias = jax.ShapeDtypeStruct((cout,), jnp.float32)
  batch_sharding = NamedSharding(mesh, P(("data", "fsdp")))
  replicated = NamedSharding(mesh, P())

  def forward(x, kernel, bias):
    return causal_conv3d(x, kernel, bias, spatial_stride=stride, impl="pallas", mesh=mesh)

  def gradients(x, kernel, bias):
    loss = lambda *a: jnp.sum(forward(*a).astype(jnp.float32) ** 2)
    return jax.grad(loss, argnums=(0, 1, 2))(x, kernel, bias)

  shardings = (batch_sharding, replicated, replicated)
  fwd = tpu_aot.compile_for_tpu(forward, (x, kernel, bias), shardings, batch_sharding)
  bwd = tpu_aot.compile_for_tpu(gradients, (x, kernel, bias), shardings, shardings)
  vmem = {**tpu_aot.pallas_scoped_vmem_bytes(fwd), **tpu_aot.pallas_scoped_vmem_bytes(bwd)}
  assert sorted({name.split(".")[0] for name in vmem}) == [
      "causal_conv3d_bwd_input", "causal_conv3d_bwd_kernel", "causal_conv3d_fwd"]
  for kernel_name, used in vmem.items():
    assert 0 < used <= 16 * 2**20, f"{kernel_name} uses {used} bytes of VMEM"


@pytest.mark.parametrize("platform, expected, absent", [("cuda", "convolution", "dot_general"),
                                                        ("cpu", "dot_general", "convolution")])
def test_xla_path_picks_its_formulation_per_lowering_platform(platform, expected, absent):
  """impl='xla' (what 'auto' runs off TPU) lowers, forward and gradient, to cuDNN's convolution for
  a GPU (the chunked GEMM measured 0.07-0.13x of it on an H200) and to the chunked GEMM for CPU."""
  x = jax.ShapeDtypeStruct((1, 5, 16, 16, 8), jnp.bfloat16)
  kernel = jax.ShapeDtypeStruct((3, 3, 3, 8, 16), jnp.bfloat16)

  def loss(x, kernel):
    return jnp.sum(causal_conv3d(x, kernel, spatial_stride=2, impl="xla").astype(jnp.float32))

  text = jax.jit(jax.grad(loss, argnums=(0, 1))).trace(x, kernel) \
      .lower(lowering_platforms=(platform,)).as_text()
  assert expected in text and absent not in text


def test_gpu_formulation_matches_the_chunked_one_and_the_reference():
  """The GPU branch (a plain convolution) is checked here on CPU, forward and gradients, with a stride."""
  from zoo.kernels.causal_conv3d import xla as conv_xla
  from zoo.kernels.causal_conv3d.reference import causal_padding
  x, kernel, _ = _inputs((2, 4, 9, 7, 3), (3, 3, 3, 3, 5), jnp.float32, with_bias=False)
  padding = causal_padding(kernel.shape[:3])
  weights = jnp.cos(jnp.arange(2 * 4 * 5 * 4 * 5, dtype=jnp.float32)).reshape(2, 4, 5, 4, 5)

  def run(conv):
    return jax.value_and_grad(lambda x, k: jnp.sum(conv(x, k) * weights), argnums=(0, 1))(x, kernel)

  (gpu_loss, gpu_grads) = run(lambda x, k: conv_xla._cudnn_conv(x, k, 2, padding))
  (cpu_loss, cpu_grads) = run(lambda x, k: conv_xla._chunked_conv(x, k, 2, padding))
  (ref_loss, ref_grads) = run(lambda x, k: causal_conv3d_reference(x, k, None, spatial_stride=2))
  for loss, grads in ((gpu_loss, gpu_grads), (cpu_loss, cpu_grads)):
    _assert_close(loss, ref_loss, F32_TOL, "loss")
    for got, want, name in zip(grads, ref_grads, ("dx", "dkernel")):
      _assert_close(got, want, F32_TOL, name)


def test_chunk_size_keeps_the_columns_within_the_l2_budget():
  """The XLA path's GEMM chunk: 768 KiB of width-concatenated columns, clamped to [512, 4096] pixels
  (measured best on the 2-core box at Cin 64 and 128, zoo/kernels/causal_conv3d/xla.py)."""
  from zoo.kernels.causal_conv3d import xla as conv_xla
  assert conv_xla.chunk_pixels(3, 64, 4) == 1024
  assert conv_xla.chunk_pixels(3, 128, 4) == 512
  assert conv_xla.chunk_pixels(3, 128, 2) == 1024           # bf16 columns are half the bytes
  assert conv_xla.chunk_pixels(3, 512, 4) == 512            # never below the minimum
  assert conv_xla.chunk_pixels(3, 3, 4) == 4096             # RGB input: long GEMMs, bounded


@pytest.mark.parametrize("name", ["2-D conv per tap", "2-D conv, taps on C", "frame ring"])
@pytest.mark.parametrize("x_shape,kernel_shape", [((2, 7, 8, 6, 3), (3, 3, 3, 3, 5)),
                                                  ((1, 4, 6, 6, 2), (2, 1, 3, 2, 4))])
def test_rejected_formulations_compute_the_same_conv(name, x_shape, kernel_shape):
  """causal_conv3d/alternatives.py (kept so the README's "tried" timings can be rerun) equals the
  reference: 7 frames make the frame ring run two full groups of 3 plus a remainder of 1, and a 2-frame
  (even-kt) kernel too; the ring's chunk target forces several row blocks."""
  from zoo.kernels.causal_conv3d import alternatives
  x, kernel, _ = _inputs(x_shape, kernel_shape, jnp.float32, with_bias=False)
  fn = alternatives.ALTERNATIVES[name]
  if name == "frame ring":
    fn = functools.partial(fn, target_pixels=x_shape[0] * 2 * x_shape[3])   # 2 output rows per block
  _assert_close(jax.jit(fn)(x, kernel), causal_conv3d_reference(x, kernel, None), F32_TOL, name)
