"""Task `walt.video_diffusion`: W.A.L.T's second stage, the window-attention diffusion transformer (§4.2–4.4).

Trains `WaltTransformer` with `model.walt_diffusion_loss` on normalised latents of a frozen tokenizer
(latents.py; the clips are encoded once and cached), jointly on videos and stacks of independent images
(`data.image_fraction`, §4.1). Evaluates generated videos with the in-project moving-digits frame classifier
(per-frame class accuracy and a Fréchet distance of its features, real test frames vs generated frames)
and, when `fvd_videos > 0`, FVD with the Kinetics-400 I3D (zoo/metrics/fvd.py). `tools/sample.py` writes
class-conditional video and image grids, image-to-video, video prediction and long videos (§5.3: the last
5 frames are re-encoded into 2 latent frames that condition the next segment).
"""
from __future__ import annotations

import dataclasses
import functools
import logging
import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from data_pipelines import grain_pipeline, video_datasets
from zoo import paths
from zoo.training.task import DataShard, Task, register
from zoo.walt import latents as latents_lib
from zoo.walt import model as walt_model
from zoo.walt.transformer import TransformerConfig, WaltTransformer


class LatentDiffusion(nnx.Module):
  """The transformer plus its (static) diffusion settings: what the loop trains and checkpoints."""

  def __init__(self, transformer_cfg: TransformerConfig, diffusion_cfg: walt_model.DiffusionConfig, *,
               rngs: nnx.Rngs):
    self.diffusion = diffusion_cfg  # A frozen dataclass: part of the graph definition, not of the state.
    self.transformer = WaltTransformer(transformer_cfg, rngs=rngs)


def transformer_config(config) -> TransformerConfig:
  t, h, w, c = latents_lib.latent_grid(config)
  if h != w:
    raise ValueError(f"Latent grid {h}×{w} must be square.")
  m = config.model
  return TransformerConfig(
      latent_channels=c, latent_frames=t, latent_size=h, patch_size=m.patch_size, width=m.width,
      depth=m.depth, num_heads=m.num_heads, mlp_ratio=m.mlp_ratio,
      spatiotemporal_window=tuple(m.spatiotemporal_window), num_classes=config.data.num_classes,
      adaln=m.adaln, adaln_lora_rank=m.adaln_lora_rank, qk_norm=m.qk_norm, self_condition=m.self_condition,
      frame_prediction=m.frame_prediction, full_attention=m.get("full_attention", False),
      attention_impl=config.kernels.window_attention, dtype=m.dtype)


def diffusion_config(config) -> walt_model.DiffusionConfig:
  d = config.diffusion
  return walt_model.DiffusionConfig(
      num_steps=d.num_steps, beta_start=d.beta_start, beta_end=d.beta_end,
      zero_terminal_snr=d.zero_terminal_snr, prediction=d.prediction, p_uncond=d.p_uncond,
      p_self_condition=d.p_self_condition, p_frame_prediction=d.p_frame_prediction,
      max_condition_frames=d.max_condition_frames)


def build_model(config, rngs: nnx.Rngs) -> LatentDiffusion:
  return LatentDiffusion(transformer_config(config), diffusion_config(config), rngs=rngs)


def loss_fn(model: LatentDiffusion, batch, rng, step):
  del step
  labels = batch["label"]
  if model.transformer.config.num_classes == 0:  # Unconditional (K600): every example gets the null class.
    labels = jnp.zeros_like(labels)
  return walt_model.walt_diffusion_loss(model.transformer, batch["latents"], labels, batch["is_image"], rng,
                                        model.diffusion)


def train_data(config, shard: DataShard):
  encoded = latents_lib.encoded_split(config, config.data.split)
  source = latents_lib.LatentClips(encoded, config.data.image_fraction, seed=config.seed)
  logging.info("Latent training set: %d clips + %d image stacks of %s latents.", source.num_videos,
               source.num_image_stacks, source.latents.shape[1:])
  return grain_pipeline.make_loader(source, global_batch_size=config.batch_size, shard=shard, seed=config.seed)


def abstract_batch(config):
  t, h, w, c = latents_lib.latent_grid(config)
  b = config.batch_size
  return {"latents": jax.ShapeDtypeStruct((b, t, h, w, c), jnp.float32),
          "label": jax.ShapeDtypeStruct((b,), jnp.int32),
          "is_image": jax.ShapeDtypeStruct((b,), jnp.bool_)}


# ---- sampling ---------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SamplerSettings:
  num_steps: int = 50           # DDIM steps (§5: 50).
  guidance_scale: float = 1.0   # Classifier-free guidance scale; 1 = plain conditional model.
  eta: float = 0.0              # DDIM stochasticity.


