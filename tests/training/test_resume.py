"""Kill -9 mid-run, rerun the same command: bit-identical parameters and logged losses."""
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np

from tests.helpers import DIGITS, REPO_ROOT, digits_config, subprocess_env
from zoo.training import checkpoints, metrics_io

STEPS = 400
OVERRIDES = [f"--config.total_steps={STEPS}", "--config.batch_size=16", "--config.log_every_steps=10",
             "--config.checkpoint.every_steps=40", "--config.eval_every_steps=0",
             "--config.model.width=8", "--config.model.embed_dim=16"]


def _train_cmd(workdir):
  return [sys.executable, "-m", "tools.train", "--config", f"{DIGITS}:tiny", "--workdir", str(workdir),
          *OVERRIDES]


def _finished_steps(ckpt_dir):
  if not os.path.isdir(ckpt_dir):
    return []
  return sorted(int(d) for d in os.listdir(ckpt_dir) if d.isdigit())


def _params(workdir):
  from zoo.training import loop
  config = digits_config(*[o[len("--config."):] for o in OVERRIDES])
  _, _, model, step, _ = loop.restore_for_eval(config, f"{workdir}/checkpoints", prefer_ema=True,
                                               devices=jax.devices()[:2])
  from flax import nnx
  return step, jax.device_get(nnx.to_pure_dict(nnx.state(model, nnx.Param)))


def test_sigkill_then_resume_is_bit_identical(tfds_dir, tmp_path):
  env = subprocess_env(2)
  reference = subprocess.Popen(_train_cmd(tmp_path / "reference"), cwd=REPO_ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
  killed_dir = tmp_path / "killed"
  victim = subprocess.Popen(_train_cmd(killed_dir), cwd=REPO_ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 300
  # Kill as soon as a checkpoint is finalised (orbax renames its temporary directory to the step).
  while not _finished_steps(killed_dir / "checkpoints") and time.time() < deadline:
    assert victim.poll() is None, "training ended before it could be killed"
    time.sleep(0.02)
  victim.send_signal(signal.SIGKILL)
  victim.wait()
  steps_at_kill = _finished_steps(killed_dir / "checkpoints")
  assert steps_at_kill and steps_at_kill[-1] < STEPS, steps_at_kill

  resumed = subprocess.run(_train_cmd(killed_dir), cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                           timeout=600)
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert "Resumed from" in resumed.stdout + resumed.stderr
  _, ref_err = reference.communicate(timeout=600)
  assert reference.returncode == 0, ref_err[-3000:]

  ref_metrics = metrics_io.read_metrics(str(tmp_path / "reference"))
  got_metrics = metrics_io.read_metrics(str(killed_dir))
  ref_losses = [(m["step"], m["loss"]) for m in ref_metrics if "loss" in m]
  got_losses = [(m["step"], m["loss"]) for m in got_metrics if "loss" in m]
  assert len(ref_losses) == STEPS // 10
  assert got_losses == ref_losses  # Exact: same steps, bit-identical float values, no duplicates.

  ref_step, ref_params = _params(tmp_path / "reference")
  got_step, got_params = _params(killed_dir)
  assert ref_step == got_step == STEPS
  jax.tree.map(np.testing.assert_array_equal, got_params, ref_params)


def test_sigterm_checkpoints_and_exits_cleanly(tfds_dir, tmp_path):
  workdir = tmp_path / "preempted"
  cmd = _train_cmd(workdir)
  proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=subprocess_env(2), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
  deadline = time.time() + 300
  while not _finished_steps(workdir / "checkpoints") and time.time() < deadline:
    assert proc.poll() is None, "training ended before the signal"
    time.sleep(0.02)
  proc.send_signal(signal.SIGTERM)
  out, _ = proc.communicate(timeout=120)
  assert proc.returncode == 0, out[-3000:]
  assert "preempted; rerun to resume" in out
  steps = _finished_steps(workdir / "checkpoints")
  stopped_at = steps[-1]
  assert 0 < stopped_at < STEPS
  # The preemption checkpoint is at the step where training stopped, not just the last periodic one.
  logged = [m["step"] for m in metrics_io.read_metrics(str(workdir)) if "loss" in m]
  assert not logged or logged[-1] <= stopped_at
  assert checkpoints.Checkpointer(str(workdir / "checkpoints")).latest_step() == stopped_at
