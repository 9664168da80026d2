"""W.A.L.T task glue: the diffusion training objective and the samplers around `WaltTransformer`.

Training (§3, §4.3, §4.4): v-prediction on normalised latents with
* classifier-free guidance dropout: the class becomes the null class with probability `p_uncond`;
* self-conditioning (Chen et al., Analog Bits): with probability `p_self_condition` a first pass's x̂0
  (stop-gradient) is fed to the second pass; otherwise zeros;
* frame prediction: with probability `p_frame_prediction` a *video* example is conditioned on its first
  1 (image-to-video) or 2 (video prediction) latent frames through concat(m ∘ z0, m).
Sampling: DDIM (zoo/diffusion) feeding back the previous x̂0 as self-condition, optional CFG, optional
frame conditioning; long videos continue autoregressively from the last latent frames (tasks/tools).
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from zoo import diffusion
from zoo.walt.transformer import WaltTransformer


@dataclasses.dataclass(frozen=True)
class DiffusionConfig:
  num_steps: int = 1000
  beta_start: float = 1e-4
  beta_end: float = 0.02
  zero_terminal_snr: bool = True
  prediction: str = "v"
  p_uncond: float = 0.1
  p_self_condition: float = 0.9                 # Table 3c default.
  p_frame_prediction: float = 0.0               # K600 configs set it > 0.
  max_condition_frames: int = 2                 # 1 = image-to-video, 2 = video prediction.

  def schedule(self) -> diffusion.DiffusionSchedule:
    return diffusion.make_schedule(self.num_steps, self.beta_start, self.beta_end, self.zero_terminal_snr)


def frame_condition(z0: jax.Array, num_frames: jax.Array) -> jax.Array:
  """concat(m ∘ z0, m) with m = 1 on the first `num_frames` [B] latent frames: [B, t, h, w, c + 1]."""
  t = z0.shape[1]
  mask = (jnp.arange(t)[None, :] < num_frames[:, None]).astype(z0.dtype)[:, :, None, None, None]
  mask = jnp.broadcast_to(mask, z0.shape[:-1] + (1,))
  return jnp.concatenate([z0 * mask, mask], axis=-1)


def walt_diffusion_loss(model: WaltTransformer, latents: jax.Array, labels: jax.Array, is_image: jax.Array,
                        rng: jax.Array, cfg: DiffusionConfig):
  """latents [B, t, h, w, c] (normalised), labels [B], is_image [B] -> (loss, metrics)."""
  schedule = cfg.schedule()
  b = latents.shape[0]
  keys = jax.random.split(rng, 6)
  t = jax.random.randint(keys[0], (b,), 0, schedule.num_steps)
  noise = jax.random.normal(keys[1], latents.shape, latents.dtype)
  z_t = diffusion.q_sample(schedule, latents, t, noise)

  null_class = model.config.num_classes
  drop = jax.random.bernoulli(keys[2], cfg.p_uncond, (b,))
  labels = jnp.where(drop, null_class, labels)

  condition = None
  if model.config.frame_prediction:
    use_fp = jax.random.bernoulli(keys[3], cfg.p_frame_prediction, (b,)) & ~is_image
    frames = jax.random.randint(keys[4], (b,), 1, cfg.max_condition_frames + 1)
    condition = frame_condition(latents, jnp.where(use_fp, frames, 0))

  self_condition = None
  if model.config.self_condition:
    first = model(z_t, t, labels, self_condition=jnp.zeros_like(z_t), frame_condition=condition,
                  is_image=is_image)
    x0_first, _ = diffusion.x0_from_prediction(cfg.prediction, schedule, z_t, t, first)
    use_sc = jax.random.bernoulli(keys[5], cfg.p_self_condition, (b,))[:, None, None, None, None]
    self_condition = jnp.where(use_sc, jax.lax.stop_gradient(x0_first), 0.0)

  output = model(z_t, t, labels, self_condition=self_condition, frame_condition=condition, is_image=is_image)
  target = diffusion.target_for(cfg.prediction, schedule, latents, t, noise)
  loss = jnp.mean(jnp.square(output - target))
  return loss, {"diffusion_mse": loss, "uncond_fraction": drop.mean()}


def sample_latents(model: WaltTransformer, labels: jax.Array, rng: jax.Array, cfg: DiffusionConfig, *,
                   num_steps: int = 50, guidance_scale: float = 1.0, eta: float = 0.0,
                   condition_latents: jax.Array | None = None, num_condition_frames: int = 0,
                   is_image: jax.Array | None = None) -> jax.Array:
  """DDIM samples [B, t, h, w, c] for `labels` [B]; conditions on the first frames of
  `condition_latents` when `num_condition_frames` > 0 (image-to-video = 1, prediction = 2)."""
  mc = model.config
  schedule = cfg.schedule()
  b = labels.shape[0]
  shape = (b, mc.latent_frames, mc.latent_size, mc.latent_size, mc.latent_channels)
  condition = None
  if mc.frame_prediction:
    z0 = jnp.zeros(shape) if condition_latents is None else condition_latents
    condition = frame_condition(z0, jnp.full((b,), num_condition_frames))
  null = jnp.full_like(labels, mc.num_classes)

  def denoise(x_t, t, x0_previous):
    sc = x0_previous if mc.self_condition else None
    cond = model(x_t, t, labels, self_condition=sc, frame_condition=condition, is_image=is_image)
    if guidance_scale == 1.0:
      return cond
    uncond = model(x_t, t, null, self_condition=sc, frame_condition=condition, is_image=is_image)
    return diffusion.classifier_free_guidance(cond, uncond, guidance_scale)

  samples = diffusion.ddim_sample(denoise, schedule, shape, rng, num_steps=num_steps, eta=eta,
                                  prediction=cfg.prediction)
  if condition_latents is not None and num_condition_frames > 0:
    # Keep the given frames exactly (the model only predicted them as context).
    keep = (jnp.arange(shape[1]) < num_condition_frames)[None, :, None, None, None]
    samples = jnp.where(keep, condition_latents, samples)
  return samples
