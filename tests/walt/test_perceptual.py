"""The tokenizer's perceptual term: unweighted LPIPS in a frozen in-project network's features."""
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.helpers import REPO_ROOT
from zoo import config as zconfig
from zoo.walt import perceptual, tasks

CLASSIFIER = os.path.join(REPO_ROOT, "demo_assets/walt/frame_classifier")
TOKENIZER_CONFIG = os.path.join(REPO_ROOT, "experiments/walt/tokenizer_moving_digits.py")


def test_lpips_distance_normalises_each_position_and_sums_layers():
  rng = np.random.default_rng(0)
  a = [jnp.asarray(rng.standard_normal((2, 4, 4, 8)), jnp.float32),
       jnp.asarray(rng.standard_normal((2, 3, 16)), jnp.float32)]
  assert float(perceptual.lpips_distance(a, a)) == 0.0
  # A positive scale per position changes nothing (LPIPS compares directions, not magnitudes).
  scaled = [f * jnp.asarray(rng.uniform(0.1, 10, f.shape[:-1] + (1,)), jnp.float32) for f in a]
  assert float(perceptual.lpips_distance(a, scaled)) < 1e-5
  # Opposite directions: ||u − (−u)||² = 4 at every position of each of the two layers.
  np.testing.assert_allclose(float(perceptual.lpips_distance(a, [-f for f in a])), 8.0, rtol=1e-5)
  # An all-zero feature vector (e.g. a dead position) has a finite gradient.
  real = [jnp.ones((1, 2, 4), jnp.float32)]
  grad = jax.grad(lambda f: perceptual.lpips_distance(real, [f]))(jnp.zeros((1, 2, 4), jnp.float32))
  assert np.isfinite(np.asarray(grad)).all()


@pytest.fixture(scope="module")
def digit_clips():
  """Two moving-digit-like clips in [−1, 1]: bright 10×8 strokes (a ring, a diagonal) in different places."""
  video = -np.ones((2, 3, 32, 32, 3), np.float32)
  glyph = np.zeros((10, 8), np.float32)
  glyph[0, :] = glyph[-1, :] = glyph[:, 0] = glyph[:, -1] = 1.0  # An "0"-like ring.
  for t in range(3):
    video[0, t, 4 + t:14 + t, 6:14] = (2 * glyph - 1)[..., None]
    video[1, t, 18:28, 16 + t:24 + t] = (2 * np.eye(10, 8) - 1)[..., None]  # A diagonal stroke elsewhere.
  return jnp.asarray(video)


def test_frame_classifier_features_rank_a_small_perturbation_below_a_different_clip(digit_clips):
  features = perceptual.feature_network("frame_classifier", CLASSIFIER)
  layers = features(digit_clips)
  # The shipped DigitsConvNet (depth 3, width 32): one feature map per conv stage, per frame.
  assert [f.shape for f in layers] == [(6, 32, 32, 32), (6, 16, 16, 64), (6, 8, 8, 128)]
  clip, other = digit_clips[:1], digit_clips[1:]
  noisy = clip + 0.05 * jax.random.normal(jax.random.key(0), clip.shape)
  assert float(perceptual.perceptual_loss(features, clip, clip)) == 0.0
  near = float(perceptual.perceptual_loss(features, clip, noisy))
  far = float(perceptual.perceptual_loss(features, clip, other))
  assert 0 < near < far / 2, (near, far)  # Measured: 1.03 vs 2.72.
  grad = jax.grad(lambda x: perceptual.perceptual_loss(features, clip, x))(noisy)
  assert np.isfinite(np.asarray(grad)).all() and float(jnp.abs(grad).max()) > 0
  # No gradient flows into the real clip (it is the target).
  grad_real = jax.grad(lambda x: perceptual.perceptual_loss(features, x, noisy))(clip)
  assert float(jnp.abs(grad_real).max()) == 0.0


def test_i3d_perceptual_features_are_differentiable_at_any_resolution():
  features = perceptual.feature_network("i3d")
  video = jax.ShapeDtypeStruct((1, 9, 32, 32, 3), jnp.float32)
  grad = jax.eval_shape(jax.grad(lambda x: perceptual.perceptual_loss(features, jnp.zeros_like(x), x)), video)
  assert grad.shape == video.shape
  with pytest.raises(ValueError, match="T >= 9"):
    jax.eval_shape(features, jax.ShapeDtypeStruct((1, 5, 32, 32, 3), jnp.float32))


def test_perceptual_network_auto_follows_the_data_and_errors_name_the_fix(tmp_path):
  config = zconfig.load_config(TOKENIZER_CONFIG + ":tiny,perceptual=0.1")
  assert tasks.loss_config(config).perceptual_weight == 0.1
  assert tasks.loss_config(config).perceptual_network == "frame_classifier"
  config = zconfig.load_config(TOKENIZER_CONFIG + ":paper", ["data.name=ucf101"])
  assert tasks.loss_config(config).perceptual_network == "i3d"
  with pytest.raises(FileNotFoundError, match="digits_classifier.py:frames"):
    perceptual.feature_network("frame_classifier", str(tmp_path / "missing"))
  with pytest.raises(ValueError, match="choose from"):
    perceptual.feature_network("vgg")
