"""W.A.L.T stage 2 end to end at CI size, on a (1-step) trained tokenizer and frame classifier checkpoint.

The tokenizer trains on 5-frame clips and, being fully convolutional, encodes the 9-frame clips
(-> 3×4×4×8 latents) the transformer trains on.

tokenizer checkpoint -> cached latents -> transformer training on 2 devices (videos + image stacks) ->
generation evaluator (frame classifier accuracy / Fréchet distance) -> every sampling mode's files -> FVD
with its reconstruction ceiling.
"""
import os

import imageio.v3 as iio
import jax
import numpy as np
import pytest

from tests.helpers import REPO_ROOT
from zoo import config as zconfig
from zoo.training import loop, metrics_io
from zoo.walt import diffusion_task, latents

TOKENIZER = "experiments/walt/tokenizer_moving_digits.py:demo,steps=1,res=16,frames=5,batch=2"
TOKENIZER_SMALL = ["model.channels=4", "model.num_groups=2", "checkpoint.async_save=False",
                   "eval_every_steps=0", "kernels.causal_conv3d=xla"]
CLASSIFIER = "experiments/core/digits_classifier.py:frames,steps=2,batch=8,res=16"


@pytest.fixture(scope="module")
def stage_one(tfds_dir, tmp_path_factory):
  """Checkpoints of a tokenizer (res 16, 5 frames -> 2×4×4×8) and a frame classifier."""
  root = tmp_path_factory.mktemp("walt_stage_one")
  tok_config = zconfig.load_config(os.path.join(REPO_ROOT, TOKENIZER), TOKENIZER_SMALL)
  loop.train_and_evaluate(tok_config, str(root / "tokenizer"), devices=jax.devices()[:1])
  cls_config = zconfig.load_config(os.path.join(REPO_ROOT, CLASSIFIER),
                                   ["checkpoint.async_save=False", "eval_every_steps=0", "model.width=4"])
  loop.train_and_evaluate(cls_config, str(root / "classifier"), devices=jax.devices()[:1])
  return root


def _config(stage_one, tmp_path, *extra):
  spec = os.path.join(REPO_ROOT, "experiments/walt/video_moving_digits.py:tiny")
  return zconfig.load_config(spec, [
      f"tokenizer.config={os.path.join(REPO_ROOT, TOKENIZER)}",
      f"tokenizer.overrides={TOKENIZER_SMALL!r}",
      f"tokenizer.workdir={stage_one / 'tokenizer'}", "data.frames=9", "data.resolution=16",
      f"data.latent_cache_dir={tmp_path / 'cache'}", "checkpoint.async_save=False",
      f"evals.generation.classifier_config={os.path.join(REPO_ROOT, CLASSIFIER)}",
      f"evals.generation.classifier_workdir={stage_one / 'classifier'}", *extra])


def test_video_diffusion_trains_evaluates_and_samples(stage_one, tmp_path, monkeypatch):
  config = _config(stage_one, tmp_path)
  workdir = tmp_path / "run"
  result = loop.train_and_evaluate(config, str(workdir), devices=jax.devices()[:2])
  assert result.step == config.total_steps
  metrics = metrics_io.read_metrics(str(workdir))
  assert all(np.isfinite(m["loss"]) for m in metrics if "loss" in m)
  evals = [m for m in metrics if "eval/generation/frame_accuracy" in m][-1]
  for key in ("frame_accuracy", "reconstruction_frame_accuracy"):
    assert 0.0 <= evals[f"eval/generation/{key}"] <= 1.0
  for key in ("frame_fd", "reconstruction_frame_fd"):
    assert np.isfinite(evals[f"eval/generation/{key}"]) and evals[f"eval/generation/{key}"] >= 0
  # The latent cache was written once, under the configured directory, keyed by the tokenizer step.
  cached = os.listdir(tmp_path / "cache")
  assert any(name.startswith("train_") for name in cached), cached

  task, mesh, model, step, which = loop.restore_for_eval(config, str(workdir / "checkpoints"),
                                                         devices=jax.devices()[:2])
  assert which == "ema_params"
  written = task.sample(model, config, jax.random.key(0), str(tmp_path), mesh)
  assert set(written) == {"class_conditional_videos", "class_conditional_images", "image_to_video",
                          "video_prediction", "long_video"}
  videos = iio.imread(written["class_conditional_videos"], index=None)
  # 10 classes × 2 samples, 9 frames of 16×16 with 2-px separators.
  assert videos.shape[:3] == (9, 10 * 18, 2 * 18)
  images = iio.imread(written["class_conditional_images"])
  assert images.shape[:2] == (10 * 18, 2 * 3 * 18)  # 2 stacks × t = 3 independent images per class.
  long_video = iio.imread(written["long_video"], index=None)
  # 9 frames, then 2 segments of 4 new frames (re-encode the last 5 frames -> 2 latents, predict 1 more).
  assert long_video.shape[0] == 9 + 2 * 4

  fvd_config = _config(stage_one, tmp_path, "evals.generation.num_videos=4", "evals.generation.fvd_videos=4",
                       "evals.generation.batch_size=2", "evals.generation.classifier_workdir=")
  _check_fvd_and_its_reconstruction_ceiling(fvd_config, model, mesh, monkeypatch)


