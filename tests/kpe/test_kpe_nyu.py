"""NYUv2 96×128 crops with dense KPE (L = 8) through tfds, on mocked data (no dataset, no network)."""
import numpy as np
import pytest
import tensorflow_datasets as tfds

from zoo.kpe import encoding, nyu


def test_nyu_crops_on_mock_data():
  with tfds.testing.mock_data(num_examples=3):
    crops = list(nyu.nyu_crops("train", seed=0))
  assert len(crops) == 3
  for crop in crops:
    assert crop["image"].shape == (96, 128, 3) and crop["image"].dtype == np.uint8
    assert crop["depth"].shape == (96, 128) and crop["depth"].dtype == np.float32
    assert crop["kpe"].shape == (96, 128, 32)                       # dense, 4L channels with L = 8
    fx, fy, px, py = crop["intrinsics"]
    assert fx == pytest.approx(fy * 518.8579 / 519.4696, rel=1e-3)   # scaling keeps the aspect of the focal lengths
    assert 518.0 <= fx <= 1.5 * 518.8579 + 1


def test_augmentation_keeps_crop_pixels_on_their_rays():
  """The crop's KPE must describe the pixels it holds. Encode each original pixel's (u, v) in the depth map
  (u + 1000·v, exact in float32 and kept by nearest resizing); after random scale, flip and crop, the dense KPE
  at every crop pixel must equal the angles of the original pixel it came from (± the nearest-resize half pixel)."""
  rng = np.random.default_rng(3)
  k = nyu.NYU_INTRINSICS
  v, u = np.mgrid[0:480, 0:640]
  code = (u + 1000.0 * v).astype(np.float32)
  image = np.zeros((480, 640, 3), np.uint8)
  flips = 0
  for _ in range(6):
    crop = nyu.augment_crop(image, code, rng, num_frequencies=1)
    source_u, source_v = crop["depth"] % 1000, crop["depth"] // 1000
    # L = 1 layout: [sin θx, sin θy, cos θx, cos θy].
    theta_x = np.arctan2(crop["kpe"][..., 0], crop["kpe"][..., 2])
    theta_y = np.arctan2(crop["kpe"][..., 1], crop["kpe"][..., 3])
    # A flipped crop shows a mirrored world: its pixel sees the source pixel's ray mirrored, θx → −θx.
    expected_x = np.arctan((source_u - k.px) / k.fx) * (-1.0 if crop["flipped"] else 1.0)
    flips += int(crop["flipped"])
    np.testing.assert_allclose(theta_x, expected_x, atol=1.0 / k.fx)
    np.testing.assert_allclose(theta_y, np.arctan((source_v - k.py) / k.fy), atol=1.0 / k.fy)
  assert 0 < flips < 6


def test_flip_changes_kpe_sign():
  k = nyu.NYU_INTRINSICS
  box = encoding.CropBox(0.0, 0.0, 128.0, 96.0)
  kpe = np.asarray(encoding.dense_kpe(k, box, 1, (96, 128)))
  assert (kpe[..., 0] < 0).all()                                    # a top-left crop looks left of the axis
  flipped_box = encoding.CropBox(640 - 128.0, 0.0, 128.0, 96.0)
  flipped = np.asarray(encoding.dense_kpe(k.flip_horizontal(), flipped_box, 1, (96, 128)))
  np.testing.assert_allclose(flipped[:, ::-1, 0], -kpe[..., 0], atol=1e-6)
