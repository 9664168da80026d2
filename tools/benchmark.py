"""Benchmarks, each measured side by side in one run on this machine (ratios, not bare times).

  python -m tools.benchmark core      # matmul peak; digits train step: steps/s and MFU vs that peak
  python -m tools.benchmark kernels   # window attention / causal conv3d vs XLA and torch (zoo/kernels)
  python -m tools.benchmark ib        # jitted IB iterations vs numpy (zoo/ib)
  python -m tools.benchmark walt      # W.A.L.T transformer (demo config): train-step MFU vs the matmul peak,
                                      # DDIM-50 sampling vs 50 forwards, input pipeline as % of a step (zoo/walt)
"""
from __future__ import annotations

import argparse
import importlib
import sys

from tools import _common  # noqa: F401  (environment defaults)

SUITES = {"kernels": "zoo.kernels.benchmark", "ib": "zoo.ib.benchmark", "walt": "zoo.walt.benchmark"}


def core_benchmark(steps: int = 100) -> dict:
  """Digits tiny train step on all local devices: steps/s and MFU against the measured matmul peak."""
  import jax
  from zoo import config as zconfig
  from zoo import sharding as zsharding
  from zoo.training import loop, perf
  from zoo.training import state as state_lib
  from zoo.training.task import get_task

  config = zconfig.load_config("experiments/core/digits_classifier.py:tiny")
  task = get_task(config.task)
  mesh = zsharding.make_mesh(config.mesh.to_dict())
  rules = [tuple(r) for r in config.axis_rules]
  state, step, batch_sh, abstract_batch = state_lib.build_train_step(task, config, mesh, rules)
  batch = jax.tree.map(lambda x, s: jax.device_put(jax.numpy.zeros(x.shape, x.dtype), s), abstract_batch, batch_sh)
  with jax.set_mesh(mesh):
    compiled = step.lower(state, batch).compile()
    state, _ = compiled(state, batch)
    jax.block_until_ready(state)
    # Dispatched like the training loop: asynchronously, a bounded number of steps in flight.
    state, seconds = perf.time_pipelined_steps(compiled, state, batch, steps, loop.MAX_STEPS_IN_FLIGHT)
  peak = perf.measure_matmul_peak()
  flops = perf.compiled_flops(compiled) or 0.0
  return {"matmul_peak_gflops": peak / 1e9, "step_gflop": flops / 1e9, "steps_per_sec": 1 / seconds,
          "mfu": flops / seconds / peak}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("suite", choices=["core", *SUITES])
  args, rest = parser.parse_known_args(argv)
  if args.suite == "core":
    result = core_benchmark()
    print(f"f32 matmul peak (1024^3, measured now): {result['matmul_peak_gflops']:.1f} GFLOP/s")
    print(f"digits tiny train step: {result['step_gflop']:.3f} GFLOP, {result['steps_per_sec']:.1f} steps/s, "
          f"MFU {100 * result['mfu']:.1f}% of the measured peak")
    return 0
  try:
    module = importlib.import_module(SUITES[args.suite])
  except ModuleNotFoundError as e:
    parser.exit(2, f"error: benchmark suite {args.suite!r} is not available ({e}).\n")
  module.main(rest)
  return 0


if __name__ == "__main__":
  sys.exit(main())
