"""Window attention (W.A.L.T §4.2): Pallas (interpret) and XLA paths against the jnp reference,
the image identity mask, grid validation, shard_map on 8 fake devices, and AOT TPU compilation."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from zoo.kernels import tpu_aot
from zoo.kernels.window_attention import reference
from zoo.kernels.window_attention import window_attention
from zoo.kernels.window_attention import window_attention_reference

F32_TOL = 2e-5
BF16_TOL = 3e-2


def _inputs(shape, window, dtype, seed=0):
  keys = jax.random.split(jax.random.PRNGKey(seed), 4)
  q, k, v = (jax.random.normal(key, shape, jnp.float32).astype(dtype) for key in keys[:3])
  table = 0.5 * jax.random.normal(keys[3], (shape[4], reference.num_relative_offsets(window)))
  return q, k, v, table


def _assert_close(actual, expected, tol, what):
  """Max error relative to the expected tensor's scale (bf16 upcast to f32 first)."""
  actual = np.asarray(jnp.asarray(actual, jnp.float32))
  expected = np.asarray(jnp.asarray(expected, jnp.float32))
  assert actual.shape == expected.shape, what
  scale = max(1.0, float(np.max(np.abs(expected))))
  error = float(np.max(np.abs(actual - expected)))
  assert error <= tol * scale, f"{what}: max error {error:.3g} > {tol} * {scale:.3g}"


def _loss_and_grads(attention, q, k, v, table):
  """A loss with a non-uniform cotangent, so every gradient entry is exercised."""
  def loss(q, k, v, table):
    out = attention(q, k, v, table)
    weights = jnp.cos(jnp.arange(out.size, dtype=jnp.float32)).reshape(out.shape)
    return jnp.sum(out.astype(jnp.float32) * weights), out
  (_, out), grads = jax.value_and_grad(loss, argnums=(0, 1, 2, 3), has_aux=True)(q, k, v, table)
  return out, grads


# (dtype, tolerance, token grid [B, T, H, W, N, D], window, is_image, block_q, block_kv).
# bf16 runs on the richest case only: interpret mode is slow and CI has 5 minutes for all kernels.
_F32, _BF16 = (jnp.float32, F32_TOL), (jnp.bfloat16, BF16_TOL)
CASES = [
    pytest.param(*_F32, (2, 2, 4, 4, 2, 8), (2, 2, 4), (True, False), None, None,
                 id="st-image-mask-f32"),
    pytest.param(*_BF16, (2, 2, 4, 4, 2, 8), (2, 2, 4), (True, False), None, None,
                 id="st-image-mask-bf16"),
    pytest.param(*_F32, (1, 1, 8, 8, 1, 16), (1, 8, 8), None, None, None, id="spatial-f32"),
    # 256-token window split into 4 query blocks x 2 key blocks: exercises the online softmax.
    pytest.param(*_F32, (1, 1, 16, 16, 1, 8), (1, 16, 16), None, 64, 128,
                 id="online-softmax-blocks-f32"),
]


@pytest.mark.parametrize("dtype,tol,shape,window,is_image,block_q,block_kv", CASES)
@pytest.mark.parametrize("impl", ["pallas", "xla"])
def test_matches_reference_forward_and_gradients(impl, dtype, tol, shape, window, is_image,
                                                 block_q, block_kv):
  q, k, v, table = _inputs(shape, window, dtype)
  flags = None if is_image is None else jnp.array(is_image)
  ours = functools.partial(window_attention, window=window, is_image=flags, impl=impl,
                           interpret=True, block_q=block_q, block_kv=block_kv)
  truth = functools.partial(window_attention_reference, window=window, is_image=flags)
  out, grads = _loss_and_grads(ours, q, k, v, table)
  out_ref, grads_ref = _loss_and_grads(truth, q, k, v, table)
  assert out.dtype == dtype
  _assert_close(out, out_ref, tol, "output")
  for name, grad, grad_ref in zip(("dq", "dk", "dv", "dbias_table"), grads, grads_ref):
    assert grad.dtype == grad_ref.dtype, name
    _assert_close(grad, grad_ref, tol, name)


@pytest.mark.parametrize("impl", ["pallas", "xla"])
def test_image_examples_return_their_own_values(impl):
  """W.A.L.T §4.2: an image stack in a spatiotemporal layer gets the identity attention mask."""
  shape, window = (2, 2, 4, 4, 1, 8), (2, 4, 4)
  q, k, v, table = _inputs(shape, window, jnp.float32, seed=1)
  flags = jnp.array([True, False])
  attention = functools.partial(window_attention, window=window, is_image=flags, impl=impl,
                                interpret=True)
  out, (dq, dk, dv, dtable) = _loss_and_grads(attention, q, k, v, table)
  np.testing.assert_array_equal(out[0], v[0])                   # image: exactly its own values
  assert float(jnp.max(jnp.abs(out[1] - v[1]))) > 0.1            # video: real attention
  weights = jnp.cos(jnp.arange(out.size, dtype=jnp.float32)).reshape(out.shape)
  np.testing.assert_allclose(dv[0], weights[0], atol=1e-6)       # d out / d v = identity
  assert float(jnp.max(jnp.abs(dq[0]))) == 0.0 and float(jnp.max(jnp.abs(dk[0]))) == 0.0
  assert float(jnp.max(jnp.abs(dq[1]))) > 0.0
  # The bias gradient comes from the video example only, matching the masked reference.
  _, (_, _, _, dtable_ref) = _loss_and_grads(
      functools.partial(window_attention_reference, window=window, is_image=flags), q, k, v, table)
  _assert_close(dtable, dtable_ref, F32_TOL, "dbias_table with an image example")


