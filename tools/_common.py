"""Flag handling shared by the tools: `--config file.py:args`, `--config.key=value` overrides, logging."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Callable, Sequence

# Hide libtpu's "could not determine TPU accelerator type" chatter on CPU hosts; tools that need the
# TPU compiler (aot_compile) load it explicitly through jax.experimental.topologies.
os.environ.setdefault("TPU_STDERR_LOG_LEVEL", "3")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TPU_MIN_LOG_LEVEL", "3")
# libtpu is only an ahead-of-time compiler on CPU hosts; let several processes load it at once.
os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None = None, load: Callable | None = None):
  """Parses argv, returning (args, config) with overrides applied; exits with a clear message on error.

  `load(spec, overrides)` builds the config (default zoo.config.load_config).
  """
  from zoo import config as zconfig
  load = zconfig.load_config if load is None else load
  argv = list(sys.argv[1:] if argv is None else argv)
  try:
    rest, overrides = zconfig.split_config_overrides(argv)
  except zconfig.ConfigError as e:
    parser.error(str(e))
  args = parser.parse_args(rest)
  try:
    config = load(args.config, overrides)
  except zconfig.ConfigError as e:
    parser.exit(2, f"error: {e}\n")
  return args, config


def add_config_flag(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--config", required=True,
                      help="Experiment file with optional args, e.g. experiments/core/digits_classifier.py:tiny. "
                           "Override any key with --config.key=value.")


def add_distributed_flags(parser: argparse.ArgumentParser) -> None:
  group = parser.add_argument_group("multi-host (auto-detected on TPU pods and SLURM)")
  group.add_argument("--coordinator_address", default=None, help="host:port of process 0")
  group.add_argument("--num_processes", type=int, default=None)
  group.add_argument("--process_id", type=int, default=None)


def setup_logging(workdir: str | None = None) -> None:
  from absl import logging as absl_logging
  absl_logging.set_verbosity(absl_logging.INFO)
  absl_logging.use_python_logging()
  root = logging.getLogger()
  root.setLevel(logging.INFO)
  fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%H:%M:%S")
  if not any(isinstance(h, logging.StreamHandler) and getattr(h, "_zoo", False) for h in root.handlers):
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(fmt)
    handler._zoo = True
    root.handlers = [handler]
  if workdir:
    os.makedirs(workdir, exist_ok=True)
    file_handler = logging.FileHandler(os.path.join(workdir, "train.log"))
    file_handler.setFormatter(fmt)
    root.addHandler(file_handler)
  for noisy in ("absl", "orbax", "jax._src", "tensorflow", "grain"):
    logging.getLogger(noisy).setLevel(logging.WARNING)
