"""Tokenizer training objective: reconstruction + perceptual + adversarial (MAGVIT lineage, no quantizer).

../shared/papers/walt.md §3.3: MAGVIT v1 trains with L2 reconstruction + 0.1 GAN (non-saturating, StyleGAN
3D discriminator, R1 penalty 10) + 0.1 perceptual; W.A.L.T's continuous autoencoder drops the quantizer
terms. The GAN term switches on after `gan_start_step` (a warm-up on reconstruction alone). The perceptual
term is unweighted LPIPS in a frozen in-project network's features (perceptual.py says which and why).

Generator and discriminator train in *one* step with one optimizer: the total loss is
L_G(θ_G; stop_grad θ_D) + L_D(θ_D; stop_grad G(x)), so each parameter set receives only its own
player's gradient. This fits the zoo's single-optimizer loop without a second train step.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
from flax import nnx

from zoo.walt import perceptual


@dataclasses.dataclass(frozen=True)
class TokenizerLossConfig:
  reconstruction: str = "l2"          # l2 | l1
  perceptual_weight: float = 0.0
  perceptual_network: str = "frame_classifier"  # perceptual.NETWORKS: frame_classifier | i3d
  perceptual_workdir: str = ""        # The frame classifier's workdir (checkpoint or export).
  gan_weight: float = 0.1
  gan_start_step: int = 1000
  r1_weight: float = 10.0


class Discriminator3d(nnx.Module):
  """A small 3D ResNet discriminator ([B, T, H, W, 3] -> logits [B]); space and time halve per stage."""

  def __init__(self, channels: int = 32, multipliers=(1, 2, 4), *, rngs: nnx.Rngs):
    widths = [channels * m for m in multipliers]
    conv = lambda cin, cout, k: nnx.Conv(cin, cout, kernel_size=(k, k, k), padding="SAME", rngs=rngs,
                                         kernel_init=nnx.with_partitioning(
                                             nnx.initializers.lecun_normal(),
                                             (None, None, None, "conv_in", "conv_out")))
    self.conv_in = conv(3, widths[0], 3)
    self.stages = nnx.List([conv(widths[max(i - 1, 0)], w, 3) for i, w in enumerate(widths)])
    self.skips = nnx.List([conv(widths[max(i - 1, 0)], w, 1) for i, w in enumerate(widths)])
    self.head = nnx.Linear(widths[-1], 1, rngs=rngs)

  def __call__(self, video: jax.Array) -> jax.Array:
    x = jax.nn.leaky_relu(self.conv_in(video), 0.2)
    for conv, skip in zip(self.stages, self.skips):
      h = jax.nn.leaky_relu(conv(x), 0.2) + skip(x)
      window = (1, min(2, h.shape[1]), 2, 2, 1)
      x = jax.lax.reduce_window(h, 0.0, jax.lax.add, window, window, "VALID") / float(
          window[1] * window[2] * window[3])
    return self.head(x.mean(axis=(1, 2, 3)))[:, 0]


def reconstruction_loss(kind: str, target: jax.Array, reconstruction: jax.Array) -> jax.Array:
  diff = reconstruction.astype(jnp.float32) - target.astype(jnp.float32)
  if kind == "l2":
    return jnp.mean(jnp.square(diff))
  if kind == "l1":
    return jnp.mean(jnp.abs(diff))
  raise ValueError(f"Unknown reconstruction loss {kind!r}; use l2 or l1.")


def generator_gan_loss(fake_logits: jax.Array) -> jax.Array:
  """Non-saturating: −log D(G(x))."""
  return jnp.mean(jax.nn.softplus(-fake_logits))


def discriminator_gan_loss(real_logits: jax.Array, fake_logits: jax.Array) -> jax.Array:
  return jnp.mean(jax.nn.softplus(-real_logits)) + jnp.mean(jax.nn.softplus(fake_logits))


def r1_penalty(discriminator: Callable[[jax.Array], jax.Array], real: jax.Array) -> jax.Array:
  """R1 (Mescheder et al. 2018): E ||∇_x D(x)||² on real data."""
  grads = jax.grad(lambda x: discriminator(x).sum())(real)
  return jnp.mean(jnp.sum(jnp.square(grads), axis=tuple(range(1, grads.ndim))))


def frozen(module: nnx.Module) -> nnx.Module:
  """A copy of `module` whose parameters are stop-gradient'ed (the other player's view)."""
  graphdef, state = nnx.split(module)
  return nnx.merge(graphdef, jax.lax.stop_gradient(state))


def tokenizer_loss(tokenizer, discriminator, video: jax.Array, step: jax.Array, cfg: TokenizerLossConfig,
                   perceptual_features: perceptual.FeatureFn | None = None):
  """Returns (total loss, metrics, reconstruction, latent) for videos [B, T, H, W, 3] in [-1, 1].

  `perceptual_features`: the frozen feature network of the perceptual term (perceptual.feature_network);
  required when cfg.perceptual_weight > 0.
  """
  reconstruction, latent = tokenizer(video)
  rec = reconstruction_loss(cfg.reconstruction, video, reconstruction)
  total = rec
  metrics = {"reconstruction": rec}
  if cfg.perceptual_weight > 0:
    if perceptual_features is None:
      raise ValueError("perceptual_weight > 0 needs a feature network (zoo.walt.perceptual.feature_network); "
                       "set loss.perceptual_weight=0 or pass one.")
    perceptual_term = perceptual.perceptual_loss(perceptual_features, video, reconstruction)
    total = total + cfg.perceptual_weight * perceptual_term
    metrics["perceptual"] = perceptual_term
  if cfg.gan_weight > 0 and discriminator is not None:
    gan_on = step >= cfg.gan_start_step

    def gan_terms(reconstruction):
      g_loss = generator_gan_loss(frozen(discriminator)(reconstruction))
      fake = jax.lax.stop_gradient(reconstruction)
      d_loss = discriminator_gan_loss(discriminator(video), discriminator(fake))
      r1 = r1_penalty(discriminator, video) if cfg.r1_weight > 0 else jnp.zeros(())
      return g_loss, d_loss, r1

    # lax.cond, not a 0/1 weight: before the warm-up ends the discriminator, its R1 double-backward and
    # their gradients are not computed at all (they were ~2/3 of a CPU step at tiny sizes).
    zero = jnp.zeros((), jnp.float32)
    g_loss, d_loss, r1 = jax.lax.cond(gan_on, gan_terms, lambda _: (zero, zero, zero), reconstruction)
    total = total + cfg.gan_weight * g_loss + d_loss + cfg.r1_weight * r1
    metrics.update({"gan_generator": g_loss, "gan_discriminator": d_loss, "r1": r1,
                    "gan_on": gan_on.astype(jnp.float32)})
  metrics["loss_total"] = total
  return total, metrics, reconstruction, latent
