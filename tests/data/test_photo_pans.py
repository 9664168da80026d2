"""Photo pans: shapes, labels, determinism, windows inside the photo, motion direction seen in the pixels."""
import dataclasses

import numpy as np
import pytest
from skimage.registration import phase_cross_correlation

from data_pipelines import local_tfds
from data_pipelines import photo_pans as pp

CONFIGS = pp.PhotoPans.builder_configs


def _grey(video):
  return video.astype(np.float64).mean(-1)


@pytest.mark.parametrize("name", ["pans_64", "pans_128"])
def test_shapes_labels_and_windows_inside_photo(name):
  config = CONFIGS[name]
  photos = pp.load_photos(2 * config.resolution)
  for index in range(12):
    example = pp.generate_example(config, "train", index)
    s = config.resolution
    assert example["video"].shape == (17, s, s, 3) and example["video"].dtype == np.uint8
    assert example["label"] == index % len(pp.MOTIONS)  # classes cycle: balanced in every prefix
    assert 0 <= example["photo"] < len(pp.PHOTOS)
    boxes = example["crop_boxes"]
    assert boxes.shape == (17, 4) and boxes.dtype == np.float32
    height, width = photos[example["photo"]].shape[:2]
    tops, lefts, sides = boxes[:, 0], boxes[:, 1], boxes[:, 2]
    assert tops.min() >= -1e-3 and lefts.min() >= -1e-3
    assert (tops + sides).max() <= height + 1e-3 and (lefts + sides).max() <= width + 1e-3
    assert example["video"].std() > 5  # a textured view, not a blank frame


def test_every_photo_loads_offline_as_rgb():
  photos = pp.load_photos(128)
  assert len(photos) == len(pp.PHOTOS)
  for photo in photos:
    assert photo.ndim == 3 and photo.shape[2] == 3 and min(photo.shape[:2]) == 128
    assert 0.0 <= photo.min() and photo.max() <= 1.0


def test_deterministic_per_seed():
  config = CONFIGS["pans_64"]
  first, again = pp.generate_example(config, "test", 3), pp.generate_example(config, "test", 3)
  np.testing.assert_array_equal(first["video"], again["video"])
  np.testing.assert_array_equal(first["crop_boxes"], again["crop_boxes"])
  assert not np.array_equal(first["video"], pp.generate_example(config, "train", 3)["video"])
  assert not np.array_equal(first["video"],
                            pp.generate_example(dataclasses.replace(config, seed=7), "test", 3)["video"])


def test_pans_move_the_content_the_named_way():
  """The measured frame-to-frame image shift matches the window motion, with the label's sign."""
  config = CONFIGS["pans_64"]
  expected_sign = {"pan_left": (0, -1), "pan_right": (0, 1), "pan_up": (-1, 0), "pan_down": (1, 0)}
  for index in range(8):
    example = pp.generate_example(config, "train", index)
    motion = pp.MOTIONS[example["label"]]
    if motion not in expected_sign:
      continue
    boxes, grey = example["crop_boxes"], _grey(example["video"])
    # Window displacement per frame in output pixels; phase correlation of frame t against t+1 measures
    # the same quantity from the pixels (the view moves by it, so the content moves by minus it).
    window_step = (boxes[1, :2] - boxes[0, :2]) * config.resolution / boxes[0, 2]
    measured, _, _ = phase_cross_correlation(grey[0], grey[1], upsample_factor=10)
    np.testing.assert_allclose(measured, window_step, atol=0.3)
    assert np.all(np.sign(np.round(window_step, 3)) == expected_sign[motion])


def test_zooms_change_scale_consistently_with_their_windows():
  config = CONFIGS["pans_64"]
  s = config.resolution
  for index in (4, 5, 10, 11):  # zoom_in, zoom_out, zoom_in, zoom_out
    example = pp.generate_example(config, "train", index)
    motion = pp.MOTIONS[example["label"]]
    sides = example["crop_boxes"][:, 2]
    assert np.all(np.diff(sides) < 0) if motion == "zoom_in" else np.all(np.diff(sides) > 0)
    # The smallest window's view, cut out of the largest window's frame and upscaled, is that view.
    wide, narrow = (0, -1) if motion == "zoom_in" else (-1, 0)
    box_wide, box_narrow = example["crop_boxes"][wide], example["crop_boxes"][narrow]
    region = np.concatenate([(box_narrow[:2] - box_wide[:2]) * s / box_wide[2],
                             box_narrow[2:] * s / box_wide[2]])
    frames = example["video"].astype(np.float32) / 255
    predicted = pp.render_window(frames[wide], region, s)
    correlation = np.corrcoef(predicted.ravel(), frames[narrow].ravel())[0, 1]
    assert correlation > 0.9, (motion, correlation)


def test_render_window_at_native_scale_copies_pixels():
  photo = np.random.default_rng(0).uniform(size=(40, 50, 3)).astype(np.float32)
  view = pp.render_window(photo, np.array([5.0, 7.0, 16.0, 16.0]), 16)
  np.testing.assert_allclose(view, photo[5:21, 7:23], atol=1e-6)


def test_tfds_build_round_trip(tmp_path):
  config = dataclasses.replace(CONFIGS["pans_64"], name="tiny_pans", num_train=6, num_test=2)
  builder = local_tfds.prepare(pp.PhotoPans, str(tmp_path), config=config)
  train = builder.as_data_source("train")
  assert len(train) == 6 and len(builder.as_data_source("test")) == 2
  assert builder.info.features["label"].names == list(pp.MOTIONS)
  labels = sorted(int(record["label"]) for record in train)
  assert labels == list(range(6))  # one example of each motion
  generated = [pp.generate_example(config, "train", i) for i in range(6)]  # index == label for i < 6
  for record in train:
    label = int(record["label"])
    stored = np.asarray(record["video"])
    assert stored.shape == generated[label]["video"].shape and stored.dtype == np.uint8
    # JPEG storage (quality 95) on 64-px textures: PSNR 34-48 dB against the generated clip, and far
    # closer to it than to any other clip.
    distances = [np.mean((stored.astype(np.float64) - g["video"]) ** 2) for g in generated]
    assert 10 * np.log10(255 ** 2 / distances[label]) > 32
    assert distances[label] < 0.1 * min(d for i, d in enumerate(distances) if i != label)
    np.testing.assert_allclose(record["crop_boxes"], generated[label]["crop_boxes"])
