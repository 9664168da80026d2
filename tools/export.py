"""Export a training run's evaluation parameters for inference or shipping (no optimizer state).

  python -m tools.export --workdir /tmp/walt_demo/tokenizer --out demo_assets/walt/tokenizer/checkpoints --dtype float16

Writes params.npz (EMA parameters when the run keeps them, plus model state such as latent statistics),
config.json and export.json. Any consumer that restores a model from `<workdir>/checkpoints` (tools/eval.py,
tools/sample.py, W.A.L.T's tokenizer and frame-classifier loaders) accepts the export directory's parent as
the workdir.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from tools import _common  # noqa: F401  (environment defaults)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", required=True, help="The training run (reads <workdir>/checkpoints).")
  parser.add_argument("--out", required=True, help="Export directory (conventionally <new workdir>/checkpoints).")
  parser.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
  parser.add_argument("--step", type=int, default=None)
  parser.add_argument("--no_ema", action="store_true", help="Export the raw parameters even if EMA was kept.")
  args = parser.parse_args(argv)
  _common.setup_logging()
  from zoo.training import export
  try:
    info = export.export(os.path.join(args.workdir, "checkpoints"), args.out, dtype=args.dtype, step=args.step,
                         prefer_ema=not args.no_ema)
  except FileNotFoundError as e:
    parser.exit(1, f"error: {e}\n")
  size = os.path.getsize(os.path.join(args.out, export.PARAMS_FILE))
  print(json.dumps({**info, "out": args.out, "params_bytes": size}, indent=2))
  return 0


if __name__ == "__main__":
  sys.exit(main())
