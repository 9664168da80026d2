"""W.A.L.T objective and sampler on a tiny transformer."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from zoo.nnx_utils import jit_init
from zoo.walt import model as walt_model
from zoo.walt.transformer import TransformerConfig, WaltTransformer

TINY = TransformerConfig(latent_channels=4, latent_frames=3, latent_size=4, width=32, depth=2, num_heads=2,
                         spatiotemporal_window=(3, 2, 2), num_classes=5, attention_impl="xla")
CFG = walt_model.DiffusionConfig(p_frame_prediction=0.5)


def test_frame_condition_masks_the_first_frames():
  z0 = jnp.ones((2, 3, 2, 2, 4))
  cond = walt_model.frame_condition(z0, jnp.array([1, 2]))
  assert cond.shape == (2, 3, 2, 2, 5)
  np.testing.assert_array_equal(cond[0, :, 0, 0, -1], [1, 0, 0])
  np.testing.assert_array_equal(cond[1, :, 0, 0, -1], [1, 1, 0])
  assert float(cond[0, 1:, ..., :4].sum()) == 0.0 and float(cond[1, :2, ..., :4].min()) == 1.0


def test_training_reduces_the_loss_on_a_fixed_batch():
  model = jit_init(lambda: WaltTransformer(TINY, rngs=nnx.Rngs(0)))
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  latents = jax.random.normal(jax.random.key(1), (4, 3, 4, 4, 4))
  labels = jnp.array([0, 1, 2, 3])
  is_image = jnp.array([False, False, True, True])
  tx = optax.adam(3e-3)

  @jax.jit
  def step(params, opt_state, key):
    def loss_fn(p):
      return walt_model.walt_diffusion_loss(nnx.merge(graphdef, p, rest), latents, labels, is_image, key, CFG)
    (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss, optax.tree.norm(grads)

  opt_state = tx.init(params)
  key = jax.random.key(2)
  losses = []
  for i in range(60):
    params, opt_state, loss, grad_norm = step(params, opt_state, jax.random.fold_in(key, i % 4))
    losses.append(float(loss))
    assert np.isfinite(losses[-1]) and float(grad_norm) > 0
  assert np.mean(losses[-10:]) < 0.8 * np.mean(losses[:10]), losses


def test_sampler_shapes_conditioning_and_guidance():
  model = jit_init(lambda: WaltTransformer(TINY, rngs=nnx.Rngs(0)))
  graphdef, state = nnx.split(model)
  labels = jnp.array([1, 2])
  given = jax.random.normal(jax.random.key(3), (2, 3, 4, 4, 4))

  @jax.jit
  def sample(state, key):
    m = nnx.merge(graphdef, state)
    return (walt_model.sample_latents(m, labels, key, CFG, num_steps=4),
            walt_model.sample_latents(m, labels, key, CFG, num_steps=4, guidance_scale=3.0),
            walt_model.sample_latents(m, labels, key, CFG, num_steps=4, condition_latents=given,
                                      num_condition_frames=2))

  plain, guided, predicted = sample(state, jax.random.key(4))
  assert plain.shape == (2, 3, 4, 4, 4) and np.isfinite(np.asarray(plain)).all()
  # A fresh (zero-output) model has cond == uncond, so guidance changes nothing yet.
  np.testing.assert_allclose(guided, plain, atol=1e-5)
  np.testing.assert_array_equal(predicted[:, :2], given[:, :2])
