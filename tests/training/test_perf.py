"""The matmul peak that MFU is measured against: the best measurement wins, a loaded machine's does not stick."""
import json

import jax

from zoo.training import perf


def _write(path, value):
  key = f"{jax.local_devices()[0].platform}:{jax.local_devices()[0].device_kind}"
  path.write_text(json.dumps({key: value}))
  return key


def test_a_low_cached_peak_is_replaced_by_a_better_measurement(tmp_path, monkeypatch):
  monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path))
  key = _write(tmp_path / "matmul_peak.json", 1.0)  # 1 FLOP/s: as if measured on a hopelessly busy machine.
  peak = perf.machine_peak_flops()
  assert peak > 1e6
  assert json.loads((tmp_path / "matmul_peak.json").read_text())[key] == peak


def test_a_higher_cached_peak_is_kept(tmp_path, monkeypatch):
  monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path))
  key = _write(tmp_path / "matmul_peak.json", 1e18)
  assert perf.machine_peak_flops() == 1e18
  assert json.loads((tmp_path / "matmul_peak.json").read_text())[key] == 1e18


def test_a_corrupt_cache_is_remeasured(tmp_path, monkeypatch):
  monkeypatch.setenv("ZOO_CACHE_DIR", str(tmp_path))
  (tmp_path / "matmul_peak.json").write_text("{not json")
  assert perf.machine_peak_flops() > 1e6
