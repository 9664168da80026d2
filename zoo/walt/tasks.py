"""W.A.L.T tasks for the common loop.

`walt.tokenizer`: trains the causal video autoencoder (tokenizer.py) with tokenizer_losses.py on moving
digits (or UCF-101 / Kinetics when configured), keeps per-channel latent statistics for the second stage,
evaluates reconstruction PSNR / SSIM / rFVD against a bilinear baseline with the same number of latent
numbers, and writes side-by-side reconstruction GIFs through tools/sample.py.
"""
from __future__ import annotations

import dataclasses
import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from data_pipelines import grain_pipeline, local_tfds
from data_pipelines import video_datasets
from zoo.training import evaluation
from zoo.training.task import DataShard, Task, register
from zoo.walt import perceptual
from zoo.walt import tokenizer as tokenizer_lib
from zoo.walt import tokenizer_losses


class LatentStatistic(nnx.Variable):
  """Per-channel latent statistics (W.A.L.T §5.4 "latent normalisation"); saved with the checkpoint."""


class TokenizerTrainer(nnx.Module):
  """The tokenizer, its discriminator, and running per-channel latent mean / second moment.

  The statistics are an exponential moving average over training batches (decay 0.99) of the encoder's
  latents, so they describe the final encoder on the training distribution; the transformer divides
  latents by them (`normalize_latent`).
  """

  def __init__(self, cfg: tokenizer_lib.TokenizerConfig, loss_config: tokenizer_losses.TokenizerLossConfig,
               discriminator_channels: int, *, rngs: nnx.Rngs):
    self.loss_config = loss_config  # Static (a frozen dataclass): part of the graph, not of the state.
    self.tokenizer = tokenizer_lib.CausalVideoTokenizer(cfg, rngs=rngs)
    self.discriminator = (tokenizer_losses.Discriminator3d(discriminator_channels, rngs=rngs)
                          if discriminator_channels > 0 else None)
    self.latent_mean = LatentStatistic(jnp.zeros((cfg.latent_channels,)))
    self.latent_second_moment = LatentStatistic(jnp.ones((cfg.latent_channels,)))

  def update_latent_statistics(self, latent: jax.Array, decay: float = 0.99) -> None:
    axes = tuple(range(latent.ndim - 1))
    latent = jax.lax.stop_gradient(latent.astype(jnp.float32))
    self.latent_mean[...] = decay * self.latent_mean[...] + (1 - decay) * latent.mean(axes)
    self.latent_second_moment[...] = (decay * self.latent_second_moment[...]
                                      + (1 - decay) * jnp.square(latent).mean(axes))

  def latent_std(self) -> jax.Array:
    variance = self.latent_second_moment[...] - jnp.square(self.latent_mean[...])
    return jnp.sqrt(jnp.maximum(variance, 1e-6))

  def normalize_latent(self, latent: jax.Array) -> jax.Array:
    return (latent - self.latent_mean[...]) / self.latent_std()


def tokenizer_config(config) -> tokenizer_lib.TokenizerConfig:
  m = config.model
  return tokenizer_lib.TokenizerConfig(
      channels=m.channels, channel_multipliers=tuple(m.channel_multipliers),
      temporal_downsample=tuple(m.temporal_downsample), num_res_blocks=m.num_res_blocks,
      latent_channels=m.latent_channels, num_groups=m.num_groups, kernel_impl=config.kernels.causal_conv3d,
      remat=m.get("remat", False))


def perceptual_network(config) -> str:
  """`loss.perceptual_network`, with "auto" = the digits frame classifier on moving digits, else I3D."""
  network = config.loss.get("perceptual_network", "auto")
  if network == "auto":
    return "frame_classifier" if config.data.name.startswith("moving_digits/") else "i3d"
  return network


def loss_config(config) -> tokenizer_losses.TokenizerLossConfig:
  l = config.loss
  return tokenizer_losses.TokenizerLossConfig(
      reconstruction=l.reconstruction, perceptual_weight=l.perceptual_weight,
      # .get: configs saved before the perceptual network was wired (e.g. the shipped demo tokenizer).
      perceptual_network=perceptual_network(config),
      perceptual_workdir=l.get("perceptual_workdir", ""), gan_weight=l.gan_weight,
      gan_start_step=l.gan_start_step, r1_weight=l.r1_weight)


