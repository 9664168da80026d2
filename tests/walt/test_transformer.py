"""W.A.L.T transformer: shapes per task, identity mask keeps images independent, AdaLN variants, counts."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from zoo.nnx_utils import jit_init
from zoo.walt.transformer import TransformerConfig, WaltTransformer

TINY = TransformerConfig(latent_channels=4, latent_frames=3, latent_size=4, width=32, depth=2, num_heads=2,
                         spatiotemporal_window=(3, 2, 2), num_classes=5, attention_impl="xla")


def _random_like_trained(model, seed=0):
  """Zero-initialised gates make a fresh model the identity; give every parameter random values so the
  tests below exercise real attention."""
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  leaves, treedef = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.key(seed), len(leaves))
  leaves = [0.3 * jax.random.normal(k, x.shape, x.dtype) for k, x in zip(keys, leaves)]
  return nnx.merge(graphdef, jax.tree.unflatten(treedef, leaves), rest)


@pytest.fixture(scope="module")
def forward():
  model = _random_like_trained(jit_init(lambda: WaltTransformer(TINY, rngs=nnx.Rngs(0))))
  graphdef, state = nnx.split(model)

  @jax.jit
  def run(z, t, y, sc, fp, is_image):
    return nnx.merge(graphdef, state)(z, t, y, self_condition=sc, frame_condition=fp, is_image=is_image)
  return run


def _inputs(batch=2, seed=1):
  key = jax.random.key(seed)
  z = jax.random.normal(key, (batch, 3, 4, 4, 4))
  return (z, jnp.array([10, 500][:batch]), jnp.array([1, 5][:batch]), jnp.zeros_like(z),
          jnp.zeros(z.shape[:-1] + (5,)), jnp.array([False, True][:batch]))


def test_output_shape_and_dtype(forward):
  out = forward(*_inputs())
  assert out.shape == (2, 3, 4, 4, 4) and out.dtype == jnp.float32
  assert np.isfinite(np.asarray(out)).all()


def test_identity_mask_keeps_image_stack_frames_independent(forward):
  z, t, y, sc, fp, is_image = _inputs()
  base = forward(z, t, y, sc, fp, is_image)
  changed = forward(z.at[:, 2].add(1.0), t, y, sc, fp, is_image)
  # Example 1 is an image stack: its frames 0 and 1 must not see the change to frame 2.
  np.testing.assert_allclose(changed[1, :2], base[1, :2], atol=1e-5)
  # Example 0 is a video: information flows across frames in the spatiotemporal layer.
  assert float(jnp.abs(changed[0, :2] - base[0, :2]).max()) > 1e-4


def test_conditions_change_the_output(forward):
  z, t, y, sc, fp, is_image = _inputs()
  base = forward(z, t, y, sc, fp, is_image)
  for changed in (forward(z, t, y + 1 - 2 * (y > 3), sc, fp, is_image),
                  forward(z, t + 100, y, sc, fp, is_image),
                  forward(z, t, y, sc + 1.0, fp, is_image),
                  forward(z, t, y, sc, fp.at[..., -1].set(1.0), is_image)):
    assert float(jnp.abs(changed - base).max()) > 1e-4


def test_class_and_timestep_terms_of_the_condition_start_at_comparable_scales():
  """The AdaLN condition is class_embedding + timestep_embedding (§4.3). If one term starts much larger,
  the network learns to ignore the other: from DiT's N(0, 0.02) class table the class term started ~50x
  smaller than the Xavier timestep MLP's, and a 1500-step demo run generated class-independent videos."""
  cfg = TransformerConfig(**{**TINY.__dict__, "width": 128})
  model = jit_init(lambda: WaltTransformer(cfg, rngs=nnx.Rngs(0)))
  time_term = model.timestep_term(jnp.array([0, 250, 500, 999]))
  class_term = model.class_embed(jnp.arange(cfg.num_classes + 1))
  ratio = float(jnp.linalg.norm(time_term, axis=-1).mean() / jnp.linalg.norm(class_term, axis=-1).mean())
  assert 0.2 < ratio < 5.0, ratio


def test_fresh_model_is_zero_initialised_residual():
  """adaLN-Zero: gates and the final projection start at zero, so the output starts at exactly zero."""
  model = jit_init(lambda: WaltTransformer(TINY, rngs=nnx.Rngs(0)))
  graphdef, state = nnx.split(model)
  z, t, y, sc, fp, is_image = _inputs()
  out = jax.jit(lambda s: nnx.merge(graphdef, s)(z, t, y, self_condition=sc, frame_condition=fp,
                                                  is_image=is_image))(state)
  assert float(jnp.abs(out).max()) == 0.0


