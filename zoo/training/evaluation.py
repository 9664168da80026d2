"""Evaluation helpers shared by the papers' evaluators.

`sharded_eval_batches` splits a finite dataset over processes, pads the tail so every process runs the
same number of equally shaped global batches (a `mask` marks real examples), and yields global arrays.
Evaluators then reduce *sums* inside jit, so results are exact and identical on every process.
"""
from __future__ import annotations

import math
from typing import Iterator, Mapping

import jax
import numpy as np
from jax.sharding import Mesh

from zoo import sharding as zsharding


def sharded_eval_batches(arrays: Mapping[str, np.ndarray], global_batch_size: int, mesh: Mesh,
                         rules) -> Iterator[dict[str, jax.Array]]:
  """Yields global batches of `arrays` (all with the same leading length) plus a float `mask`."""
  n = len(next(iter(arrays.values())))
  processes, index = jax.process_count(), jax.process_index()
  local_batch = global_batch_size // processes
  per_process = math.ceil(n / processes)
  num_batches = max(1, math.ceil(per_process / local_batch))
  start = index * per_process
  local_ids = np.arange(start, min(start + per_process, n))
  padded = num_batches * local_batch
  mask = np.zeros((padded,), np.float32)
  mask[:len(local_ids)] = 1.0
  ids = np.concatenate([local_ids, np.zeros((padded - len(local_ids),), np.int64)]).astype(np.int64)
  for b in range(num_batches):
    sl = slice(b * local_batch, (b + 1) * local_batch)
    local = {k: np.asarray(v)[ids[sl]] for k, v in arrays.items()}
    local["mask"] = mask[sl]
    yield zsharding.global_batch_from_process_local(local, mesh, rules)
