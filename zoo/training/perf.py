"""Model-FLOPs utilisation against this machine's *measured* matmul peak.

The peak is measured once per (platform, device kind, device count) with a large f32 matmul on the
default device and cached in ~/.cache/zoo/matmul_peak.json (override the path with $ZOO_CACHE_DIR). On
CPU all fake devices share the host's cores, so the host peak is the whole machine's budget; on
accelerators the per-device peak is multiplied by the device count.

GPU caveats, seen on one H200 (2026-11-26, jax 0.11.2): a 1024³ matmul is far too small to reach an
accelerator's rate, so accelerators are measured at 8192³ (there: 443 TFLOP/s f32, i.e. TF32, and 792
bf16); and XLA's cost analysis of a W.A.L.T-XL train step reported 1.44 TFLOP against 57 TFLOP counted by
hand (1/40), so FLOPs from `compiled_flops` understate GPU work. Read MFU on GPU with a hand count.
"""
from __future__ import annotations

import collections
import json
import os
import time

import jax
import jax.numpy as jnp


def _cache_path() -> str:
  root = os.environ.get("ZOO_CACHE_DIR", os.path.expanduser("~/.cache/zoo"))
  return os.path.join(root, "matmul_peak.json")


def peak_matmul_size() -> int:
  """Side of the square matmul that reaches this backend's rate: 1024 on CPU, 8192 on accelerators."""
  return 1024 if jax.default_backend() == "cpu" else 8192


def measure_matmul_peak(n: int | None = None, dtype=jnp.float32, repeats: int = 5) -> float:
  """FLOP/s of an n×n×n matmul on the default device (best of `repeats`); n defaults to
  `peak_matmul_size()` (see the module docstring)."""
  if n is None:
    n = peak_matmul_size()
  key = jax.random.key(0)
  a = jax.random.normal(key, (n, n), dtype)
  b = jax.random.normal(jax.random.fold_in(key, 1), (n, n), dtype)
  matmul = jax.jit(lambda a, b: a @ b)
  matmul(a, b).block_until_ready()
  best = float("inf")
  for _ in range(repeats):
    start = time.perf_counter()
    matmul(a, b).block_until_ready()
    best = min(best, time.perf_counter() - start)
  return 2 * n**3 / best


def machine_peak_flops(num_devices: int | None = None) -> float:
  """Total f32 matmul FLOP/s available to this process's devices: the best ever measured here.

  A measurement taken while other processes share the cores can only *under*-estimate the peak (and so
  over-state MFU), so each call measures again (~0.5 s) and the cache keeps the maximum.
  """
  devices = jax.local_devices()
  num_devices = len(devices) if num_devices is None else num_devices
  platform = devices[0].platform
  key = f"{platform}:{devices[0].device_kind}"
  path = _cache_path()
  cache = {}
  if os.path.exists(path):
    try:
      with open(path) as f:
        cache = json.load(f)
    except (OSError, ValueError):
      cache = {}
  measured = measure_matmul_peak()
  if measured > cache.get(key, 0.0):
    cache[key] = measured
    try:
      os.makedirs(os.path.dirname(path), exist_ok=True)
      with open(path, "w") as f:
        json.dump(cache, f, indent=2)
    except OSError:
      pass  # A read-only home only costs a re-measurement next time.
  per_device = cache[key]
  return per_device if platform == "cpu" else per_device * num_devices


def time_pipelined_steps(step, state, batch, num_steps: int, max_in_flight: int):
  """Seconds per step of `num_steps` calls `state, aux = step(state, batch)` dispatched the way the training
  loop runs them: asynchronously, waiting on `aux` (the metrics; the state is donated) of the step
  `max_in_flight` back, so host dispatch overlaps device work. Returns (final state, seconds per step)."""
  in_flight = collections.deque()
  start = time.perf_counter()
  for _ in range(num_steps):
    state, aux = step(state, batch)
    in_flight.append(jax.tree.leaves(aux)[0])
    if len(in_flight) > max_in_flight:
      in_flight.popleft().block_until_ready()
  jax.block_until_ready(state)
  return state, (time.perf_counter() - start) / max(num_steps, 1)


def compiled_flops(compiled) -> float | None:
  """FLOPs of one call of a compiled computation, from XLA's cost analysis (None if unavailable)."""
  try:
    analysis = compiled.cost_analysis()
  except Exception:  # Some backends do not implement it.
    return None
  if isinstance(analysis, (list, tuple)):
    analysis = analysis[0] if analysis else {}
  flops = (analysis or {}).get("flops")
  return float(flops) if flops else None


def memory_report(compiled) -> dict[str, int]:
  """Per-device bytes of the compiled computation's arguments, outputs, temporaries and code."""
  try:
    m = compiled.memory_analysis()
  except Exception:
    return {}
  if m is None:
    return {}
  fields = ("argument_size_in_bytes", "output_size_in_bytes", "alias_size_in_bytes",
            "temp_size_in_bytes", "generated_code_size_in_bytes")
  return {f: int(getattr(m, f, 0) or 0) for f in fields}


def format_bytes(n: float) -> str:
  for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
    if abs(n) < 1024 or unit == "TiB":
      return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
    n /= 1024
  return f"{n:.1f} TiB"