@pytest.mark.parametrize("window,axis", [((1, 3, 4), "H=4"), ((2, 4, 4), "T=3"), ((1, 4, 5), "W=8")])
def test_window_that_does_not_divide_the_grid_is_a_clear_error(window, axis):
  q = jnp.zeros((1, 3, 4, 8, 1, 8))
  table = jnp.zeros((1, reference.num_relative_offsets(window)))
  with pytest.raises(ValueError, match=f"does not divide the token grid.*{axis}"):
    window_attention(q, q, q, table, window=window, impl="xla")


def test_bias_table_and_gathered_bias_agree():
  shape, window = (1, 2, 4, 4, 2, 8), (2, 2, 2)
  q, k, v, table = _inputs(shape, window, jnp.float32, seed=2)
  gathered = reference.gather_relative_bias(table, window)
  assert gathered.shape == (2, 8, 8)
  # Relative bias: the entry depends only on the (query - key) offset, so the diagonal is constant.
  np.testing.assert_array_equal(jnp.diagonal(gathered, axis1=1, axis2=2),
                                jnp.broadcast_to(gathered[:, :1, 0], (2, 8)))
  np.testing.assert_allclose(window_attention(q, k, v, gathered, window=window, impl="xla"),
                             window_attention(q, k, v, table, window=window, impl="xla"), atol=1e-6)


def test_shard_map_on_eight_devices_equals_unsharded():
  assert jax.device_count() == 8, "tests/conftest.py should give 8 fake CPU devices"
  mesh = jax.make_mesh((2, 2, 2), ("data", "fsdp", "tensor"),
                       axis_types=(jax.sharding.AxisType.Auto,) * 3)
  shape, window = (4, 2, 4, 4, 2, 8), (2, 2, 4)
  q, k, v, table = _inputs(shape, window, jnp.float32, seed=3)
  flags = jnp.array([True, False, False, True])
  token_sharding = NamedSharding(mesh, P(("data", "fsdp"), None, None, None, "tensor", None))
  q, k, v = (jax.device_put(x, token_sharding) for x in (q, k, v))
  sharded = functools.partial(window_attention, window=window, is_image=flags, impl="pallas",
                              interpret=True, mesh=mesh)
  unsharded = functools.partial(window_attention, window=window, is_image=flags, impl="pallas",
                                interpret=True)
  out, grads = jax.jit(functools.partial(_loss_and_grads, sharded))(q, k, v, table)
  out_ref, grads_ref = _loss_and_grads(unsharded, q, k, v, table)
  assert out.sharding.spec == token_sharding.spec
  _assert_close(out, out_ref, 1e-6, "output")
  for name, grad, grad_ref in zip(("dq", "dk", "dv", "dbias_table"), grads, grads_ref):
    _assert_close(grad, grad_ref, 1e-5, name)


# Paper scale (W.A.L.T §5, Table 8): latent 5x16x16, 16 heads; spatial and spatiotemporal windows.
TPU_CASES = [((1, 16, 16), 72), ((5, 8, 8), 72), ((1, 16, 16), 64), ((5, 8, 8), 64)]


@pytest.mark.parametrize("window,head_dim", TPU_CASES)
def test_compiles_for_tpu_in_shard_map_forward_and_backward(window, head_dim):
  pytest.importorskip("libtpu")
  mesh = tpu_aot.topology_mesh("v5e:2x2", (2, 1, 2), ("data", "fsdp", "tensor"))
  batch, heads = 8, 16
  tokens = jax.ShapeDtypeStruct((batch, 5, 16, 16, heads, head_dim), jnp.bfloat16)
  table = jax.ShapeDtypeStruct((heads, reference.num_relative_offsets(window)), jnp.float32)
  flags = jax.ShapeDtypeStruct((batch,), jnp.bool_)
  token_sharding = NamedSharding(mesh, P(("data", "fsdp"), None, None, None, "tensor", None))
  table_sharding = NamedSharding(mesh, P("tensor", None))
  in_shardings = (token_sharding,) * 3 + (table_sharding, NamedSharding(mesh, P(("data", "fsdp"))))

  def forward(q, k, v, table, flags):
    return window_attention(q, k, v, table, window=window, is_image=flags, impl="pallas", mesh=mesh)

  def gradients(q, k, v, table, flags):
    loss = lambda *a: jnp.sum(forward(*a, flags).astype(jnp.float32) ** 2)
    return jax.grad(loss, argnums=(0, 1, 2, 3))(q, k, v, table)

  fwd = tpu_aot.compile_for_tpu(forward, (tokens,) * 3 + (table, flags), in_shardings,
                                token_sharding)
  bwd = tpu_aot.compile_for_tpu(gradients, (tokens,) * 3 + (table, flags), in_shardings,
                                (token_sharding,) * 3 + (table_sharding,))
  fwd_vmem = tpu_aot.pallas_scoped_vmem_bytes(fwd)
  bwd_vmem = tpu_aot.pallas_scoped_vmem_bytes(bwd)
  assert [name.split(".")[0] for name in fwd_vmem] == ["window_attention_fwd"]
  assert sorted(name.split(".")[0] for name in bwd_vmem) == [
      "window_attention_bwd_dk_dv", "window_attention_bwd_dq_dbias", "window_attention_fwd"]
  for kernel, used in {**fwd_vmem, **bwd_vmem}.items():
    assert 0 < used <= 16 * 2**20, f"{kernel} uses {used} bytes of VMEM (v5e scoped default 16 MiB)"


