"""Test-wide setup: 8 fake CPU devices so mesh/sharding tests run on one machine.

This must run before jax is imported anywhere, which pytest guarantees for conftest.py.
"""
import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
_flags = os.environ.get("XLA_FLAGS", "")
if "xla_force_host_platform_device_count" not in _flags:
  os.environ["XLA_FLAGS"] = (_flags + " --xla_force_host_platform_device_count=8").strip()
# TPU ahead-of-time compilation from CPU (tests/…/test_*_tpu_compile) uses libtpu: keep it quiet.
os.environ.setdefault("TPU_STDERR_LOG_LEVEL", "3")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# libtpu takes a process-wide lock file; tests (and other tools running beside them) only use it as an
# ahead-of-time compiler, so several processes may load it at once.
os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tfds_dir(tmp_path_factory):
  """The digits dataset, generated once per test session; subprocesses find it via TFDS_DATA_DIR."""
  from data_pipelines import digits, local_tfds
  path = str(tmp_path_factory.mktemp("tfds"))
  local_tfds.prepare(digits.Digits, path)
  os.environ["TFDS_DATA_DIR"] = path
  return path
