"""The matmul peak that MFU is measured against (the best measurement wins, a loaded machine's does not
stick), and the pipelined step timing the benchmarks use."""
import json

import jax
import numpy as np

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


def test_pipelined_steps_run_every_step_with_a_bounded_queue():
  """perf.time_pipelined_steps (the benchmark's throughput timing) runs exactly num_steps donated steps and
  never lets more than max_in_flight of them be outstanding when it dispatches the next."""
  import jax.numpy as jnp
  waited = []

  class Aux:  # stands in for a metrics array; records when the timer waits on it
    def __init__(self, i):
      self.i = i

    def block_until_ready(self):
      waited.append(self.i)

  compiled = jax.jit(lambda state, batch: state + batch, donate_argnums=(0,))
  calls = []

  def step(state, batch):
    calls.append(len(calls))
    return compiled(state, batch), {"loss": Aux(len(calls) - 1)}

  state, seconds = perf.time_pipelined_steps(step, jnp.zeros(3), jnp.ones(3), num_steps=7, max_in_flight=2)
  np.testing.assert_array_equal(np.asarray(state), np.full(3, 7.0))
  assert len(calls) == 7 and seconds > 0
  # After dispatching step i (0-based) with more than 2 outstanding, it waits on step i - 2.
  assert waited == [0, 1, 2, 3, 4]
