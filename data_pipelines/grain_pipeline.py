"""grain input pipelines: per-process shards of *process-count-invariant* global batches.

Global batch `b` is always the same set of records, `perm_e[b*G : (b+1)*G]` (G = global batch size, one
seeded permutation per epoch `e`), whatever the number of processes; process `p` of `P` reads only its
contiguous slice of it, `G/P` records. So one process with 4 devices and two processes with 2 devices
each train on identical batches (tests/training/test_multiprocess.py), and each process reads only
what it feeds to its own devices.

The iterator is a grain `DatasetIterator`; its state (the next local position, a few bytes of JSON) is
saved with every checkpoint, so a resumed run sees exactly the batches an uninterrupted run would have.
"""
from __future__ import annotations

import functools
import sys
from typing import Any, Callable

import grain
import numpy as np

from zoo.training.task import DataShard


def per_process_batch_size(global_batch_size: int, shard: DataShard) -> int:
  if global_batch_size % shard.count:
    raise ValueError(f"Global batch size {global_batch_size} is not divisible by the {shard.count} "
                     "processes; change config.batch_size.")
  return global_batch_size // shard.count


class GlobalBatchIndex:
  """Maps a process-local example position to a record id (see the module docstring)."""

  def __init__(self, num_records: int, global_batch_size: int, shard: DataShard, seed: int,
               shuffle: bool = True):
    if num_records < global_batch_size:
      raise ValueError(f"The dataset has {num_records} records, fewer than one global batch "
                       f"({global_batch_size}).")
    self.num_records = num_records
    self.global_batch_size = global_batch_size
    self.local_batch_size = per_process_batch_size(global_batch_size, shard)
    self.shard = shard
    self.seed = seed
    self.shuffle = shuffle

  @functools.lru_cache(maxsize=2)
  def _permutation(self, epoch: int) -> np.ndarray:
    if not self.shuffle:
      return np.arange(self.num_records)
    return np.random.default_rng([self.seed, epoch]).permutation(self.num_records)

  def __call__(self, local_position: int) -> int:
    batch, offset = divmod(int(local_position), self.local_batch_size)
    global_position = (batch * self.global_batch_size + self.shard.index * self.local_batch_size + offset)
    # Epochs are cut at whole global batches so every batch comes from one permutation.
    batches_per_epoch = self.num_records // self.global_batch_size
    epoch, position_in_epoch = divmod(global_position, batches_per_epoch * self.global_batch_size)
    return int(self._permutation(epoch)[position_in_epoch])

  def num_local_examples(self, num_epochs: int | None) -> int:
    batches_per_epoch = self.num_records // self.global_batch_size
    if num_epochs is None:
      return (sys.maxsize // (4 * self.global_batch_size)) * self.local_batch_size
    return num_epochs * batches_per_epoch * self.local_batch_size


def make_loader(source: Any, *, global_batch_size: int, shard: DataShard, seed: int,
                map_fn: Callable[[Any], Any] | None = None, shuffle: bool = True,
                num_epochs: int | None = None, num_threads: int = 2) -> grain.IterDataset:
  """A grain dataset over a random-access `source` (tfds ArrayRecord source, list, ...).

  Yields dicts of numpy arrays with leading dimension `global_batch_size / shard.count`. Iterate it with
  `iter(...)`; the iterator has `get_state()` / `set_state()`. `num_epochs=None` repeats forever.
  """
  index = GlobalBatchIndex(len(source), global_batch_size, shard, seed, shuffle)
  map_fn = map_fn or (lambda record: record)
  dataset = (grain.MapDataset.range(index.num_local_examples(num_epochs))
             .map(lambda position: map_fn(source[index(position)]))
             .batch(index.local_batch_size, drop_remainder=True))
  return dataset.to_iter_dataset(grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=4))