@pytest.mark.parametrize("adaln", ["lora", "separate"])
def test_parameter_counts_follow_the_adaln_choice(adaln):
  cfg = TransformerConfig(latent_channels=4, latent_frames=3, latent_size=4, width=32, depth=4, num_heads=2,
                          spatiotemporal_window=(3, 2, 2), adaln=adaln, adaln_lora_rank=2, num_classes=5)
  model = nnx.eval_shape(lambda: WaltTransformer(cfg, rngs=nnx.Rngs(0)))
  modulation = sum(math.prod(x.shape) for x in jax.tree.leaves(nnx.state(model.modulation, nnx.Param)))
  d = 32
  expected = (4 * (d * 6 * d + 6 * d) if adaln == "separate"
              else (d * d + d) + (d * 6 * d + 6 * d) + 4 * (d * 2 + 2 * 6 * d))
  assert modulation == expected


def test_paper_configs_parameter_counts():
  """Table 8 sizes; the paper reports 460M (XL, LoRA-2), 313M (L, LoRA-2) and 460M (L, separate AdaLN)."""
  counts = {}
  for name, cfg in {
      "ucf101_xl": TransformerConfig(width=1152, depth=28, num_heads=16, adaln="lora", num_classes=101),
      "k600_l": TransformerConfig(width=1024, depth=24, num_heads=16, adaln="lora", num_classes=0,
                                  self_condition=True, frame_prediction=True),
      "imagenet_l": TransformerConfig(width=1024, depth=24, num_heads=16, adaln="separate", num_classes=1000,
                                      latent_frames=1, latent_size=32, spatiotemporal_window=(1, 8, 8)),
  }.items():
    model = nnx.eval_shape(lambda: WaltTransformer(cfg, rngs=nnx.Rngs(0)))
    counts[name] = sum(math.prod(x.shape) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
  assert 440e6 < counts["ucf101_xl"] < 480e6, counts
  assert 295e6 < counts["k600_l"] < 330e6, counts
  assert 440e6 < counts["imagenet_l"] < 480e6, counts


def test_wrong_latent_shape_is_clear(forward):
  model = nnx.eval_shape(lambda: WaltTransformer(TINY, rngs=nnx.Rngs(0)))
  with pytest.raises(ValueError, match="does not match the model"):
    model(jnp.zeros((1, 2, 4, 4, 4)), jnp.zeros((1,), jnp.int32), jnp.zeros((1,), jnp.int32))


def _dot_operand_dtypes(fn, *args):
  """Counter of (lhs dtype, rhs dtype) over every dot_general in fn's jaxpr, nested jaxprs included."""
  import collections
  counts = collections.Counter()

  def walk(jaxpr):
    for eqn in jaxpr.eqns:
      if eqn.primitive.name == "dot_general":
        counts[tuple(str(v.aval.dtype) for v in eqn.invars)] += 1
      for param in eqn.params.values():
        inner = getattr(param, "jaxpr", None)
        if inner is not None:
          walk(getattr(inner, "jaxpr", inner))
  walk(jax.make_jaxpr(fn)(*args).jaxpr)
  return counts


@pytest.mark.parametrize("adaln, float32_dots", [("lora", 7), ("separate", 5)])
def test_bfloat16_model_runs_its_token_path_in_bfloat16(adaln, float32_dots):
  """dtype='bfloat16' (the paper configs, for TPU): every matmul on the tokens (patch embedding, per layer
  QKV, QKᵀ, PV, output, 2 MLP; final projection) takes bf16 operands; only the per-example conditioning
  MLPs (timestep 2, final modulation 1; AdaLN-LoRA 2 + its low-rank einsum 2, or one per layer) stay f32.
  The output stays float32 and close to the float32 model with the same parameters."""
  import dataclasses
  outputs = {}
  for dtype in ("float32", "bfloat16"):
    cfg = dataclasses.replace(TINY, dtype=dtype, adaln=adaln)
    model = _random_like_trained(jit_init(lambda: WaltTransformer(cfg, rngs=nnx.Rngs(0))))
    z, t, y = _inputs()[:3]
    fn = lambda z: model(z, t, y)
    counts = _dot_operand_dtypes(fn, z)
    if dtype == "bfloat16":
      assert counts[("bfloat16", "bfloat16")] == 6 * cfg.depth + 2, counts
      assert counts[("float32", "float32")] == float32_dots, counts
      assert sum(counts.values()) == 6 * cfg.depth + 2 + float32_dots, counts
    outputs[dtype] = fn(z)
  assert outputs["bfloat16"].dtype == jnp.float32
  scale = float(jnp.max(jnp.abs(outputs["float32"])))
  error = float(jnp.max(jnp.abs(outputs["bfloat16"] - outputs["float32"])))
  assert 0 < error <= 0.05 * scale, (error, scale)
