"""The command-line tools as a user runs them: train -> eval JSON; clear errors for bad input."""
import json
import os
import subprocess
import sys

from tests.helpers import REPO_ROOT, subprocess_env

DIGITS = "experiments/core/digits_classifier.py"
SMALL = ["--config.total_steps=40", "--config.batch_size=16", "--config.log_every_steps=20",
         "--config.checkpoint.every_steps=20", "--config.eval_every_steps=40"]


def _run(*args, devices=1, timeout=300):
  return subprocess.run([sys.executable, "-m", *args], cwd=REPO_ROOT, env=subprocess_env(devices),
                        capture_output=True, text=True, timeout=timeout)


def test_train_then_eval_writes_json(tfds_dir, tmp_path):
  workdir = str(tmp_path / "run")
  train = _run("tools.train", "--config", f"{DIGITS}:tiny", "--workdir", workdir, *SMALL)
  assert train.returncode == 0, train.stderr[-3000:]
  assert "Checkpoints:" in train.stdout
  for name in ("metrics.jsonl", "config.json", "train.log"):
    assert os.path.exists(os.path.join(workdir, name)), name
  assert any(f.startswith("events.out.tfevents") for f in os.listdir(workdir))
  log = open(os.path.join(workdir, "train.log")).read()
  for needle in ("per_device_batch_size", "Total parameters", "Compiled train step, per device", "MFU"):
    assert needle in log, needle

  evaluation = _run("tools.eval", "--config", f"{DIGITS}:tiny", "--workdir", workdir, *SMALL)
  assert evaluation.returncode == 0, evaluation.stderr[-3000:]
  result = json.load(open(os.path.join(workdir, "eval_step_40.json")))
  assert result["params"] == "ema_params" and result["classification/num_examples"] == 300
  trained = [m for m in map(json.loads, open(os.path.join(workdir, "metrics.jsonl")))
             if "eval/classification/accuracy" in m][-1]
  assert abs(result["classification/accuracy"] - trained["eval/classification/accuracy"]) < 1e-6

  sample = _run("tools.sample", "--config", f"{DIGITS}:tiny", "--workdir", workdir)
  assert sample.returncode == 2 and "does not sample" in sample.stderr


def test_bad_input_fails_before_running(tmp_path):
  unknown = _run("tools.train", "--config", f"{DIGITS}:tiny", "--workdir", str(tmp_path),
                 "--config.optimizer.learning_rat=1")
  assert unknown.returncode == 2
  assert "Unknown config key 'optimizer.learning_rat'" in unknown.stderr
  assert "'optimizer.learning_rate'" in unknown.stderr
  assert not os.path.exists(tmp_path / "checkpoints")
  missing = _run("tools.eval", "--config", f"{DIGITS}:tiny", "--workdir", str(tmp_path / "nothing"))
  assert missing.returncode == 1 and "No checkpoint found" in missing.stderr