def test_latent_clips_mix_videos_and_same_class_image_stacks():
  rng = np.random.default_rng(0)
  encoded = {"latents": rng.normal(size=(6, 3, 2, 2, 4)).astype(np.float32), "labels": np.array([0, 1, 0, 1, 2, 2]),
             "mean": np.full((4,), 0.5, np.float32), "std": np.full((4,), 2.0, np.float32)}
  clips = latents.LatentClips(encoded, image_fraction=0.5, seed=3)
  assert len(clips) == 12 and clips.num_image_stacks == 6
  video = clips[1]
  assert not video["is_image"] and video["label"] == 1
  np.testing.assert_allclose(video["latents"], (encoded["latents"][1] - 0.5) / 2.0, rtol=1e-6)
  for index in range(6, 12):
    stack = clips[index]
    assert stack["is_image"] and stack["latents"].shape == (3, 2, 2, 4)
    # Every image is latent frame 0 of a clip of the stack's class (an image latent, by causality).
    sources = np.flatnonzero(encoded["labels"] == stack["label"])
    normalised_first = (encoded["latents"][sources, 0] - 0.5) / 2.0
    for image in stack["latents"]:
      assert min(np.abs(normalised_first - image).max(axis=(1, 2, 3))) < 1e-6
    np.testing.assert_array_equal(stack["latents"], clips[index]["latents"])  # Deterministic per index.
  with pytest.raises(ValueError, match="image_fraction"):
    latents.LatentClips(encoded, image_fraction=1.0)


def test_missing_tokenizer_checkpoint_names_the_command(tmp_path):
  config = zconfig.load_config(os.path.join(REPO_ROOT, "experiments/walt/video_moving_digits.py:tiny"),
                               [f"tokenizer.workdir={tmp_path / 'nothing'}"])
  with pytest.raises(FileNotFoundError, match="python -m tools.train --config experiments/walt/tokenizer"):
    latents.load_tokenizer(config)


def test_tile_lays_out_rows_and_columns():
  videos = np.zeros((2, 3, 4, 5, 6, 3), np.float32)
  videos[1, 2] = 1.0
  grid = diffusion_task.tile(videos, pad=1)
  assert grid.shape == (4, 2 * 6, 3 * 7, 3)
  assert grid[0, 6:11, 14:20].min() == 1.0 and grid[0, :5, :6].max() == 0.0


def test_full_attention_ablation_uses_the_whole_grid():
  config = zconfig.load_config(os.path.join(REPO_ROOT, "experiments/walt/video_moving_digits.py:tiny,full_attention"))
  cfg = diffusion_task.transformer_config(config)
  assert cfg.grid == (3, 8, 8)
  assert {cfg.window(i) for i in range(cfg.depth)} == {(3, 8, 8)}
  windowed = diffusion_task.transformer_config(
      zconfig.load_config(os.path.join(REPO_ROOT, "experiments/walt/video_moving_digits.py:tiny")))
  assert [windowed.window(i) for i in range(2)] == [(1, 8, 8), (3, 4, 4)]


def _check_fvd_and_its_reconstruction_ceiling(config, model, mesh, monkeypatch):
  """FVD reuses the real clips' I3D statistics; reconstruction_fvd is computed once per evaluator."""
  from zoo.metrics import fvd
  clips_through_i3d = []
  i3d_logits = fvd.i3d_logits
  monkeypatch.setattr(fvd, "i3d_logits", lambda videos, **kw: clips_through_i3d.append(len(videos))
                      or i3d_logits(videos, **kw))
  evaluator = diffusion_task.GenerationEvaluator(config)
  with jax.set_mesh(mesh):
    first = evaluator(model, mesh)
    second = evaluator(model, mesh)
  # Real clips and their reconstructions go through I3D once; generated clips at every evaluation.
  assert clips_through_i3d == [4, 4, 4, 4], clips_through_i3d
  assert first["fvd_videos"] == 4 and first["reconstruction_fvd"] == second["reconstruction_fvd"]
  assert np.isfinite(first["fvd"]) and first["fvd"] >= 0 and first["reconstruction_fvd"] >= 0
  # Same seed, same model: the generated side is deterministic too.
  np.testing.assert_allclose(first["fvd"], second["fvd"], rtol=1e-6)
