"""Metric writers: CLU (TensorBoard + console log) plus a JSON-lines file that tests and tools read.

`workdir/metrics.jsonl` holds one {"step": s, name: value, ...} object per write, process 0 only. On resume
the lines past the restored step are dropped first, so the file reads as one uninterrupted run.
"""
from __future__ import annotations

import json
import os
from typing import Mapping

import jax
from clu import metric_writers

METRICS_FILE = "metrics.jsonl"


class JsonlWriter(metric_writers.MetricWriter):
  def __init__(self, path: str):
    self._path = path

  def truncate_after(self, step: int) -> None:
    if not os.path.exists(self._path):
      return
    with open(self._path) as f:
      lines = [line for line in f if line.strip() and json.loads(line)["step"] <= step]
    with open(self._path, "w") as f:
      f.writelines(lines)

  def write_scalars(self, step: int, scalars: Mapping[str, float]) -> None:
    with open(self._path, "a") as f:
      f.write(json.dumps({"step": int(step), **{k: float(v) for k, v in scalars.items()}}) + "\n")

  def write_summaries(self, step, values, metadata=None): pass
  def write_images(self, step, images): pass
  def write_videos(self, step, videos): pass
  def write_audios(self, step, audios, *, sample_rate): pass
  def write_texts(self, step, texts): pass
  def write_histograms(self, step, arrays, num_buckets=None): pass
  def write_pointcloud(self, step, point_clouds, *, point_colors=None, configs=None): pass
  def write_hparams(self, hparams): pass
  def flush(self): pass
  def close(self): pass


def make_writers(workdir: str) -> tuple[metric_writers.MetricWriter, JsonlWriter | None]:
  """(multi-writer for everything, the JSONL writer or None on non-zero processes)."""
  clu_writer = metric_writers.create_default_writer(
      workdir, just_logging=jax.process_index() > 0, asynchronous=False)
  if jax.process_index() > 0:
    return clu_writer, None
  jsonl = JsonlWriter(os.path.join(workdir, METRICS_FILE))
  return metric_writers.MultiWriter([clu_writer, jsonl]), jsonl


def read_metrics(workdir: str) -> list[dict]:
  path = os.path.join(workdir, METRICS_FILE)
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]
