"""The README's first command: train the main demo on the embedded data, evaluate it, say where it went.

  python -m tools.demo [--workdir /tmp/zoo_demo]

For now the demo is the digits classifier (experiments/core/digits_classifier.py:tiny); W.A.L.T's
moving-digits demo replaces it once that issue lands. Rerunning resumes/reuses the workdir.
"""
from __future__ import annotations

import argparse
import os
import sys


DEMO_CONFIG = "experiments/core/digits_classifier.py:tiny"


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", default="/tmp/zoo_demo/digits_classifier")
  args = parser.parse_args(argv)
  repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  os.chdir(repo_root)  # Experiment paths are relative to the repository root.
  from tools import eval as eval_tool
  from tools import train as train_tool
  print(f"[demo] Training {DEMO_CONFIG} into {args.workdir} (data is generated locally on first use).")
  train_tool.main(["--config", DEMO_CONFIG, "--workdir", args.workdir])
  print("[demo] Evaluating the EMA parameters of the final checkpoint on the test split.")
  eval_tool.main(["--config", DEMO_CONFIG, "--workdir", args.workdir])
  print(f"[demo] Done. Metrics: {args.workdir}/metrics.jsonl, eval: {args.workdir}/eval_step_*.json, "
        f"checkpoints: {args.workdir}/checkpoints, TensorBoard: tensorboard --logdir {args.workdir}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