def sampler_settings(section) -> SamplerSettings:
  return SamplerSettings(num_steps=section.num_steps, guidance_scale=section.guidance_scale,
                         eta=section.get("eta", 0.0))


@functools.lru_cache(maxsize=16)
def _jitted_sampler(graphdef, diffusion_cfg, settings: SamplerSettings, num_condition_frames: int,
                    images: bool):
  def sample(state, labels, key, condition_latents):
    model = nnx.merge(graphdef, state)
    is_image = jnp.full(labels.shape, images) if images else None
    return walt_model.sample_latents(
        model.transformer, labels, key, diffusion_cfg, num_steps=settings.num_steps,
        guidance_scale=settings.guidance_scale, eta=settings.eta,
        condition_latents=condition_latents if num_condition_frames else None,
        num_condition_frames=num_condition_frames, is_image=is_image)
  return jax.jit(sample)


def sample_normalised_latents(model: LatentDiffusion, labels: np.ndarray, key: jax.Array,
                              settings: SamplerSettings, *, batch_size: int, condition_latents=None,
                              num_condition_frames: int = 0, images: bool = False) -> np.ndarray:
  """DDIM samples [N, t, h, w, c] (normalised latents) for `labels` [N], in batches of `batch_size`."""
  graphdef, state = nnx.split(model)
  fn = _jitted_sampler(graphdef, model.diffusion, settings, num_condition_frames, images)
  tc = model.transformer.config
  shape = (tc.latent_frames, tc.latent_size, tc.latent_size, tc.latent_channels)
  if condition_latents is None:
    condition_latents = np.zeros((len(labels),) + shape, np.float32)
  return latents_lib.map_in_batches(
      lambda start, chunk, cond: fn(state, chunk, jax.random.fold_in(key, start), cond),
      [np.asarray(labels, np.int32), np.asarray(condition_latents, np.float32)], batch_size)


def decode_images(tokenizer: latents_lib.FrozenTokenizer, image_latents: np.ndarray) -> np.ndarray:
  """Image stacks [N, t, h, w, c] (normalised) -> images [N, t, H, W, 3]: each latent frame decoded as a
  one-frame video (§4.1: an image is a one-frame video)."""
  n, t = image_latents.shape[:2]
  raw = tokenizer.denormalize(image_latents.reshape(n * t, 1, *image_latents.shape[2:]))
  images = tokenizer.decode(raw)[:, 0]
  return images.reshape(n, t, *images.shape[1:])


def continue_video(model: LatentDiffusion, tokenizer: latents_lib.FrozenTokenizer, video: np.ndarray,
                   labels: np.ndarray, key: jax.Array, settings: SamplerSettings, *, batch_size: int,
                   context_frames: int = 5, context_latents: int = 2) -> np.ndarray:
  """One autoregressive segment of a long video (§5.3): re-encode the last `context_frames` frames into
  `context_latents` latent frames, condition on them, decode, and return only the new frames."""
  context = video[:, -context_frames:]
  tc = model.transformer.config
  cond = np.zeros((len(video), tc.latent_frames, tc.latent_size, tc.latent_size, tc.latent_channels),
                  np.float32)
  cond[:, :context_latents] = tokenizer.normalize(tokenizer.encode(context, batch_size))
  sampled = sample_normalised_latents(model, labels, key, settings, batch_size=batch_size,
                                      condition_latents=cond, num_condition_frames=context_latents)
  decoded = tokenizer.decode(tokenizer.denormalize(sampled), batch_size)
  return decoded[:, context_frames:]


def write_gif(path: str, frames: np.ndarray, fps: float = 8.0) -> str:
  """frames [T, H, W, 3] in [−1, 1] -> looping GIF."""
  import imageio.v3 as iio
  iio.imwrite(path, video_datasets.to_uint8(frames), duration=1000.0 / fps, loop=0)
  return path


def tile(videos: np.ndarray, pad: int = 2) -> np.ndarray:
  """[R, C, ..., H, W, 3] -> [..., R·(H+pad), C·(W+pad), 3] with a grey separator (value 0 in [−1, 1])."""
  r, c = videos.shape[:2]
  padding = [(0, 0)] * (videos.ndim - 3) + [(0, pad), (0, pad), (0, 0)]
  padded = np.pad(videos, padding, constant_values=0.0)
  h, w = padded.shape[-3:-1]
  moved = np.moveaxis(padded, (0, 1), (-5, -3))  # [..., R, H, C, W, 3]
  return moved.reshape(*moved.shape[:-5], r * h, c * w, 3)


def _class_labels(config, count: int) -> np.ndarray:
  """Balanced class labels; all 0 (= the null class) for an unconditional model."""
  return (np.arange(count) % max(config.data.num_classes, 1)).astype(np.int32)


