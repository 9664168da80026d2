"""grain input pipelines with per-process sharding and a checkpointable iterator.

Each process reads a disjoint shard of the records (`ShardOptions(index, count)`), shuffles with a seed
that is the same on every process, and batches `global_batch / process_count` examples. The iterator's
state (a few integers of JSON) is saved with every checkpoint, so a resumed run sees exactly the batches
an uninterrupted run would have seen.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import grain.python as grain

from zoo.training.task import DataShard


def make_loader(source: Any, *, batch_size_per_process: int, shard: DataShard, seed: int,
                map_fn: Callable[[Any], Any] | None = None, shuffle: bool = True,
                num_epochs: int | None = None, drop_remainder: bool = True,
                worker_count: int = 0) -> grain.DataLoader:
  """A grain DataLoader over a random-access `source` (tfds ArrayRecord source or in-memory list).

  `num_epochs=None` repeats forever (training). `worker_count=0` keeps everything in-process, which is
  deterministic and cheap for the small generated datasets; raise it for real datasets.
  """
  sampler = grain.IndexSampler(
      num_records=len(source),
      shard_options=grain.ShardOptions(shard_index=shard.index, shard_count=shard.count,
                                       drop_remainder=True),
      shuffle=shuffle,
      num_epochs=num_epochs,
      seed=seed,
  )
  operations: list[Any] = []
  if map_fn is not None:
    operations.append(_Map(map_fn))
  operations.append(grain.Batch(batch_size_per_process, drop_remainder=drop_remainder))
  return grain.DataLoader(data_source=source, sampler=sampler, operations=operations,
                          worker_count=worker_count)


class _Map(grain.MapTransform):
  def __init__(self, fn):
    self._fn = fn

  def map(self, element):
    return self._fn(element)


def per_process_batch_size(global_batch_size: int, shard: DataShard) -> int:
  if global_batch_size % shard.count:
    raise ValueError(f"Global batch size {global_batch_size} is not divisible by the {shard.count} "
                     "processes; change config.batch_size.")
  return global_batch_size // shard.count
