"""Moving digits: shapes, labels, determinism per seed, bouncing inside the canvas, tfds round trip."""
import dataclasses

import numpy as np
import pytest

from data_pipelines import digits as digits_data
from data_pipelines import grain_pipeline, local_tfds, video_datasets
from data_pipelines import moving_digits as md
from zoo.training.task import DataShard

CONFIGS = md.MovingDigits.builder_configs


@pytest.mark.parametrize("name", ["one_digit_64", "two_digits_64", "one_digit_128", "two_digits_128"])
def test_example_shapes_dtypes_and_labels(name):
  config = CONFIGS[name]
  for index in range(3):
    example = md.generate_example(config, "train", index)
    s, k = config.resolution, config.num_digits
    assert example["video"].shape == (17, s, s, 3) and example["video"].dtype == np.uint8
    assert example["positions"].shape == (17, k, 2) and example["positions"].dtype == np.int32
    assert example["digits"].shape == (k,) and np.all(np.diff(example["digits"]) >= 0)
    assert 0 <= example["label"] < md.num_classes(k)
    expected = example["digits"][0] if k == 1 else md.pair_label(*example["digits"])
    assert example["label"] == expected
    # Grey digits replicated to RGB, on a black background, really drawn.
    assert np.array_equal(example["video"][..., 0], example["video"][..., 2])
    assert example["video"].max() > 200 and np.median(example["video"]) == 0


def test_pair_labels_cover_unordered_pairs_once():
  assert md.num_classes(2) == 55
  assert [md.pair_label(*md.pair_from_label(i)) for i in range(55)] == list(range(55))
  assert md.pair_label(3, 7) == md.pair_label(7, 3) == md.DIGIT_PAIRS.index((3, 7))
  assert md.pair_label(0, 0) == 0 and md.pair_label(0, 9) == 9 and md.pair_label(1, 1) == 10
  assert md.pair_label(9, 9) == 54


def test_deterministic_per_seed_split_and_index():
  config = CONFIGS["two_digits_64"]
  first, again = md.generate_example(config, "train", 5), md.generate_example(config, "train", 5)
  for key in first:
    np.testing.assert_array_equal(first[key], again[key])
  other_seed = md.generate_example(dataclasses.replace(config, seed=1), "train", 5)
  other_index = md.generate_example(config, "train", 6)
  test_split = md.generate_example(config, "test", 5)
  for different in (other_seed, other_index, test_split):
    assert not np.array_equal(first["video"], different["video"])


def test_test_split_uses_held_out_digit_images():
  config = CONFIGS["one_digit_64"]
  train_glyphs, _ = md._glyphs("train", config.digit_size)
  test_glyphs, _ = md._glyphs("test", config.digit_size)
  assert len(train_glyphs) == 1497 and len(test_glyphs) == digits_data.NUM_TEST


def test_bounce_reflects_off_both_walls():
  # From 2 at speed 5 in [0, 10]: 2, 7, (12 -> 8), (17 -> 3), (22 -> 2), 7, ...
  positions = md.bounce(np.array([2.0]), np.array([5.0]), 8, limit=10)[:, 0]
  np.testing.assert_array_equal(positions, [2, 7, 8, 3, 2, 7, 8, 3])
  positions = md.bounce(np.array([1.0]), np.array([-3.0]), 4, limit=10)[:, 0]
  np.testing.assert_array_equal(positions, [1, 2, 5, 8])


@pytest.mark.parametrize("name", ["one_digit_64", "two_digits_128"])
def test_digits_stay_inside_the_canvas_and_bounce(name):
  config = CONFIGS[name]
  limit = config.resolution - config.digit_size
  glyphs, _ = md._glyphs("train", config.digit_size)
  reversals = 0
  for index in range(40):
    example = md.generate_example(config, "train", index)
    positions = example["positions"]
    assert positions.min() >= 0 and positions.max() <= limit
    steps = np.diff(positions.astype(np.int64), axis=0)  # [T-1, K, 2]
    # Speed is 1/32..1/16 of the canvas per frame (±1 px rounding; a bounce only shortens a step).
    assert np.abs(steps).max() <= config.resolution / 16 + 1
    reversals += int(np.sum(steps[1:] * steps[:-1] < 0))
    if config.num_digits == 1:
      # The whole digit is drawn in every frame: nothing is cut off at the walls.
      brightness = example["video"][..., 0].astype(np.float64).sum(axis=(1, 2))
      rng = np.random.default_rng([config.seed, 0, index])
      glyph = glyphs[rng.choice(len(glyphs), size=1, replace=False)[0]]
      np.testing.assert_allclose(brightness, np.rint(glyph * 255).sum(), rtol=0, atol=0)
  assert reversals > 10  # digits really hit walls within 17 frames


def test_tfds_build_reads_back_the_generated_examples(tmp_path):
  config = dataclasses.replace(CONFIGS["two_digits_64"], name="tiny_two_digits", num_train=6, num_test=3)
  builder = local_tfds.prepare(md.MovingDigits, str(tmp_path), config=config)
  train, test = builder.as_data_source("train"), builder.as_data_source("test")
  assert len(train) == 6 and len(test) == 3
  assert builder.info.features["label"].num_classes == 55
  expected = [md.generate_example(config, "train", i) for i in range(6)]
  for record in train:  # tfds may reorder records: match each to its generated example
    matches = [e for e in expected if np.array_equal(e["video"], record["video"])]
    assert len(matches) == 1
    assert record["label"] == matches[0]["label"]
    np.testing.assert_array_equal(record["positions"], matches[0]["positions"])


def test_frames_as_images_and_grain_loader():
  config = CONFIGS["one_digit_64"]
  videos = [md.generate_example(config, "test", i) for i in range(4)]
  frames = md.FramesAsImages(videos, frame_stride=4)  # frames 0, 4, 8, 12, 16
  assert len(frames) == 4 * 5
  record = frames[7]  # video 1, its 3rd kept frame (frame 8)
  assert record["video_index"] == 1 and record["frame_index"] == 8
  np.testing.assert_array_equal(record["image"], videos[1]["video"][8])
  assert record["label"] == videos[1]["label"]
  with pytest.raises(IndexError):
    frames[len(frames)]

  loader = grain_pipeline.make_loader(videos, global_batch_size=2, shard=DataShard(0, 1), seed=0,
                                      map_fn=video_datasets.VideoMapFn(resolution=64))
  batch = next(iter(loader))
  assert batch["video"].shape == (2, 17, 64, 64, 3) and batch["video"].dtype == np.float32
  assert batch["video"].min() == -1.0 and batch["video"].max() <= 1.0
  assert batch["label"].dtype == np.int32
  image_loader = grain_pipeline.make_loader(frames, global_batch_size=4, shard=DataShard(0, 1), seed=0,
                                            map_fn=video_datasets.ImageMapFn(resolution=32))
  assert next(iter(image_loader))["image"].shape == (4, 32, 32, 3)
