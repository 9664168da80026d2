"""Shared test helpers (fixtures live in tests/conftest.py)."""
import os

from zoo import config as zconfig

DIGITS = "experiments/core/digits_classifier.py"
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def digits_config(*overrides, arg="tiny"):
  """The tiny digits experiment with small, fast settings plus `overrides` ('key=value')."""
  base = ["batch_size=16", "total_steps=20", "log_every_steps=5", "checkpoint.every_steps=10",
          "checkpoint.async_save=False", "eval_every_steps=0", "model.width=8", "model.embed_dim=16"]
  return zconfig.load_config(f"{DIGITS}:{arg}", base + list(overrides))


def subprocess_env(num_devices: int) -> dict:
  env = dict(os.environ)
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={num_devices}"
  env["JAX_PLATFORMS"] = "cpu"
  env["PYTHONPATH"] = REPO_ROOT + os.pathsep + env.get("PYTHONPATH", "")
  return env
