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