def build_tokenizer_trainer(config, rngs: nnx.Rngs) -> TokenizerTrainer:
  cfg = tokenizer_config(config)
  cfg.latent_shape(config.data.frames, config.data.resolution, config.data.resolution)
  return TokenizerTrainer(cfg, loss_config(config),
                          config.model.discriminator_channels if config.loss.gan_weight > 0 else 0,
                          rngs=rngs)


def tokenizer_loss_fn(model: TokenizerTrainer, batch, rng, step):
  del rng  # Deterministic autoencoder; the GAN has no sampling either.
  cfg = model.loss_config
  features = (perceptual.feature_network(cfg.perceptual_network, cfg.perceptual_workdir)
              if cfg.perceptual_weight > 0 else None)
  loss, metrics, _, latent = tokenizer_losses.tokenizer_loss(
      model.tokenizer, model.discriminator, batch["video"], step, cfg, perceptual_features=features)
  model.update_latent_statistics(latent)
  return loss, metrics


def video_source(config, split: str):
  """A random-access source of {"video": uint8 [T, H, W, 3], "label"} records for config.data."""
  name = config.data.name
  if name.startswith("moving_digits/"):
    from data_pipelines import moving_digits
    builder = local_tfds.prepare(moving_digits.MovingDigits, config.data.get("data_dir") or None,
                                 config=name.split("/", 1)[1])
    return builder.as_data_source(split)
  if name.startswith("photo_pans/"):
    from data_pipelines import photo_pans
    builder = local_tfds.prepare(photo_pans.PhotoPans, config.data.get("data_dir") or None,
                                 config=name.split("/", 1)[1])
    return builder.as_data_source(split)
  if name == "ucf101":
    return video_datasets.ucf101_source(split, config.data.get("data_dir") or None)
  if name == "kinetics600":
    return video_datasets.kinetics600_source(split, config.data.get("data_dir") or None)
  if name == "imagenet":
    return video_datasets.imagenet_source(split, config.data.get("data_dir") or None)
  raise ValueError(f"Unknown config.data.name {name!r}; use moving_digits/<config>, photo_pans/<config>, "
                   "ucf101, kinetics600 or imagenet.")


@dataclasses.dataclass(frozen=True)
class ImageAsVideoMapFn:
  """An image record -> {"video": [1, R, R, 3], "label"}: W.A.L.T encodes an image as a one-frame video."""
  resolution: int

  def __call__(self, record):
    example = video_datasets.ImageMapFn(resolution=self.resolution)(record)
    return {"video": example["image"][None], "label": example["label"]}


def video_map_fn(config):
  if config.data.name == "imagenet":
    if config.data.frames != 1:
      raise ValueError(f"data.name='imagenet' holds images: set data.frames=1 (got {config.data.frames}).")
    return ImageAsVideoMapFn(resolution=config.data.resolution)
  return video_datasets.VideoMapFn(num_frames=config.data.frames, resolution=config.data.resolution,
                                   frame_stride=config.data.get("frame_stride", 1))


def tokenizer_train_data(config, shard: DataShard):
  return grain_pipeline.make_loader(video_source(config, config.data.split), global_batch_size=config.batch_size,
                                    shard=shard, seed=config.seed, map_fn=video_map_fn(config))


def tokenizer_abstract_batch(config):
  t, r = config.data.frames, config.data.resolution
  return {"video": jax.ShapeDtypeStruct((config.batch_size, t, r, r, 3), jnp.float32),
          "label": jax.ShapeDtypeStruct((config.batch_size,), jnp.int32)}


def bilinear_baseline(videos: jax.Array, latent_shape: tuple[int, int, int, int]) -> jax.Array:
  """Down/up-sampling with as many numbers as the latent: the reference the tokenizer must beat.

  The latent holds t×h×w×c numbers; the baseline keeps the t frames the causal encoder anchors on
  (0, f_t, 2f_t, ...) at s×s×3 with s = floor(sqrt(h·w·c/3)) (so it never stores more numbers than the
  latent), upsamples bilinearly in space, then interpolates linearly in time.
  """
  b, frames, height, width, _ = videos.shape
  t, h, w, c = latent_shape
  side = int(np.floor(np.sqrt(h * w * c / 3)))
  anchors = np.linspace(0, frames - 1, t).round().astype(int)
  kept = videos[:, anchors]
  small = jax.image.resize(kept, (b, t, side, side, 3), "bilinear", antialias=True)
  restored = jax.image.resize(small, (b, t, height, width, 3), "bilinear", antialias=False)
  # Linear interpolation in time between anchor frames.
  position = np.interp(np.arange(frames), anchors, np.arange(t))
  lower = np.floor(position).astype(int)
  upper = np.minimum(lower + 1, t - 1)
  weight = jnp.asarray(position - lower, jnp.float32)[None, :, None, None, None]
  return (1 - weight) * restored[:, lower] + weight * restored[:, upper]


