"""Rendered-crop study: a small CNN reads a resized object crop and predicts its metric depth (and yaw).

The synthetic analogue of the paper's crop-based tasks (experiments: ARCTIC hand crops, NYUv2 crops, Omni3D RoIs): the
crop alone hides where it sat in the image and how much it was magnified; KPE (computed from the full-image
intrinsics and the crop box, `zoo.kpe.encoding`) gives both back. Data: `data_pipelines/kpe_crops.py`.

Outputs of the model: [B, 3] = (log object depth, cos 2ψ, sin 2ψ). The yaw ψ is the box's rotation about the up
axis in the camera's heading frame ("egocentric"); under perspective the crop shows the yaw *relative to the
viewing ray* (allocentric), so recovering ψ needs the ray's angle: the cleanest perspective effect, and one that
an orthographic camera removes.

Pure functions for the training loop:
  build_crop_model(injection, variant, num_frequencies, rngs, ...) -> KPERegressor
  crop_depth_loss(model, batch, rng, *, permute_kpe=False, yaw_weight=1.0) -> (loss, metrics)
  predict(model, batch, rng=None, *, permute_kpe=False) -> dict(depth [B], yaw [B])
  yaw_error_deg(predicted_yaw [B], yaw_target [B, 2]) -> [B] degrees modulo 180°
Batch (from kpe_crops): image [B, S, S, 3] uint8, intrinsics [B, 4], crop_box [B, 4], object_depth [B],
yaw_target [B, 2], yaw_valid [B].
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from zoo.kpe import models

NUM_OUTPUTS = 3   # log depth, cos 2ψ, sin 2ψ


def build_crop_model(injection: models.Injection = "latent", variant="sparse", num_frequencies: int = 4, *,
                     rngs: nnx.Rngs, widths: tuple[int, ...] = (32, 64, 128)) -> models.KPERegressor:
  """The study's CNN with KPE injected `injection` ∈ {none, early, latent} as `variant`."""
  return models.KPERegressor(injection=injection, variant=variant, num_frequencies=num_frequencies,
                             widths=widths, num_outputs=NUM_OUTPUTS, rngs=rngs)


def _model_inputs(batch, rng, permute_kpe: bool):
  """Images scaled to [−0.5, 0.5]; with `permute_kpe` the (intrinsics, crop box) pairs are shuffled across the
  batch – the control that keeps KPE's marginal statistics but breaks its link to the crop."""
  images = batch["image"].astype(jnp.float32) / 255.0 - 0.5
  intrinsics, crop_boxes = batch["intrinsics"], batch["crop_box"]
  if permute_kpe:
    order = jax.random.permutation(rng, images.shape[0])
    intrinsics, crop_boxes = intrinsics[order], crop_boxes[order]
  return images, intrinsics, crop_boxes


def decode_outputs(outputs: jax.Array) -> dict[str, jax.Array]:
  """[B, 3] → depth [B] in metres and yaw [B] in radians (in (−π/2, π/2], the box's 180° symmetry)."""
  return dict(depth=jnp.exp(outputs[:, 0]), yaw=0.5 * jnp.arctan2(outputs[:, 2], outputs[:, 1]))


def predict(model: models.KPERegressor, batch, rng=None, *, permute_kpe: bool = False) -> dict[str, jax.Array]:
  """`decode_outputs` of the model on `batch` (rng only matters with `permute_kpe`)."""
  return decode_outputs(model(*_model_inputs(batch, rng, permute_kpe)))


def yaw_error_deg(predicted_yaw: jax.Array, yaw_target: jax.Array) -> jax.Array:
  """[B] absolute yaw error in degrees modulo 180° (target given as (cos 2ψ, sin 2ψ))."""
  target_yaw = 0.5 * jnp.arctan2(yaw_target[:, 1], yaw_target[:, 0])
  difference = jnp.mod(predicted_yaw - target_yaw + jnp.pi / 2, jnp.pi) - jnp.pi / 2
  return jnp.rad2deg(jnp.abs(difference))


def crop_depth_loss(model: models.KPERegressor, batch, rng: jax.Array, *, permute_kpe: bool = False,
                    yaw_weight: float = 1.0) -> tuple[jax.Array, dict[str, jax.Array]]:
  """L1 on log depth (scale-free: the same relative error costs the same near and far) + yaw_weight ·
  masked MSE on (cos 2ψ, sin 2ψ). Metrics: loss terms, depth absolute-relative and metric errors, yaw error."""
  outputs = model(*_model_inputs(batch, rng, permute_kpe))
  depth_target = batch["object_depth"]
  log_depth_error = jnp.abs(outputs[:, 0] - jnp.log(depth_target))
  yaw_valid = batch["yaw_valid"]
  yaw_squared_error = jnp.sum((outputs[:, 1:3] - batch["yaw_target"]) ** 2, axis=-1)
  num_yaw = jnp.maximum(yaw_valid.sum(), 1.0)
  yaw_loss = jnp.sum(yaw_squared_error * yaw_valid) / num_yaw
  depth_loss = log_depth_error.mean()
  decoded = decode_outputs(outputs)
  metrics = dict(
      depth_loss=depth_loss,
      yaw_loss=yaw_loss,
      depth_abs_rel=jnp.mean(jnp.abs(decoded["depth"] - depth_target) / depth_target),
      depth_abs_m=jnp.mean(jnp.abs(decoded["depth"] - depth_target)),
      yaw_error_deg=jnp.sum(yaw_error_deg(decoded["yaw"], batch["yaw_target"]) * yaw_valid) / num_yaw,
  )
  return depth_loss + yaw_weight * yaw_loss, metrics
