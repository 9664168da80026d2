"""One-optimizer GAN: each player gets only its own gradient; losses match closed forms."""
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from zoo.walt import tokenizer_losses as tl


class _Generator(nnx.Module):
  def __init__(self, rngs):
    self.conv = nnx.Conv(3, 3, kernel_size=(1, 1, 1), rngs=rngs)

  def __call__(self, video):
    return self.conv(video), video[:, :, ::4, ::4]


class _Pair(nnx.Module):
  def __init__(self, rngs):
    self.generator = _Generator(rngs)
    self.discriminator = tl.Discriminator3d(channels=4, multipliers=(1, 2), rngs=rngs)


def _grads(fn, pair):
  graphdef, params = nnx.split(pair, nnx.Param)
  return jax.jit(jax.grad(lambda p: fn(nnx.merge(graphdef, p))))(params)


def test_gan_losses_closed_form():
  assert float(tl.generator_gan_loss(jnp.zeros(4))) == np.float32(np.log(2.0))
  assert np.isclose(float(tl.discriminator_gan_loss(jnp.zeros(4), jnp.zeros(4))), 2 * np.log(2.0))
  # R1 of a linear discriminator D(x) = <w, x> is ||w||².
  w = jnp.arange(6.0).reshape(1, 6)
  assert np.isclose(float(tl.r1_penalty(lambda x: (x * w).sum(-1), jnp.ones((3, 6)))), float((w**2).sum()))


def test_each_player_gets_only_its_own_gradient():
  pair = _Pair(nnx.Rngs(0))
  video = jax.random.uniform(jax.random.key(1), (2, 5, 8, 8, 3), minval=-1, maxval=1)
  cfg = tl.TokenizerLossConfig(gan_weight=0.1, gan_start_step=0, r1_weight=10.0)
  step = jnp.array(5)

  total = _grads(lambda m: tl.tokenizer_loss(m.generator, m.discriminator, video, step, cfg)[0], pair)

  def generator_only(m):
    reconstruction, _ = m.generator(video)
    return (tl.reconstruction_loss("l2", video, reconstruction)
            + 0.1 * tl.generator_gan_loss(tl.frozen(m.discriminator)(reconstruction)))

  def discriminator_only(m):
    fake = jax.lax.stop_gradient(m.generator(video)[0])
    return (tl.discriminator_gan_loss(m.discriminator(video), m.discriminator(fake))
            + 10.0 * tl.r1_penalty(m.discriminator, video))

  g, d = _grads(generator_only, pair), _grads(discriminator_only, pair)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
               total["generator"], g["generator"])
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
               total["discriminator"], d["discriminator"])
  assert all(float(jnp.abs(x).max()) == 0 for x in jax.tree.leaves(d["generator"]))


def test_gan_is_off_before_its_start_step():
  pair = _Pair(nnx.Rngs(0))
  video = jnp.zeros((1, 5, 8, 8, 3))
  cfg = tl.TokenizerLossConfig(gan_weight=0.1, gan_start_step=100)
  loss, metrics, _, _ = tl.tokenizer_loss(pair.generator, pair.discriminator, video, jnp.array(10), cfg)
  assert float(metrics["gan_on"]) == 0.0
  assert np.isclose(float(loss), float(metrics["reconstruction"]))
