"""What a paper hands the training loop, and the registry that finds it by name.

A task is resolved from `config.task = "<package>.<name>"`: the loop imports `zoo.<package>.tasks`, whose
import registers its tasks with `@register("<package>.<name>")`. The core never imports a paper.
"""
from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable, Mapping, Optional, Protocol

import jax
import ml_collections
from flax import nnx

Batch = Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class DataShard:
  """Which slice of the data this process reads (grain ShardOptions semantics)."""
  index: int
  count: int


class CheckpointableIterator(Protocol):
  """A per-process batch iterator whose position can be saved (grain's DataLoader iterators are)."""

  def __next__(self) -> Batch: ...

  def get_state(self) -> Any: ...

  def set_state(self, state: Any) -> None: ...


class Evaluator(Protocol):
  """Runs on the (EMA) model; returns scalar metrics. Built once, called at every eval step."""

  def __call__(self, model: nnx.Module, mesh: jax.sharding.Mesh) -> dict[str, float]: ...


@dataclasses.dataclass(frozen=True)
class Task:
  """A paper's training recipe.

  Attributes:
    build_model: (config, rngs) -> nnx.Module. Parameters carry logical axis names via
      `nnx.with_partitioning`; the loop runs this abstractly first, then jitted with output shardings.
    loss_fn: (model, batch, rng, step) -> (scalar loss, dict of scalar metrics). Traced inside the train
      step; `batch` holds global arrays sharded along their leading `batch` axis; `step` is the int32
      number of updates applied so far (for losses switched on after a warm-up, e.g. a GAN term).
    train_data: (config, shard) -> iterable (a grain dataset, see data_pipelines/grain_pipeline.py) over
      this process's shard, yielding per-process numpy batches of `config.batch_size / process_count`
      examples. Its iterator's state (`get_state`/`set_state`) is checkpointed.
    abstract_batch: config -> pytree of jax.ShapeDtypeStruct for one *global* batch; used to compile the
      train step before data arrives, and by tools/aot_compile.py where there is no data at all.
    evaluators: config -> {name: Evaluator}. Run every `config.eval_every_steps` and by tools/eval.py.
    sample: optional (model, config, rng, outdir, mesh) -> dict of written paths, for tools/sample.py.
  """
  name: str
  build_model: Callable[[ml_collections.ConfigDict, nnx.Rngs], nnx.Module]
  loss_fn: Callable[[nnx.Module, Batch, jax.Array, jax.Array], tuple[jax.Array, dict[str, jax.Array]]]
  train_data: Callable[[ml_collections.ConfigDict, DataShard], Any]
  abstract_batch: Callable[[ml_collections.ConfigDict], Any]
  evaluators: Callable[[ml_collections.ConfigDict], dict[str, Evaluator]] = lambda config: {}
  sample: Optional[Callable[..., dict[str, str]]] = None


_TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
  if task.name in _TASKS and _TASKS[task.name] is not task:
    raise ValueError(f"Task {task.name!r} registered twice.")
  _TASKS[task.name] = task
  return task


def get_task(name: str) -> Task:
  """Imports `zoo.<package>.tasks` for `name = "<package>.<task>"` and returns the registered task."""
  if name in _TASKS:
    return _TASKS[name]
  package = name.split(".", 1)[0]
  try:
    importlib.import_module(f"zoo.{package}.tasks")
  except ModuleNotFoundError as e:
    if e.name in (f"zoo.{package}", f"zoo.{package}.tasks"):
      raise ValueError(f"Unknown task {name!r}: no module zoo/{package}/tasks.py.") from None
    raise
  if name not in _TASKS:
    known = sorted(t for t in _TASKS if t.startswith(package + "."))
    raise ValueError(f"Unknown task {name!r}; zoo.{package}.tasks registers {known}.")
  return _TASKS[name]