def test_xla_path_lowers_for_cuda():
  """On a GPU impl='auto' runs this XLA path for float32 (and cuDNN for 16-bit inputs, which jax
  cannot trace without a GPU: test_cudnn_path_matches_reference_on_gpu); it must lower for CUDA."""
  tokens = jax.ShapeDtypeStruct((2, 5, 16, 16, 4, 64), jnp.bfloat16)
  table = jax.ShapeDtypeStruct((4, reference.num_relative_offsets((5, 8, 8))), jnp.float32)

  def loss(q, k, v, table):
    return jnp.sum(window_attention(q, k, v, table, window=(5, 8, 8), impl="xla")
                   .astype(jnp.float32))

  lowered = jax.jit(jax.grad(loss, argnums=(0, 1, 2, 3))).trace(tokens, tokens, tokens, table) \
      .lower(lowering_platforms=("cuda",))
  assert "dot_general" in lowered.as_text()


def test_dispatch_picks_cudnn_on_gpu_only_for_inputs_it_takes(monkeypatch):
  """'auto' on a GPU backend: cuDNN for bf16/f16 with head_dim % 8 == 0 up to 128, XLA otherwise;
  'cudnn' refuses unsupported inputs and non-GPU backends with errors that name the fix."""
  from zoo.kernels.window_attention import resolve_impl
  if jax.default_backend() == "cpu":
    assert resolve_impl("auto", jnp.bfloat16, 72) == "xla"
    with pytest.raises(ValueError, match="needs a GPU backend"):
      resolve_impl("cudnn", jnp.bfloat16, 64)
  monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
  assert resolve_impl("auto", jnp.bfloat16, 72) == "cudnn"           # W.A.L.T-XL heads
  assert resolve_impl("auto", jnp.float16, 128) == "cudnn"
  assert resolve_impl("auto", jnp.float32, 64) == "xla"
  assert resolve_impl("auto", jnp.bfloat16, 12) == "xla"
  assert resolve_impl("auto", jnp.bfloat16, 256) == "xla"
  assert resolve_impl("auto") == "auto"                              # decided per call, by dtype
  with pytest.raises(ValueError, match="multiple of 8.*use impl='auto'"):
    resolve_impl("cudnn", jnp.bfloat16, 12)
  with pytest.raises(ValueError, match="impl must be one of"):
    resolve_impl("triton")


@pytest.mark.skipif(jax.default_backend() != "gpu", reason="cuDNN attention needs a GPU")
@pytest.mark.parametrize("shape,window,is_image", [
    ((2, 2, 4, 4, 2, 8), (2, 2, 4), (True, False)),
    ((2, 5, 16, 16, 2, 72), (5, 8, 8), (False, True)),
    ((1, 2, 16, 16, 2, 64), (1, 16, 16), None)])
def test_cudnn_path_matches_reference_on_gpu(shape, window, is_image):
  """impl='cudnn' (what 'auto' runs for bf16 on a GPU): output and all four gradients, the bias
  table's through cuDNN's dbias, against the float32 reference, with the identity mask."""
  q, k, v, table = _inputs(shape, window, jnp.bfloat16)
  flags = None if is_image is None else jnp.array(is_image)
  ours = functools.partial(window_attention, window=window, is_image=flags, impl="cudnn")
  truth = functools.partial(window_attention_reference, window=window, is_image=flags)
  out, grads = jax.jit(lambda *a: _loss_and_grads(ours, *a))(q, k, v, table)
  out_ref, grads_ref = _loss_and_grads(truth, q, k, v, table)
  assert out.dtype == jnp.bfloat16
  _assert_close(out, out_ref, BF16_TOL, "output")
  for name, grad, grad_ref in zip(("dq", "dk", "dv", "dbias_table"), grads, grads_ref):
    assert grad.dtype == grad_ref.dtype, name
    _assert_close(grad, grad_ref, BF16_TOL, name)