def walt_sample(model: LatentDiffusion, config, rng, outdir: str, mesh) -> dict[str, str]:
  """Writes class-conditional video/image grids, image-to-video, prediction and long-video GIFs."""
  import imageio.v3 as iio
  s = config.sample
  settings = sampler_settings(s)
  tokenizer = latents_lib.load_tokenizer(config, devices=list(mesh.devices.flat))
  tc = model.transformer.config
  classes = min(config.data.num_classes, s.num_classes)
  per_class = s.per_class
  labels = np.repeat(np.arange(classes, dtype=np.int32), per_class)
  keys = jax.random.split(rng, 5)
  written = {}

  videos = tokenizer.decode(tokenizer.denormalize(sample_normalised_latents(
      model, labels, keys[0], settings, batch_size=s.batch_size)))
  grid = tile(videos.reshape(classes, per_class, *videos.shape[1:]))
  written["class_conditional_videos"] = write_gif(os.path.join(outdir, "class_conditional_videos.gif"), grid)
  logging.info("Rows are classes 0..%d, %d samples each.", classes - 1, per_class)

  if s.get("images", True):
    images = decode_images(tokenizer, sample_normalised_latents(
        model, labels, keys[1], settings, batch_size=s.batch_size, images=True))
    # Rows: classes; columns: per_class stacks × t independent images.
    image_grid = tile(images.reshape(classes, per_class * tc.latent_frames, *images.shape[2:]))
    path = os.path.join(outdir, "class_conditional_images.png")
    iio.imwrite(path, video_datasets.to_uint8(image_grid))
    written["class_conditional_images"] = path

  if tc.frame_prediction and s.get("num_prediction_videos", 0):
    test = latents_lib.encoded_split(config, "test", tokenizer)
    n = min(s.num_prediction_videos, len(test["labels"]))
    cond = ((test["latents"][:n] - test["mean"]) / test["std"]).astype(np.float32)
    real = tokenizer.decode(test["latents"][:n])
    for frames, name in ((1, "image_to_video"), (2, "video_prediction")):
      if frames > config.diffusion.max_condition_frames or frames >= tc.latent_frames:
        continue
      predicted = tokenizer.decode(tokenizer.denormalize(sample_normalised_latents(
          model, test["labels"][:n], keys[2 + frames - 1], settings, batch_size=s.batch_size,
          condition_latents=cond, num_condition_frames=frames)))
      # Rows: examples; columns: tokenizer reconstruction of the real clip | generated from its first frames.
      written[name] = write_gif(os.path.join(outdir, f"{name}.gif"), tile(np.stack([real, predicted], axis=1)))

    segments = s.get("long_video_segments", 0)
    if segments and config.diffusion.max_condition_frames >= 2 and tc.latent_frames > 2:
      long = real
      for i in range(segments):
        new = continue_video(model, tokenizer, long, test["labels"][:n], jax.random.fold_in(keys[4], i),
                             settings, batch_size=s.batch_size)
        long = np.concatenate([long, new], axis=1)
      written["long_video"] = write_gif(os.path.join(outdir, "long_video.gif"), tile(long[:, None]))
      logging.info("Long videos: %d frames each (%d segments after the first clip).", long.shape[1], segments)
  return written


# ---- evaluation -------------------------------------------------------------------------------------


