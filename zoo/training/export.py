"""Inference exports: a trained run's evaluation parameters (EMA when kept) + model state + config, small
enough to ship (no optimizer state, optionally float16), and restorable exactly like a checkpoint.

Layout of an export directory (by convention `<workdir>/checkpoints`, so a consumer that is pointed at a
workdir cannot tell an export from a training run):

  params.npz    flattened arrays: "params/<path>" and "model_state/<path>" ('/'-joined pure-dict keys)
  config.json   the experiment config the run trained with
  export.json   {"step", "which" (ema_params | params), "dtype", "source"}

`tools/export.py` writes one; `loop.restore_trained_model` reads one when it finds `params.npz`.
"""
from __future__ import annotations

import json
import os
from typing import Any

import jax
import numpy as np

PARAMS_FILE = "params.npz"
CONFIG_FILE = "config.json"
INFO_FILE = "export.json"


def is_export(directory: str) -> bool:
  return os.path.exists(os.path.join(directory, PARAMS_FILE))


def _array_name(prefix: str, path) -> str:
  """'params/layers/0/kernel' for a pure-dict key path: the name an array is stored under."""
  return prefix + "/" + "/".join(str(getattr(p, "key", getattr(p, "idx", p))) for p in path)


def _flatten(tree: Any, prefix: str) -> dict[str, np.ndarray]:
  return {_array_name(prefix, path): np.asarray(jax.device_get(leaf))
          for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]}


def _unflatten_like(abstract: Any, arrays: dict[str, np.ndarray], prefix: str, source: str) -> Any:
  leaves = []
  for path, leaf in jax.tree_util.tree_flatten_with_path(abstract)[0]:
    key = _array_name(prefix, path)
    if key not in arrays:
      raise ValueError(f"{source} has no array {key!r}: it was exported from a different model.")
    value = arrays[key]
    if value.shape != leaf.shape:
      raise ValueError(f"{source}: {key!r} has shape {value.shape}, the model expects {leaf.shape}.")
    leaves.append(value.astype(leaf.dtype))
  return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(abstract), leaves)


def export(checkpoint_dir: str, out_dir: str, *, dtype: str = "float32", step: int | None = None,
           prefer_ema: bool = True) -> dict:
  """Writes the export of `checkpoint_dir` (a training run's checkpoints) to `out_dir`; returns its info."""
  from zoo import config as zconfig
  from zoo.training import loop
  config, _, _, model, restored_step, which = loop.restore_trained_model(checkpoint_dir, step=step,
                                                                         prefer_ema=prefer_ema)
  from flax import nnx
  _, params, model_state = nnx.split(model, nnx.Param, ...)
  arrays = {**_flatten(nnx.to_pure_dict(params), "params"), **_flatten(nnx.to_pure_dict(model_state), "model_state")}
  arrays = {k: v.astype(dtype) if np.issubdtype(v.dtype, np.floating) else v for k, v in arrays.items()}
  os.makedirs(out_dir, exist_ok=True)
  with open(os.path.join(out_dir, PARAMS_FILE), "wb") as f:
    np.savez_compressed(f, **arrays)
  with open(os.path.join(out_dir, CONFIG_FILE), "w") as f:
    f.write(zconfig.to_json(config))
  info = {"step": int(restored_step), "which": which, "dtype": dtype, "source": os.path.abspath(checkpoint_dir)}
  with open(os.path.join(out_dir, INFO_FILE), "w") as f:
    json.dump(info, f, indent=2)
  return info


def restore(directory: str, devices: list | None = None):
  """(config, task, mesh, model, step, which) from an export directory, sharded on `devices`' mesh."""
  from zoo import config as zconfig
  from zoo import sharding as zsharding
  from zoo.training import state as state_lib
  from zoo.training.task import get_task
  with open(os.path.join(directory, CONFIG_FILE)) as f:
    config = zconfig.from_json(f.read())
  with open(os.path.join(directory, INFO_FILE)) as f:
    info = json.load(f)
  task = get_task(config.task)
  mesh = zsharding.make_mesh(config.mesh.to_dict(), devices)
  rules = [tuple(rule) for rule in config.axis_rules]
  with jax.set_mesh(None):
    spec = state_lib.model_spec(task, config)
  source = os.path.join(directory, PARAMS_FILE)
  with np.load(source) as data:
    arrays = {k: data[k] for k in data.files}
  params = _unflatten_like(spec.abstract_params, arrays, "params", source)
  model_state = _unflatten_like(spec.abstract_model_state, arrays, "model_state", source)
  params = jax.device_put(params, zsharding.logical_shardings(spec.abstract_params, spec.logical_params, mesh, rules))
  model_state = jax.device_put(model_state, zsharding.logical_shardings(
      spec.abstract_model_state, spec.logical_model_state, mesh, rules))
  model = state_lib.merge_model(spec, params, model_state)
  model.eval()
  return config, task, mesh, model, int(info["step"]), info["which"]
