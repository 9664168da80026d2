"""Orbax checkpoints with named items: `state` (train state), `data_iter` (grain iterator), `config` (JSON).

* Async saves, keep the newest N (`config.checkpoint.keep`), half-written temporary directories cleaned at
  start.
* Restore targets carry the *current* mesh's shardings, so a checkpoint written on 8 devices restores
  onto 4 (or onto a TPU pod) unchanged.
* If the newest checkpoint cannot be read (corrupt or half-written), the previous one is used and a
  warning names the skipped step. Nothing is deleted on a failed read.
* Params-only restore (EMA preferred) for evaluation reads only those arrays.
Nothing is pickled: arrays go through tensorstore, the iterator state and config through JSON.
"""
from __future__ import annotations

import json
import logging
import os
import warnings
from typing import Any

import flax
import grain.python as grain
import jax
import ml_collections
import orbax.checkpoint as ocp

from zoo.training.state import TrainState

STATE, DATA_ITER, CONFIG = "state", "data_iter", "config"


class CheckpointRestoreError(RuntimeError):
  """No checkpoint in the directory could be restored."""


def _to_dict(state: TrainState) -> dict:
  return flax.serialization.to_state_dict(state)


def _restore_args(abstract_dict: Any) -> Any:
  def one(x):
    if isinstance(x, jax.ShapeDtypeStruct) and x.sharding is not None:
      return ocp.ArrayRestoreArgs(sharding=x.sharding, global_shape=x.shape, dtype=x.dtype)
    return ocp.RestoreArgs()
  return jax.tree.map(one, abstract_dict)


class Checkpointer:
  """Thin wrapper over `ocp.CheckpointManager` owning the zoo's item layout and fallback policy."""

  def __init__(self, directory: str, *, keep: int = 3, async_save: bool = True, read_only: bool = False):
    self.directory = os.path.abspath(directory)
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep,
        create=not read_only,
        read_only=read_only,
        cleanup_tmp_directories=not read_only,
        enable_async_checkpointing=async_save,
    )
    handlers = {
        STATE: ocp.PyTreeCheckpointHandler(),
        DATA_ITER: grain.PyGrainCheckpointHandler(),
        CONFIG: ocp.JsonCheckpointHandler(),
    }
    self.manager = ocp.CheckpointManager(self.directory, options=options, item_handlers=handlers)

  # --- saving ---------------------------------------------------------------------------------------
  def save(self, step: int, state: TrainState, data_iter: Any | None,
           config: ml_collections.ConfigDict, *, force: bool = False) -> bool:
    items = {
        STATE: ocp.args.PyTreeSave(_to_dict(state)),
        CONFIG: ocp.args.JsonSave(json.loads(config.to_json_best_effort())),
    }
    if data_iter is not None:
      items[DATA_ITER] = grain.PyGrainCheckpointSave(data_iter)
    return self.manager.save(step, args=ocp.args.Composite(**items), force=force)

  def wait(self) -> None:
    self.manager.wait_until_finished()

  def close(self) -> None:
    self.manager.wait_until_finished()
    self.manager.close()

  def steps(self) -> list[int]:
    self.manager.reload()
    return sorted(self.manager.all_steps())

  def latest_step(self) -> int | None:
    steps = self.steps()
    return steps[-1] if steps else None

  # --- restoring ------------------------------------------------------------------------------------
  def _each_step_newest_first(self, what: str, fn):
    steps = self.steps()
    if not steps:
      return None
    errors = []
    for step in reversed(steps):
      try:
        return step, fn(step)
      except Exception as e:  # orbax/tensorstore raise many types for truncated or missing files.
        message = (f"Checkpoint step {step} in {self.directory} could not be restored ({what}): "
                   f"{type(e).__name__}: {str(e)[:300]}. Falling back to the previous checkpoint.")
        warnings.warn(message, RuntimeWarning)
        logging.warning(message)
        errors.append((step, e))
    raise CheckpointRestoreError(
        f"None of the checkpoints {steps} in {self.directory} could be restored; last error: "
        f"{errors[-1][1]!r}. Move the directory aside to start fresh.")

  def restore(self, abstract_state: TrainState, data_iter: Any | None = None):
    """Restores the newest readable (state, data iterator) onto the shardings in `abstract_state`.

    Returns (step, state) or None when the directory holds no checkpoint. `data_iter` is updated in place.
    """
    target = _to_dict(abstract_state)

    def read(step):
      items = {STATE: ocp.args.PyTreeRestore(item=target, restore_args=_restore_args(target))}
      if data_iter is not None:
        items[DATA_ITER] = grain.PyGrainCheckpointRestore(data_iter)
      restored = self.manager.restore(step, args=ocp.args.Composite(**items))
      return flax.serialization.from_state_dict(abstract_state, restored[STATE])

    return self._each_step_newest_first("train state", read)

  def restore_params(self, abstract_params: Any, abstract_model_state: Any, *, prefer_ema: bool = True,
                     step: int | None = None):
    """Reads only the parameters (EMA when saved and preferred) and the model's non-param state.

    Returns (step, params, model_state, which) with which in {"ema_params", "params"}.
    """
    def read(step):
      metadata = self.manager.item_metadata(step)[STATE]
      tree = metadata.tree if hasattr(metadata, "tree") else metadata
      which = "ema_params" if prefer_ema and tree.get("ema_params") is not None else "params"
      target = {which: abstract_params, "model_state": abstract_model_state}
      restored = self.manager.restore(step, args=ocp.args.Composite(**{
          STATE: ocp.args.PyTreeRestore(item=target, restore_args=_restore_args(target),
                                        partial_restore=True)}))[STATE]
      return restored[which], restored["model_state"], which

    if step is not None:
      return (step, *read(step))
    result = self._each_step_newest_first("parameters", read)
    if result is None:
      return None
    step, (params, model_state, which) = result
    return step, params, model_state, which

  def restore_config(self, step: int | None = None) -> ml_collections.ConfigDict:
    step = self.latest_step() if step is None else step
    restored = self.manager.restore(step, args=ocp.args.Composite(**{CONFIG: ocp.args.JsonRestore()}))
    return ml_collections.ConfigDict(restored[CONFIG])
