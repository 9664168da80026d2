"""Task `digits.classifier`: cross-entropy on scikit-learn's digits (data_pipelines/digits.py)."""
from __future__ import annotations


import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from data_pipelines import digits as digits_data
from data_pipelines import grain_pipeline, local_tfds
from zoo.digits.model import DigitsConvNet
from zoo.training import evaluation
from zoo.training.task import DataShard, Task, register


def preprocess(images: np.ndarray, resolution: int) -> np.ndarray:
  """uint8 [..., 8, 8] -> float32 [..., R, R, 1] in [0, 1] (nearest upsampling keeps strokes crisp)."""
  factor = resolution // 8
  x = np.asarray(images, np.float32) / 255.0
  x = np.repeat(np.repeat(x, factor, axis=-2), factor, axis=-1)
  return x[..., None]


def preprocess_frames(frames: np.ndarray, resolution: int) -> np.ndarray:
  """Video frames [N, H, W, 3] (uint8, or float in [−1, 1]) -> grey float32 [N, R, R, 1] in [0, 1].

  The input of the moving-digits frame classifier, which scores W.A.L.T's generated frames (they arrive
  as float in [−1, 1] at the video resolution) and trains on the dataset's uint8 frames.
  """
  frames = np.asarray(frames)
  x = frames.astype(np.float32) / 255.0 if frames.dtype == np.uint8 else (frames.astype(np.float32) + 1) / 2
  x = x.mean(axis=-1, keepdims=True)
  if x.shape[1] != resolution or x.shape[2] != resolution:
    x = np.asarray(jax.image.resize(x, (x.shape[0], resolution, resolution, 1), "bilinear", antialias=True))
  return np.clip(x, 0.0, 1.0)


FRAMES_PREFIX = "moving_digits_frames/"


def _frames_source(config, split: str):
  """Frames of moving-digits clips as images (every `frame_stride`-th frame), labelled with the digit."""
  from data_pipelines import moving_digits
  name = config.data.source[len(FRAMES_PREFIX):]
  builder = local_tfds.prepare(moving_digits.MovingDigits, config.data.get("data_dir") or None, config=name)
  if builder.builder_config.num_digits != 1:
    raise ValueError(f"data.source={config.data.source!r}: the frame classifier needs one digit per clip.")
  return moving_digits.FramesAsImages(builder.as_data_source(split), frame_stride=config.data.frame_stride)


def _uses_frames(config) -> bool:
  source = config.data.get("source", "digits")
  if source != "digits" and not source.startswith(FRAMES_PREFIX):
    raise ValueError(f"Unknown data.source {source!r}; use 'digits' or '{FRAMES_PREFIX}one_digit_64'.")
  return source.startswith(FRAMES_PREFIX)


def build_model(config, rngs: nnx.Rngs) -> DigitsConvNet:
  return DigitsConvNet(resolution=config.data.resolution, width=config.model.width,
                       depth=config.model.depth, embed_dim=config.model.embed_dim,
                       num_classes=digits_data.NUM_CLASSES, rngs=rngs)


def loss_fn(model: DigitsConvNet, batch, rng, step):
  del rng, step  # Deterministic model, constant objective.
  logits = model(batch["image"])
  loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"]).mean()
  accuracy = (logits.argmax(-1) == batch["label"]).mean()
  return loss, {"accuracy": accuracy}


def _check_resolution(config):
  if config.data.resolution % 8:
    raise ValueError(f"config.data.resolution={config.data.resolution} must be a multiple of 8 "
                     "(the digits are 8×8 and are upsampled by an integer factor).")


def train_data(config, shard: DataShard):
  _check_resolution(config)
  if _uses_frames(config):
    resolution = config.data.resolution

    def frame_example(record):
      return {"image": preprocess_frames(record["image"][None], resolution)[0],
              "label": np.int32(record["label"])}

    return grain_pipeline.make_loader(_frames_source(config, config.data.get("split", "train")),
                                      global_batch_size=config.batch_size, shard=shard, seed=config.seed,
                                      map_fn=frame_example)
  builder = local_tfds.prepare(digits_data.Digits, config.data.get("data_dir") or None)
  source = builder.as_data_source(config.data.get("split", "train"))
  resolution = config.data.resolution

  def to_example(record):
    return {"image": preprocess(record["image"], resolution), "label": np.int32(record["label"])}

  return grain_pipeline.make_loader(source, global_batch_size=config.batch_size, shard=shard,
                                   seed=config.seed, map_fn=to_example)


def abstract_batch(config):
  r = config.data.resolution
  return {"image": jax.ShapeDtypeStruct((config.batch_size, r, r, 1), jnp.float32),
          "label": jax.ShapeDtypeStruct((config.batch_size,), jnp.int32)}


class ClassificationEvaluator:
  """Accuracy and mean cross-entropy over a whole split (exact: padded examples are masked out)."""

  def __init__(self, config, split: str = "test"):
    _check_resolution(config)
    if _uses_frames(config):
      source = _frames_source(config, split)
      records = [source[i] for i in range(len(source))]
      images = preprocess_frames(np.stack([r["image"] for r in records]), config.data.resolution)
    else:
      builder = local_tfds.prepare(digits_data.Digits, config.data.get("data_dir") or None)
      source = builder.as_data_source(split)
      records = [source[i] for i in range(len(source))]
      images = preprocess(np.stack([r["image"] for r in records]), config.data.resolution)
    self.arrays = {"image": images, "label": np.asarray([r["label"] for r in records], np.int32)}
    self.batch_size = config.evals.classification.batch_size
    self.rules = [tuple(rule) for rule in config.axis_rules]

  def __call__(self, model, mesh):
    graphdef, state = nnx.split(model)

    @jax.jit
    def sums(state, batch):
      logits = nnx.merge(graphdef, state)(batch["image"])
      losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch["label"])
      correct = (logits.argmax(-1) == batch["label"]).astype(jnp.float32)
      m = batch["mask"]
      return jnp.stack([(correct * m).sum(), (losses * m).sum(), m.sum()])

    total = jnp.zeros((3,))
    for batch in evaluation.sharded_eval_batches(self.arrays, self.batch_size, mesh, self.rules):
      total = total + sums(state, batch)
    correct, loss, count = (float(v) for v in jax.device_get(total))
    return {"accuracy": correct / count, "loss": loss / count, "num_examples": count}


def evaluators(config):
  return {"classification": ClassificationEvaluator(config)} if "classification" in config.evals else {}


TASK = register(Task(
    name="digits.classifier",
    build_model=build_model,
    loss_fn=loss_fn,
    train_data=train_data,
    abstract_batch=abstract_batch,
    evaluators=evaluators,
))