@functools.lru_cache(maxsize=4)
def _jitted_reconstruction(graphdef):
  """One compiled forward per tokenizer graph, shared by every evaluation and sampling call."""
  return jax.jit(lambda state, video: nnx.merge(graphdef, state)(video)[0])


class ReconstructionEvaluator:
  """PSNR / SSIM (and rFVD when `fvd_videos` > 0) of test-split reconstructions vs the bilinear baseline."""

  def __init__(self, config):
    ev = config.evals.reconstruction
    source = video_source(config, ev.split)
    count = min(ev.num_videos, len(source))
    map_fn = video_map_fn(config)
    self.videos = np.stack([map_fn(source[i])["video"] for i in range(count)])
    self.batch_size = ev.batch_size
    self.fvd_videos = ev.get("fvd_videos", 0)
    self.rules = [tuple(rule) for rule in config.axis_rules]

  def reconstruct(self, model: TokenizerTrainer, mesh) -> np.ndarray:
    graphdef, state = nnx.split(model.tokenizer)
    forward = _jitted_reconstruction(graphdef)
    outputs = []
    for batch in evaluation.sharded_eval_batches({"video": self.videos}, self.batch_size, mesh, self.rules):
      outputs.append(np.asarray(jax.device_get(forward(state, batch["video"])))[np.asarray(batch["mask"]) > 0])
    return np.concatenate(outputs)[:len(self.videos)]

  def __call__(self, model: TokenizerTrainer, mesh) -> dict[str, float]:
    from zoo.metrics import image_quality
    reconstruction = np.clip(self.reconstruct(model, mesh), -1.0, 1.0)
    cfg = model.tokenizer.config
    latent_shape = cfg.latent_shape(*self.videos.shape[1:4])
    baseline = np.asarray(jnp.clip(bilinear_baseline(jnp.asarray(self.videos), latent_shape), -1.0, 1.0))
    results = {
        "psnr": float(np.mean(image_quality.psnr(reconstruction, self.videos))),
        "ssim": float(np.mean(image_quality.ssim(reconstruction, self.videos))),
        "bilinear_psnr": float(np.mean(image_quality.psnr(baseline, self.videos))),
        "bilinear_ssim": float(np.mean(image_quality.ssim(baseline, self.videos))),
        "latent_numbers": float(np.prod(latent_shape)),
        "num_videos": float(len(self.videos)),
    }
    if self.fvd_videos:
      from zoo.metrics import fvd
      n = min(self.fvd_videos, len(self.videos))
      results["rfvd"] = float(fvd.fvd(self.videos[:n], reconstruction[:n]))
      results["bilinear_rfvd"] = float(fvd.fvd(self.videos[:n], baseline[:n]))
    return results


def tokenizer_evaluators(config):
  return {"reconstruction": ReconstructionEvaluator(config)} if "reconstruction" in config.evals else {}


def tokenizer_sample(model: TokenizerTrainer, config, rng, outdir: str, mesh) -> dict[str, str]:
  """Writes side-by-side GIFs (input | reconstruction) of the first test videos."""
  import imageio.v3 as iio
  del rng
  evaluator = ReconstructionEvaluator(config)
  reconstruction = np.clip(evaluator.reconstruct(model, mesh), -1, 1)
  written = {}
  for i in range(min(config.sample.num_videos, len(reconstruction))):
    pair = np.concatenate([evaluator.videos[i], reconstruction[i]], axis=2)  # [T, H, 2W, 3]
    path = os.path.join(outdir, f"reconstruction_{i:03d}.gif")
    iio.imwrite(path, video_datasets.to_uint8(pair), duration=125, loop=0)
    written[f"gif_{i}"] = path
  return written


TOKENIZER_TASK = register(Task(
    name="walt.tokenizer",
    build_model=build_tokenizer_trainer,
    loss_fn=tokenizer_loss_fn,
    train_data=tokenizer_train_data,
    abstract_batch=tokenizer_abstract_batch,
    evaluators=tokenizer_evaluators,
    sample=tokenizer_sample,
))


# The second stage registers `walt.video_diffusion` (imported last: it uses this module's data helpers).
from zoo.walt import diffusion_task  # noqa: E402,F401
