"""PSNR / SSIM against scikit-image's reference implementations."""
import numpy as np
import pytest
from skimage import metrics as skmetrics

from zoo.metrics import image_quality


def _pair(seed=0, shape=(2, 3, 24, 20, 3)):
  """Videos [B, T, H, W, C] in [0, 1]: a smooth picture and a noisy, slightly shifted copy."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[:shape[-3], :shape[-2]] / 7.0
  base = np.empty(shape, np.float64)
  for index in np.ndindex(shape[:-3]):
    phase = rng.uniform(0, 6, shape[-1])
    base[index] = 0.5 + 0.4 * np.sin(xx[..., None] + phase) * np.cos(yy[..., None] * 0.7 + phase)
  noisy = np.clip(np.roll(base, 1, axis=-2) + rng.normal(scale=0.05, size=shape), 0, 1)
  return base, noisy


def test_psnr_matches_skimage_per_frame():
  clean, noisy = _pair()
  got = np.asarray(image_quality.psnr(clean, noisy, value_range=(0.0, 1.0)))
  assert got.shape == (2, 3)
  for b, t in np.ndindex(2, 3):
    expected = skmetrics.peak_signal_noise_ratio(clean[b, t], noisy[b, t], data_range=1.0)
    np.testing.assert_allclose(got[b, t], expected, rtol=1e-4)


def test_ssim_matches_skimage_per_frame():
  clean, noisy = _pair()
  got = np.asarray(image_quality.ssim(clean, noisy, value_range=(0.0, 1.0)))
  assert got.shape == (2, 3)
  for b, t in np.ndindex(2, 3):
    expected = skmetrics.structural_similarity(clean[b, t], noisy[b, t], data_range=1.0, channel_axis=-1,
                                               gaussian_weights=True, sigma=1.5,
                                               use_sample_covariance=False)
    np.testing.assert_allclose(got[b, t], expected, atol=1e-4)
  assert np.all(got < 0.99)  # the noisy copy is measurably different


def test_value_ranges_describe_the_same_picture():
  clean, noisy = _pair(seed=1, shape=(4, 16, 16, 3))  # images [B, H, W, C]
  for metric in (image_quality.psnr, image_quality.ssim):
    unit = np.asarray(metric(clean, noisy, value_range=(0.0, 1.0)))
    model_range = np.asarray(metric(clean * 2 - 1, noisy * 2 - 1))  # default (−1, 1)
    bytes_range = np.asarray(metric(clean * 255, noisy * 255, value_range=(0.0, 255.0)))
    assert unit.shape == (4,)
    np.testing.assert_allclose(model_range, unit, rtol=1e-4)
    np.testing.assert_allclose(bytes_range, unit, rtol=1e-4)


def test_identical_and_input_checks():
  clean, _ = _pair(shape=(1, 12, 12, 1))
  assert np.isinf(np.asarray(image_quality.psnr(clean, clean, value_range=(0.0, 1.0)))).all()
  np.testing.assert_allclose(image_quality.ssim(clean, clean, value_range=(0.0, 1.0)), 1.0, atol=1e-5)
  with pytest.raises(ValueError, match="at least 11"):
    image_quality.ssim(np.zeros((1, 10, 12, 3)), np.zeros((1, 10, 12, 3)))
  with pytest.raises(ValueError, match="one shape"):
    image_quality.psnr(np.zeros((1, 12, 12, 3)), np.zeros((1, 12, 12, 1)))
