"""Two local processes x 2 CPU devices (gloo collectives) train exactly like one process x 4 devices."""
import socket
import subprocess
import sys

import numpy as np

from tests.helpers import DIGITS, REPO_ROOT, subprocess_env
from zoo.training import metrics_io

OVERRIDES = ["--config.total_steps=30", "--config.batch_size=16", "--config.log_every_steps=5",
             "--config.checkpoint.every_steps=15", "--config.eval_every_steps=30",
             "--config.model.width=8", "--config.model.embed_dim=16",
             "--config.mesh.data=2", "--config.mesh.fsdp=2"]


def _free_port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_two_processes_match_one_process(tfds_dir, tmp_path):
  base = [sys.executable, "-m", "tools.train", "--config", f"{DIGITS}:tiny", *OVERRIDES]
  single = subprocess.Popen(base + ["--workdir", str(tmp_path / "single")], cwd=REPO_ROOT,
                            env=subprocess_env(4), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
  port = _free_port()
  workers = [subprocess.Popen(
      base + ["--workdir", str(tmp_path / "multi"), "--coordinator_address", f"127.0.0.1:{port}",
              "--num_processes", "2", "--process_id", str(i)],
      cwd=REPO_ROOT, env=subprocess_env(2), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
      for i in range(2)]
  outputs = [p.communicate(timeout=600)[0] for p in [single, *workers]]
  for p, out in zip([single, *workers], outputs):
    assert p.returncode == 0, out[-4000:]
  assert "num_processes: 2" in outputs[1] and "per_process_batch_size: 8.0" in outputs[1]

  single_metrics = metrics_io.read_metrics(str(tmp_path / "single"))
  multi_metrics = metrics_io.read_metrics(str(tmp_path / "multi"))
  single_losses = [m["loss"] for m in single_metrics if "loss" in m]
  multi_losses = [m["loss"] for m in multi_metrics if "loss" in m]
  assert len(single_losses) == len(multi_losses) == 6
  np.testing.assert_allclose(multi_losses, single_losses, rtol=1e-5, atol=1e-6)
  # The evaluator splits the test set over processes and reduces exactly.
  single_eval = [m for m in single_metrics if "eval/classification/accuracy" in m][-1]
  multi_eval = [m for m in multi_metrics if "eval/classification/accuracy" in m][-1]
  assert multi_eval["eval/classification/num_examples"] == single_eval["eval/classification/num_examples"] == 300
  np.testing.assert_allclose(multi_eval["eval/classification/accuracy"],
                             single_eval["eval/classification/accuracy"], atol=1e-6)
