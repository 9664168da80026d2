"""Runs the rendered-crop study with a small standalone optax loop (the common CLU loop uses the same
`crop_depth_loss`). Writes a JSON table and prints it; errors are also binned by the crop's off-axis angle.

  python -m zoo.kpe.crop_study --out /tmp/kpe_crop_study   # 8-12 min per variant on 2 shared CPU cores

Variants (the authors' naming): no KPE (the crop alone), sparse latent (centre+corners, L = 4), dense latent,
early (dense map concatenated to RGB); controls: sparse latent with KPE permuted across the batch, and
no-KPE / sparse-latent on the orthographic rendering of the same kind of scenes. `plain_*` variants
(opt-in) repeat the comparison on a uniform ground.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from zoo.kpe import crop_depth

VARIANTS = {   # name: (dataset, injection, KPE variant, permute KPE)
    "none": ("perspective", "none", "sparse", False),
    "sparse_latent": ("perspective", "latent", "sparse", False),
    "dense_latent": ("perspective", "latent", "dense", False),
    "early_dense": ("perspective", "early", "dense", False),
    "sparse_latent_permuted": ("perspective", "latent", "sparse", True),
    "ortho_none": ("orthographic", "none", "sparse", False),
    "ortho_sparse_latent": ("orthographic", "latent", "sparse", False),
    # Ablation: a uniform ground, so the crop's context (vanishing lines of the checkerboard) cannot betray
    # where the crop sits; only the object's own perspective distortion and size remain.
    "plain_none": ("perspective_plain", "none", "sparse", False),
    "plain_sparse_latent": ("perspective_plain", "latent", "sparse", False),
    "plain_sparse_latent_permuted": ("perspective_plain", "latent", "sparse", True),
    "ortho_plain_none": ("orthographic_plain", "none", "sparse", False),
    "ortho_plain_sparse_latent": ("orthographic_plain", "latent", "sparse", False),
}
DEFAULT_VARIANTS = ("none", "sparse_latent", "dense_latent", "early_dense", "sparse_latent_permuted", "ortho_none",
                    "ortho_sparse_latent")
OFF_AXIS_BINS_DEG = (0.0, 10.0, 20.0, 30.0, 50.0)


def load_or_generate(data_dir: str, dataset: str, split: str, num_examples: int, crop_size: int):
  """numpy fields from `data_pipelines.kpe_crops.generate_crops`, cached as .npz (split seeds as in the builder).
  dataset: perspective | orthographic, with a `_plain` suffix for the uniform ground."""
  from data_pipelines import kpe_crops
  path = os.path.join(data_dir, f"kpe_crops_{dataset}_{crop_size}_{split}_{num_examples}.npz")
  if os.path.exists(path):
    return dict(np.load(path))
  data = kpe_crops.generate_crops(kpe_crops.KpeCrops.SPLIT_SEEDS[split], num_examples, crop_size,
                                  orthographic=dataset.startswith("orthographic"),
                                  textured_ground=not dataset.endswith("_plain"))
  os.makedirs(data_dir, exist_ok=True)
  np.savez(path, **data)
  return data


def train_and_evaluate(train, test, injection, variant, permute_kpe, *, steps, batch_size, learning_rate, seed,
                       num_frequencies=4):
  model = crop_depth.build_crop_model(injection, variant, num_frequencies, rngs=nnx.Rngs(seed))
  graphdef, params = nnx.split(model)
  schedule = optax.warmup_cosine_decay_schedule(0.0, learning_rate, min(200, steps // 10), steps)
  tx = optax.adamw(schedule, weight_decay=1e-4)
  opt_state = tx.init(params)
  loss_fn = functools.partial(crop_depth.crop_depth_loss, permute_kpe=permute_kpe)

  @jax.jit
  def step(params, opt_state, batch, rng):
    def loss_of(params):
      return loss_fn(nnx.merge(graphdef, params), batch, rng)
    (loss, metrics), grads = jax.value_and_grad(loss_of, has_aux=True)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, metrics

  @jax.jit
  def evaluate(params, batch, rng):
    return crop_depth.predict(nnx.merge(graphdef, params), batch, rng, permute_kpe=permute_kpe)

  fields = ("image", "intrinsics", "crop_box", "object_depth", "yaw_target", "yaw_valid")
  rng = np.random.default_rng(seed)
  key = jax.random.key(seed)
  num_train = len(train["object_depth"])
  for i in range(steps):
    index = rng.integers(0, num_train, batch_size)
    params, opt_state, metrics = step(params, opt_state, {f: train[f][index] for f in fields},
                                      jax.random.fold_in(key, i))
  predictions = [evaluate(params, {f: test[f][s:s + 500] for f in fields}, jax.random.fold_in(key, steps + s))
                 for s in range(0, len(test["object_depth"]), 500)]
  depth = np.concatenate([np.asarray(p["depth"]) for p in predictions])
  yaw = np.concatenate([np.asarray(p["yaw"]) for p in predictions])
  return depth, yaw, {k: float(v) for k, v in metrics.items()}


def error_table(test, depth, yaw) -> dict:
  abs_rel = np.abs(depth - test["object_depth"]) / test["object_depth"]
  yaw_err = np.asarray(crop_depth.yaw_error_deg(jnp.asarray(yaw), jnp.asarray(test["yaw_target"])))
  valid = test["yaw_valid"] > 0
  off_axis = test["off_axis_deg"]
  bins = []
  for lo, hi in zip(OFF_AXIS_BINS_DEG, OFF_AXIS_BINS_DEG[1:]):
    sel = (off_axis >= lo) & (off_axis < hi)
    bins.append(dict(off_axis_deg=[lo, hi], count=int(sel.sum()), depth_abs_rel=float(abs_rel[sel].mean()),
                     yaw_count=int((sel & valid).sum()), yaw_error_deg=float(yaw_err[sel & valid].mean())))
  return dict(depth_abs_rel=float(abs_rel.mean()), yaw_error_deg=float(yaw_err[valid].mean()), bins=bins)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", required=True)
  parser.add_argument("--data_dir", default="/tmp/kpe_crops_data")
  parser.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS), choices=list(VARIANTS))
  parser.add_argument("--num_train", type=int, default=20000)
  parser.add_argument("--num_test", type=int, default=2000)
  parser.add_argument("--crop_size", type=int, default=32)
  parser.add_argument("--steps", type=int, default=3000)
  parser.add_argument("--batch_size", type=int, default=64)
  parser.add_argument("--learning_rate", type=float, default=1e-3)
  parser.add_argument("--seeds", type=int, nargs="+", default=[0])
  args = parser.parse_args(argv)
  os.makedirs(args.out, exist_ok=True)
  results = dict(command="python -m zoo.kpe.crop_study " + " ".join(argv or []), args=vars(args), runs={})
  for name in args.variants:
    dataset, injection, variant, permute = VARIANTS[name]
    train = load_or_generate(args.data_dir, dataset, "train", args.num_train, args.crop_size)
    test = load_or_generate(args.data_dir, dataset, "test", args.num_test, args.crop_size)
    for seed in args.seeds:
      start = time.time()
      depth, yaw, last_train_metrics = train_and_evaluate(
          train, test, injection, variant, permute, steps=args.steps, batch_size=args.batch_size,
          learning_rate=args.learning_rate, seed=seed)
      table = error_table(test, depth, yaw)
      table.update(seconds=round(time.time() - start, 1), last_train_batch=last_train_metrics)
      results["runs"][f"{name}/seed{seed}"] = table
      print(f"{name:>24} seed {seed}: depth AbsRel {table['depth_abs_rel']:.4f}  yaw {table['yaw_error_deg']:.1f}°  "
            + "  ".join(f"[{b['off_axis_deg'][0]:g},{b['off_axis_deg'][1]:g})° {b['depth_abs_rel']:.3f}/"
                        f"{b['yaw_error_deg']:.1f}°" for b in table["bins"]) + f"  ({table['seconds']} s)", flush=True)
      with open(os.path.join(args.out, "crop_study.json"), "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
  import sys
  main(sys.argv[1:])
