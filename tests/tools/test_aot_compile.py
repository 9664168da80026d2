"""tools/aot_compile.py compiles the digits train step for multi-chip TPU topologies from this CPU host."""
import subprocess
import sys

import pytest

from tests.helpers import REPO_ROOT, subprocess_env
from tools import aot_compile
from zoo import config as zconfig

DIGITS = "experiments/core/digits_classifier.py"


# v4 chips expose their two TensorCores as separate devices in this topology description.
@pytest.mark.parametrize("topology, devices", [("v5e:2x2", 4), ("v4:2x2x1", 8)])
def test_compiles_for_multichip_topology(topology, devices):
  config = zconfig.load_config(f"{DIGITS}:tiny", ["mesh.data=-1"])
  report = aot_compile.compile_for_topology(config, topology)
  assert report["num_devices"] == devices and report["mesh"]["data"] == devices
  assert report["fits"], report
  assert report["argument_size_in_bytes"] > report["state_bytes_per_device"] // 2 > 0
  assert report["temp_size_in_bytes"] > 0
  assert report["flops_per_step_per_device"] > 0
  text = aot_compile.format_report(report)
  assert "arguments per device" in text and "FITS" in text


def test_fsdp_sharding_divides_state_bytes():
  replicated = aot_compile.compile_for_topology(
      zconfig.load_config(f"{DIGITS}:tiny", ["mesh.data=-1"]), "v5e:2x2")
  fsdp = aot_compile.compile_for_topology(
      zconfig.load_config(f"{DIGITS}:tiny", ["mesh.data=1", "mesh.fsdp=-1"]), "v5e:2x2")
  # The embedding matrix dominates the state and is sharded 4 ways on `fsdp`.
  assert fsdp["state_bytes_per_device"] < 0.5 * replicated["state_bytes_per_device"]


def test_cli_prints_bytes_and_refuses_a_state_that_cannot_fit():
  ok = subprocess.run([sys.executable, "-m", "tools.aot_compile", "--config", f"{DIGITS}:tiny",
                       "--topology", "v5e:2x2"], cwd=REPO_ROOT, env=subprocess_env(1),
                      capture_output=True, text=True, timeout=300)
  assert ok.returncode == 0, ok.stderr[-3000:]
  assert "peak per device" in ok.stdout and "FITS" in ok.stdout
  too_big = subprocess.run([sys.executable, "-m", "tools.aot_compile", "--config", f"{DIGITS}:tiny",
                            "--topology", "v5e:2x2", "--config.model.embed_dim=4194304"],
                           cwd=REPO_ROOT, env=subprocess_env(1), capture_output=True, text=True, timeout=300)
  assert too_big.returncode == 1
  assert "DOES NOT FIT" in too_big.stdout and "HBM" in too_big.stdout