class GenerationEvaluator:
  """Samples class-conditional videos and scores them.

  With `classifier_workdir` (a trained `digits.classifier` on moving-digits frames, see
  experiments/core/digits_classifier.py:frames): `frame_accuracy` (per-frame argmax == the conditioning
  class) and `frame_fd` (Fréchet distance between the classifier's features of generated frames and of
  real test frames), with the same numbers for the tokenizer's reconstructions of real test clips
  (`reconstruction_*`: the ceiling the transformer can reach through this tokenizer). With
  `fvd_videos > 0`: FVD (I3D) against real test clips, and `reconstruction_fvd`, the same for the
  reconstructions (real-clip I3D statistics are computed once and reused at every evaluation).
  """

  def __init__(self, config):
    self.config = config
    self.section = config.evals.generation
    self._tokenizer = None
    self._classifier = None
    self._reference = None

  def _setup(self, mesh):
    if self._tokenizer is not None:
      return
    devices = list(mesh.devices.flat)
    self._tokenizer = latents_lib.load_tokenizer(self.config, devices=devices)
    from zoo.walt import tasks as tokenizer_tasks
    source = tokenizer_tasks.video_source(self.config, self.section.split)
    count = min(len(source), max(self.section.num_videos, self.section.get("fvd_videos", 0)))
    map_fn = tokenizer_tasks.video_map_fn(self.config)
    records = [map_fn(source[i]) for i in range(count)]
    self._real = np.stack([r["video"] for r in records])
    self._real_labels = np.asarray([r["label"] for r in records], np.int32)
    self._reconstructed = self._tokenizer.decode(self._tokenizer.encode(self._real))
    if self.section.get("classifier_workdir"):
      self._classifier = FrameClassifier(self.section.classifier_config, self.section.classifier_workdir,
                                         devices=devices)

  def __call__(self, model: LatentDiffusion, mesh) -> dict[str, float]:
    self._setup(mesh)
    settings = sampler_settings(self.section)
    labels = _class_labels(self.config, self.section.num_videos)
    key = jax.random.key(self.section.get("seed", 0))
    videos = self._tokenizer.decode(self._tokenizer.denormalize(sample_normalised_latents(
        model, labels, key, settings, batch_size=self.section.batch_size)))
    results = {"num_videos": float(len(videos))}
    if self._classifier is not None:
      n = min(len(self._real), self.section.num_videos)
      results.update(self._classifier.score(videos, labels, self._real[:n], "frame"))
      results.update(self._classifier.score(self._reconstructed[:n], self._real_labels[:n], self._real[:n],
                                            "reconstruction_frame"))
    if self.section.get("fvd_videos", 0):
      results.update(self._fvd(videos))
    return results

  def _fvd(self, videos: np.ndarray) -> dict[str, float]:
    """FVD of generated videos and, once per evaluator, of the tokenizer's reconstructions of the same
    real clips (the ceiling at the same sample size: FVD is biased upwards at small N)."""
    from zoo.metrics import fvd
    n = min(self.section.fvd_videos, len(videos), len(self._real))
    if self._reference is None or self._reference[0] != n:
      metric = fvd.FrechetVideoDistance()
      metric.update_real(self._real[:n])
      metric.update_generated(self._reconstructed[:n])
      self._reference = (n, metric.real, metric.compute())
    _, real_moments, reconstruction_fvd = self._reference
    metric = fvd.FrechetVideoDistance(real=real_moments)
    metric.update_generated(videos[:n])
    return {"fvd": float(metric.compute()), "reconstruction_fvd": float(reconstruction_fvd),
            "fvd_videos": float(n)}


class FrameClassifier:
  """The moving-digits frame classifier (task `digits.classifier` with data.source = moving-digit frames)."""

  def __init__(self, config_spec: str, workdir: str, devices: list | None = None):
    from zoo.training import loop
    workdir = paths.resolve(workdir)  # demo_assets/... works from any directory.
    try:
      config, _, self.mesh, self.model, self.step, _ = loop.restore_trained_model(
          os.path.join(workdir, "checkpoints"), devices=devices)
    except FileNotFoundError:
      raise FileNotFoundError(
          f"No frame classifier checkpoint in {workdir}. Train it first:\n  python -m tools.train --config "
          f"{config_spec} --workdir {workdir}\nor set evals.generation.classifier_workdir='' to skip the "
          "classifier metrics.") from None
    self.resolution = config.data.resolution
    graphdef, state = nnx.split(self.model)
    self._forward = jax.jit(lambda s, x: (lambda m: (m(x), m.features(x)))(nnx.merge(graphdef, s)))
    self._state = state

  def logits_and_features(self, videos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """videos [N, T, H, W, 3] in [−1, 1] -> per-frame logits [N, T, K] and features [N, T, F]."""
    from zoo.digits import tasks as digits_tasks
    n, t = videos.shape[:2]
    frames = digits_tasks.preprocess_frames(videos.reshape(n * t, *videos.shape[2:]), self.resolution)
    logits, features = [], []
    with jax.set_mesh(self.mesh):
      for start in range(0, len(frames), 256):
        lg, ft = self._forward(self._state, frames[start:start + 256])
        logits.append(np.asarray(lg))
        features.append(np.asarray(ft))
    return np.concatenate(logits).reshape(n, t, -1), np.concatenate(features).reshape(n, t, -1)

  def score(self, videos: np.ndarray, labels: np.ndarray, real_videos: np.ndarray, prefix: str):
    from zoo.metrics import frechet
    logits, features = self.logits_and_features(videos)
    _, real_features = self.logits_and_features(real_videos)
    accuracy = float((logits.argmax(-1) == labels[:, None]).mean())
    distance = frechet.frechet_distance_from_features(real_features.reshape(-1, real_features.shape[-1]),
                                                      features.reshape(-1, features.shape[-1]))
    return {f"{prefix}_accuracy": accuracy, f"{prefix}_fd": float(distance)}


def evaluators(config):
  return {"generation": GenerationEvaluator(config)} if "generation" in config.evals else {}


VIDEO_DIFFUSION_TASK = register(Task(
    name="walt.video_diffusion",
    build_model=build_model,
    loss_fn=loss_fn,
    train_data=train_data,
    abstract_batch=abstract_batch,
    evaluators=evaluators,
    sample=walt_sample,
))
