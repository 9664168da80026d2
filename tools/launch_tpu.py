"""Print (or run) the commands that start an experiment on a Cloud TPU pod slice or a SLURM GPU cluster.

Dry-run by default: nothing is created until you pass --execute.

  python -m tools.launch_tpu --name walt-xl --accelerator v5litepod-64 --zone us-west4-a \
      --config experiments/core/digits_classifier.py --workdir gs://my-bucket/zoo/digits
  python -m tools.launch_tpu --sbatch --nodes 4 --gpus_per_node 8 \
      --config experiments/core/digits_classifier.py --workdir /shared/zoo/digits > job.sbatch

Every TPU worker runs the same `python -m tools.train` command; `jax.distributed.initialize()` finds the
other workers by itself on TPU VMs and under SLURM (zoo/sharding.py:initialize_distributed). Compile
the config for the slice first with tools/aot_compile.py: it tells you whether it fits.
"""
from __future__ import annotations

import argparse
import shlex
import subprocess
import sys

REPO_URL_PLACEHOLDER = "<this repository's git URL>"


def tpu_commands(args) -> list[list[str]]:
  train = (f"cd ~/zoo && python -m tools.train --config {shlex.quote(args.config)} "
           f"--workdir {shlex.quote(args.workdir)} " + " ".join(map(shlex.quote, args.overrides)))
  setup = (f"git clone {args.repo} ~/zoo || (cd ~/zoo && git pull); cd ~/zoo && "
           "python3 -m pip install -e '.[tpu]'")
  base = ["gcloud", "compute", "tpus", "tpu-vm"]
  where = [f"--zone={args.zone}"] + ([f"--project={args.project}"] if args.project else [])
  create = base + ["create", args.name, f"--accelerator-type={args.accelerator}",
                   f"--version={args.runtime_version}"] + where
  if args.spot:
    create.append("--spot")
  ssh = lambda command: base + ["ssh", args.name, "--worker=all", f"--command={command}"] + where
  return [create, ssh(setup), ssh(train.strip())]


def sbatch_script(args) -> str:
  overrides = " ".join(map(shlex.quote, args.overrides))
  return f"""#!/bin/bash
#SBATCH --job-name={args.name}
#SBATCH --nodes={args.nodes}
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node={args.gpus_per_node}
#SBATCH --cpus-per-task={args.cpus_per_task}
#SBATCH --time={args.time}
#SBATCH --output=%x-%j.out
# One process per node sees all its GPUs; jax.distributed.initialize() reads the SLURM environment
# (coordinator = first node) — see zoo/sharding.py:initialize_distributed.
set -euo pipefail
cd {shlex.quote(args.repo_dir)}
srun python -m tools.train --config {shlex.quote(args.config)} --workdir {shlex.quote(args.workdir)} {overrides}
"""


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--config", required=True)
  parser.add_argument("--workdir", required=True)
  parser.add_argument("overrides", nargs="*", help="--config.key=value overrides passed to tools.train "
                                                   "(put them after --).")
  parser.add_argument("--name", default="zoo-train")
  parser.add_argument("--execute", action="store_true", help="Run the gcloud commands instead of printing.")
  tpu = parser.add_argument_group("Cloud TPU")
  tpu.add_argument("--accelerator", default="v5litepod-16")
  tpu.add_argument("--zone", default="us-west4-a")
  tpu.add_argument("--project", default=None)
  tpu.add_argument("--runtime_version", default="v2-alpha-tpuv5-lite")
  tpu.add_argument("--spot", action="store_true")
  tpu.add_argument("--repo", default=REPO_URL_PLACEHOLDER)
  gpu = parser.add_argument_group("SLURM (multi-node GPUs)")
  gpu.add_argument("--sbatch", action="store_true", help="Print an sbatch script instead.")
  gpu.add_argument("--nodes", type=int, default=2)
  gpu.add_argument("--gpus_per_node", type=int, default=8)
  gpu.add_argument("--cpus_per_task", type=int, default=32)
  gpu.add_argument("--time", default="24:00:00")
  gpu.add_argument("--repo_dir", default="$HOME/zoo")
  args = parser.parse_args(argv)

  if args.sbatch:
    print(sbatch_script(args))
    return 0
  commands = tpu_commands(args)
  if not args.execute:
    print("# Dry run: these commands would run (pass --execute to run them).")
    for command in commands:
      print(shlex.join(command))
    return 0
  for command in commands:
    print("+", shlex.join(command), flush=True)
    subprocess.run(command, check=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
