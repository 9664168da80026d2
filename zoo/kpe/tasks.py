"""Task `kpe.crop_depth`: the rendered-crop study (issue 7) on the zoo's common loop.

A small CNN sees a 32–64 px crop of a ray-cast scene (data_pipelines/scene_renderer.py) and predicts the
metric depth and yaw of the object at the crop centre, without KPE or with KPE injected early / in a
latent feature map (zoo/kpe/models.py). Controls: `model.permute_kpe` (KPE shuffled across the batch) and
the orthographic-camera datasets. The evaluator bins the test error by the crop's off-axis angle.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jax.sharding import NamedSharding, PartitionSpec as P

from data_pipelines import grain_pipeline, kpe_crops, local_tfds
from zoo.kpe import crop_depth
from zoo.training import evaluation
from zoo.training.task import DataShard, Task, register

FIELDS = ("image", "intrinsics", "crop_box", "object_depth", "yaw_target", "yaw_valid", "off_axis_deg")
OFF_AXIS_BIN_EDGES = (0.0, 10.0, 20.0, 30.0, 90.0)


@functools.lru_cache(maxsize=4)
def _generated(seed: int, num: int, crop_size: int, orthographic: bool, textured: bool):
  data = kpe_crops.generate_crops(seed, num, crop_size, orthographic, textured_ground=textured)
  return {k: data[k] for k in FIELDS}


def split_arrays(config, split: str) -> dict[str, np.ndarray]:
  d = config.data
  if d.source == "generated":
    num = d.num_train if split == "train" else d.num_test
    return _generated(kpe_crops.KpeCrops.SPLIT_SEEDS[split], int(num), int(d.crop_size),
                      bool(d.orthographic), bool(d.textured_ground))
  if d.source == "tfds":
    builder = local_tfds.prepare(kpe_crops.KpeCrops, d.get("data_dir") or None, config=d.tfds_config)
    source = builder.as_data_source(split)
    records = [source[i] for i in range(len(source))]
    return {k: np.stack([r[k] for r in records]) for k in FIELDS}
  raise ValueError(f"Unknown config.data.source {d.source!r}; use 'generated' or 'tfds'.")


def build_model(config, rngs: nnx.Rngs):
  m = config.model
  model = crop_depth.build_crop_model(m.injection, m.variant, m.num_frequencies, rngs=rngs,
                                      widths=tuple(m.widths))
  model.permute_kpe = bool(m.permute_kpe)   # Static: the permuted-KPE control.
  model.yaw_weight = float(config.loss.yaw_weight)
  return model


def loss_fn(model, batch, rng, step):
  del step
  return crop_depth.crop_depth_loss(model, batch, rng, permute_kpe=model.permute_kpe,
                                    yaw_weight=model.yaw_weight)


def train_data(config, shard: DataShard):
  arrays = split_arrays(config, "train")
  records = [{k: arrays[k][i] for k in FIELDS if k != "off_axis_deg"} for i in range(len(arrays["image"]))]
  return grain_pipeline.make_loader(records, global_batch_size=config.batch_size, shard=shard, seed=config.seed)


def abstract_batch(config):
  b, s = config.batch_size, config.data.crop_size
  f32 = jnp.float32
  return {"image": jax.ShapeDtypeStruct((b, s, s, 3), jnp.uint8),
          "intrinsics": jax.ShapeDtypeStruct((b, 4), f32), "crop_box": jax.ShapeDtypeStruct((b, 4), f32),
          "object_depth": jax.ShapeDtypeStruct((b,), f32), "yaw_target": jax.ShapeDtypeStruct((b, 2), f32),
          "yaw_valid": jax.ShapeDtypeStruct((b,), f32)}


class CropDepthEvaluator:
  """Depth AbsRel and yaw error on the test split, overall and per off-axis-angle bin."""

  def __init__(self, config):
    self.arrays = split_arrays(config, "test")
    self.batch_size = config.evals.crop_depth.batch_size
    self.rules = [tuple(rule) for rule in config.axis_rules]

  def __call__(self, model, mesh):
    graphdef, state = nnx.split(model)
    permute = model.permute_kpe

    # Per-example errors come back replicated (with their angles and masks), so every process sees the
    # whole test set in the same order whatever the process count.
    @functools.partial(jax.jit, out_shardings=NamedSharding(mesh, P()))
    def errors(state, batch):
      m = nnx.merge(graphdef, state)
      decoded = crop_depth.predict(m, batch, jax.random.key(0), permute_kpe=permute)
      abs_rel = jnp.abs(decoded["depth"] - batch["object_depth"]) / batch["object_depth"]
      yaw = crop_depth.yaw_error_deg(decoded["yaw"], batch["yaw_target"])
      return abs_rel, yaw, batch["off_axis_deg"], batch["yaw_valid"], batch["mask"]

    columns = [errors(state, batch) for batch in
               evaluation.sharded_eval_batches(self.arrays, self.batch_size, mesh, self.rules)]
    abs_rel, yaw, angles, yaw_valid, mask = (np.concatenate([np.asarray(c[i]) for c in columns])
                                             for i in range(5))
    real = mask > 0
    abs_rel, yaw, angles, yaw_valid = abs_rel[real], yaw[real], angles[real], yaw_valid[real] > 0
    results = {"depth_abs_rel": float(abs_rel.mean()), "yaw_error_deg": float(yaw[yaw_valid].mean()),
               "num_examples": float(real.sum())}
    for lo, hi in zip(OFF_AXIS_BIN_EDGES[:-1], OFF_AXIS_BIN_EDGES[1:]):
      in_bin = (angles >= lo) & (angles < hi)
      if in_bin.any():
        results[f"depth_abs_rel_offaxis_{int(lo)}_{int(hi)}"] = float(abs_rel[in_bin].mean())
    return results


def evaluators(config):
  return {"crop_depth": CropDepthEvaluator(config)} if "crop_depth" in config.evals else {}


TASK = register(Task(name="kpe.crop_depth", build_model=build_model, loss_fn=loss_fn, train_data=train_data,
                     abstract_batch=abstract_batch, evaluators=evaluators))
