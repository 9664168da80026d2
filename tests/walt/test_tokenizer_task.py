"""The tokenizer experiment end to end at CI size: trains (GAN and perceptual terms on), checkpoints,
evaluates, writes GIFs."""
import os

import jax
import numpy as np

from tests.helpers import REPO_ROOT
from zoo import config as zconfig
from zoo.training import loop, metrics_io

CONFIG = "experiments/walt/tokenizer_moving_digits.py:tiny,steps=2,res=16,frames=5,batch=2"
SMALL = ["model.channels=4", "model.num_groups=2", "model.discriminator_channels=4", "loss.gan_start_step=0",
         "log_every_steps=1", "eval_every_steps=2", "checkpoint.every_steps=2", "checkpoint.async_save=False",
         "evals.reconstruction.num_videos=2", "evals.reconstruction.batch_size=2", "sample.num_videos=1",
         "kernels.causal_conv3d=xla", "loss.perceptual_weight=0.1"]


def test_tokenizer_trains_evaluates_and_samples(tfds_dir, tmp_path):
  config = zconfig.load_config(os.path.join(REPO_ROOT, CONFIG), SMALL)
  result = loop.train_and_evaluate(config, str(tmp_path), devices=jax.devices()[:2])
  assert result.step == 2
  metrics = metrics_io.read_metrics(str(tmp_path))
  losses = [m for m in metrics if "loss" in m]
  assert [m["step"] for m in losses] == [1, 2]
  assert losses[0]["gan_on"] == 1.0 and np.isfinite(losses[-1]["gan_discriminator"])
  # The perceptual term (frame classifier features, demo_assets/walt/frame_classifier) is in the loss.
  assert all(np.isfinite(m["perceptual"]) and m["perceptual"] > 0 for m in losses)
  evals = [m for m in metrics if "eval/reconstruction/psnr" in m][-1]
  for key in ("psnr", "ssim", "bilinear_psnr", "bilinear_ssim"):
    assert np.isfinite(evals[f"eval/reconstruction/{key}"]), key
  assert evals["eval/reconstruction/latent_numbers"] == 2 * 2 * 2 * 8  # 5×16×16 -> 2×2×2×8.

  task, mesh, model, step, which = loop.restore_for_eval(config, str(tmp_path / "checkpoints"),
                                                         devices=jax.devices()[:2])
  assert step == 2 and which == "ema_params"
  # Latent statistics travel with the checkpoint (model state, not params).
  assert model.latent_mean[...].shape == (8,) and float(np.abs(np.asarray(model.latent_mean[...])).sum()) > 0
  written = task.sample(model, config, jax.random.key(0), str(tmp_path), mesh)
  gif = written["gif_0"]
  assert os.path.getsize(gif) > 0
  import imageio.v3 as iio
  frames = iio.imread(gif, index=None)
  assert frames.shape[0] == 5 and frames.shape[1:3] == (16, 32)  # input | reconstruction side by side.
