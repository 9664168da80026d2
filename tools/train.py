"""Train an experiment; resumes from the newest checkpoint in --workdir.

  python -m tools.train --config experiments/core/digits_classifier.py:tiny --workdir /tmp/zoo/digits \
      [--config.total_steps=500] [--coordinator_address=host:port --num_processes=N --process_id=i]

Writes into the workdir: metrics.jsonl, TensorBoard events, train.log, config.json, checkpoints/.
SIGTERM checkpoints and exits 0; rerunning the same command resumes.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys

from tools import _common


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  _common.add_config_flag(parser)
  parser.add_argument("--workdir", required=True, help="Where metrics, logs and checkpoints go.")
  _common.add_distributed_flags(parser)
  args, config = _common.parse(parser, argv)
  _common.setup_logging(args.workdir)

  from zoo import sharding
  sharding.initialize_distributed(args.coordinator_address, args.num_processes, args.process_id)
  from zoo.training import loop
  result = loop.train_and_evaluate(config, args.workdir)
  summary = {"step": result.step, "preempted": result.preempted, **result.last_metrics,
             **result.eval_metrics}
  logging.info("Summary: %s", json.dumps(summary, sort_keys=True))
  print(f"Trained to step {result.step}{' (preempted; rerun to resume)' if result.preempted else ''}. "
        f"Metrics: {args.workdir}/metrics.jsonl  Checkpoints: {args.workdir}/checkpoints  "
        f"TensorBoard: tensorboard --logdir {args.workdir}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
