"""`python -m tools.benchmark walt` at CI size: every measurement runs and gives finite, positive ratios."""
import math
import subprocess
import sys

import jax
import numpy as np
import pytest

from tests.helpers import REPO_ROOT, subprocess_env
from zoo.walt import benchmark, latents

TINY = "experiments/walt/video_moving_digits.py:tiny"


class _RandomLatentTokenizer:
  """Stands in for the untrained tokenizer that fills the latent cache. Building the real one costs ~25 s
  on 2 cores (its eager initialisers compile one program per parameter shape) and its latents are
  meaningless anyway; the loader timed here only reads the cache. `python -m tools.benchmark walt` runs
  the real one."""
  step = 0

  def __init__(self, grid):
    self.grid = grid
    self.latent_mean = np.zeros(grid[-1], np.float32)
    self.latent_std = np.ones(grid[-1], np.float32)

  def encode(self, videos, batch_size=16):
    del batch_size
    return np.random.default_rng(len(videos)).standard_normal((len(videos), *self.grid)).astype(np.float32)


def _positive(value) -> bool:
  return math.isfinite(value) and value > 0


def test_walt_benchmark_pieces_give_finite_ratios(tfds_dir, capsys, monkeypatch):
  del tfds_dir  # The moving-digits clips are generated under it.
  monkeypatch.setattr(latents, "load_tokenizer",
                      lambda config, devices=None: _RandomLatentTokenizer(latents.latent_grid(config)))
  config = benchmark.load_config(TINY)
  result = benchmark.run(config, steps=2, sample_batch=2, sample_steps=2, sample_repeats=1, pipeline_batches=3,
                         max_videos=8, devices=jax.devices()[:1])

  train = result["train"]
  for key in ("matmul_peak_gflops", "step_gflop", "analytic_gflop", "step_seconds", "steps_per_sec", "mfu",
              "step_latency_seconds", "mfu_blocking", "mfu_analytic"):
    assert _positive(train[key]), (key, train)
  # XLA's count covers at least the hand-counted matmuls and not much more (elementwise work, optimizer).
  assert 0.8 < train["step_gflop"] / train["analytic_gflop"] < 2.0, train

  sampling = result["sampling"]
  assert sampling["finite"]
  for key in ("seconds_per_video", "sample_seconds", "forward_seconds", "sampling_over_forwards"):
    assert _positive(sampling[key]), (key, sampling)

  pipeline = result["pipeline"]
  assert _positive(pipeline["batch_seconds"])
  assert 0.0 <= pipeline["percent_of_step"] <= 100.0, pipeline
  assert pipeline["batch_shape"] == (config.batch_size, *train["latent_shape"])

  print(benchmark.format_table(result, "tiny"))
  table = capsys.readouterr().out
  assert "MFU" in table and "no tokenizer decode" in table and "% of the train step" in table


def test_versus_times_two_configs_interleaved(capsys):
  """`benchmark walt --versus key=value`: the config's train step against the overridden one, one process."""
  assert benchmark.main(["--config", TINY, "--versus", "optimizer.flatten=False", "--steps", "2",
                         "--rounds", "2"]) == 0
  out = capsys.readouterr().out
  assert "with optimizer.flatten=False:" in out and "ratio" in out
  # interleaved_step_times' per-arm structure is checked by tests/walt/test_ablation.py (--speed).


def test_train_only_runs_a_paper_config_without_tokenizer_or_data(capsys):
  """`benchmark walt --train-only` on the bf16 UCF-101 config (cut to toy size): the MFU is measured
  against the bf16 matmul peak, and nothing needs a tokenizer checkpoint or a dataset."""
  assert benchmark.main(["--config", "experiments/walt/ucf101_xl.py", "--train-only", "--steps", "1",
                         "--config.batch_size=1", "--config.model.depth=2", "--config.model.width=32",
                         "--config.model.num_heads=2"]) == 0
  out = capsys.readouterr().out
  assert "W.A.L.T ucf101_xl.py on cpu" in out and "bfloat16 1024³ matmul" in out
  assert "train step" in out and "DDIM" not in out and "input pipeline" not in out


def test_profile_breaks_the_train_step_down_by_op_kind():
  """`benchmark walt --train-only --profile N` (in a fresh process: tracing is refused where libtpu is
  loaded, as in a pytest worker that ran the TPU AOT tests): the op-kind table and the matmul-only MFU
  bound follow the train-step line (zoo/training/op_profile.py has the unit tests)."""
  out = subprocess.run([sys.executable, "-m", "tools.benchmark", "walt", "--config", TINY, "--train-only",
                        "--steps", "2", "--profile", "2"], env=subprocess_env(1), cwd=REPO_ROOT,
                       capture_output=True, text=True, timeout=600)
  assert out.returncode == 0, out.stderr[-3000:]
  assert "XLA:CPU op time per step, traced over 2 steps" in out.stdout
  for category in ("matmul/conv", "data movement", "elementwise"):
    assert category in out.stdout
  assert "with all other ops free this step's MFU would be at most" in out.stdout


def test_profile_with_versus_is_a_clear_error(capsys):
  """--versus times two configs against each other; a breakdown of "the" step would be ambiguous."""
  with pytest.raises(SystemExit) as exit_info:
    benchmark.main(["--config", TINY, "--versus", "optimizer.flatten=False", "--profile", "2"])
  assert exit_info.value.code == 2
  assert "drop it or --versus" in capsys.readouterr().err
