"""Evaluate a trained experiment: restore parameters only (EMA preferred), run the config's evaluators.

  python -m tools.eval --config experiments/core/digits_classifier.py:tiny --workdir /tmp/zoo/digits

Reads <workdir>/checkpoints (or --checkpoint_dir), writes <workdir>/eval_step_<N>.json (or --output) and
prints the metrics. The mesh is the config's on *this* machine: a checkpoint trained on a pod evaluates
on a laptop.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from tools import _common


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  _common.add_config_flag(parser)
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--checkpoint_dir", default=None, help="Default: <workdir>/checkpoints.")
  parser.add_argument("--step", type=int, default=None, help="Default: the newest readable checkpoint.")
  parser.add_argument("--no_ema", action="store_true", help="Evaluate raw params even if EMA was saved.")
  parser.add_argument("--output", default=None, help="Default: <workdir>/eval_step_<N>.json.")
  _common.add_distributed_flags(parser)
  args, config = _common.parse(parser, argv)
  _common.setup_logging()

  from zoo import sharding
  sharding.initialize_distributed(args.coordinator_address, args.num_processes, args.process_id)
  import jax
  from zoo.training import loop

  checkpoint_dir = args.checkpoint_dir or os.path.join(args.workdir, "checkpoints")
  try:
    task, mesh, model, step, which = loop.restore_for_eval(config, checkpoint_dir, step=args.step,
                                                           prefer_ema=not args.no_ema)
  except FileNotFoundError as e:
    parser.exit(1, f"error: {e}\n")
  results = {"step": step, "params": which}
  with jax.set_mesh(mesh):
    for name, evaluator in task.evaluators(config).items():
      for key, value in evaluator(model, mesh).items():
        results[f"{name}/{key}"] = float(value)
  output = args.output or os.path.join(args.workdir, f"eval_step_{step}.json")
  if jax.process_index() == 0:
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    with open(output, "w") as f:
      json.dump(results, f, indent=2, sort_keys=True)
  print(json.dumps(results, indent=2, sort_keys=True))
  print(f"Wrote {output}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
