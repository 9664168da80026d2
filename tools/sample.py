"""Draw samples from a trained generative experiment (restores params only, EMA preferred).

  python -m tools.sample --config experiments/walt/<name>.py:tiny --workdir /tmp/zoo/walt [--out DIR]

The experiment's task provides `sample(model, config, rng, outdir, mesh) -> {name: path}`; tasks that do not
sample (e.g. the digits classifier) are refused with a clear message.
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
  parser.add_argument("--step", type=int, default=None)
  parser.add_argument("--out", default=None, help="Default: <workdir>/samples/step_<N>.")
  parser.add_argument("--seed", type=int, default=0)
  args, config = _common.parse(parser, argv)
  _common.setup_logging()

  import jax
  from zoo.training import loop
  from zoo.training.task import get_task

  task = get_task(config.task)
  if task.sample is None:
    parser.exit(2, f"error: task {config.task!r} does not sample; use tools/eval.py for it.\n")
  checkpoint_dir = args.checkpoint_dir or os.path.join(args.workdir, "checkpoints")
  try:
    task, mesh, model, step, which = loop.restore_for_eval(config, checkpoint_dir, step=args.step)
  except FileNotFoundError as e:
    parser.exit(1, f"error: {e}\n")
  outdir = args.out or os.path.join(args.workdir, "samples", f"step_{step}")
  os.makedirs(outdir, exist_ok=True)
  with jax.set_mesh(mesh):
    written = task.sample(model, config, jax.random.key(args.seed), outdir, mesh)
  print(json.dumps({"step": step, "params": which, **written}, indent=2))
  return 0


if __name__ == "__main__":
  sys.exit(main())
