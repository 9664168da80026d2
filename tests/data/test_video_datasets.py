"""Real-dataset paths (UCF-101, Kinetics-600, ImageNet) with tfds mock data, and the shared map functions."""
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds

from data_pipelines import grain_pipeline
from data_pipelines import video_datasets as vd
from zoo.training.task import DataShard


def test_clip_indices_are_centred_strided_and_padded():
  np.testing.assert_array_equal(vd.clip_frame_indices(20, num_frames=5, frame_stride=1), [7, 8, 9, 10, 11])
  # Span 13 in 20 frames: 3 frames before it, 4 after (the odd frame goes to the end).
  np.testing.assert_array_equal(vd.clip_frame_indices(20, num_frames=5, frame_stride=3), [3, 6, 9, 12, 15])
  # Shorter than the clip: the last frame repeats.
  np.testing.assert_array_equal(vd.clip_frame_indices(3, num_frames=5, frame_stride=1), [0, 1, 2, 2, 2])
  assert len(vd.clip_frame_indices(500)) == vd.NUM_FRAMES
  with pytest.raises(ValueError, match="no frames"):
    vd.clip_frame_indices(0)


def test_resize_and_center_crop_shapes_and_content():
  rng = np.random.default_rng(0)
  landscape = rng.integers(0, 256, (3, 60, 90, 3), dtype=np.uint8)
  assert vd.resize_and_center_crop(landscape, 32).shape == (3, 32, 32, 3)
  grey_portrait = np.full((50, 20), 77, np.uint8)  # [H, W] grey image
  out = vd.resize_and_center_crop(grey_portrait, 16)
  assert out.shape == (16, 16, 3) and np.all(out == 77)  # a constant stays constant
  # The centre crop keeps the centre: a bright vertical stripe in the middle of a wide frame survives.
  frame = np.zeros((40, 120, 3), np.uint8)
  frame[:, 55:65] = 255
  cropped = vd.resize_and_center_crop(frame, 40)
  assert cropped[:, 15:25].mean() > 200 and cropped[:, :10].max() == 0
  # Already the right size: returned unchanged.
  np.testing.assert_array_equal(vd.resize_and_center_crop(landscape[:, :32, :32], 32), landscape[:, :32, :32])


def test_value_range_round_trip():
  pixels = np.arange(256, dtype=np.uint8)
  model = vd.to_model_range(pixels)
  assert model.dtype == np.float32 and model.min() == -1.0 and model.max() == 1.0
  np.testing.assert_array_equal(vd.to_uint8(model), pixels)


def test_video_map_fn_on_a_long_real_sized_video():
  video = np.random.default_rng(1).integers(0, 256, (60, 72, 96, 3), dtype=np.uint8)
  out = vd.VideoMapFn(num_frames=17, resolution=32, frame_stride=2)({"video": video, "label": 7})
  assert out["video"].shape == (17, 32, 32, 3) and out["video"].dtype == np.float32
  assert -1.0 <= out["video"].min() and out["video"].max() <= 1.0
  assert out["label"] == 7 and out["label"].dtype == np.int32
  as_bytes = vd.VideoMapFn(num_frames=17, resolution=32, frame_stride=2, as_uint8=True)(
      {"video": video, "label": 7})["video"]
  assert as_bytes.dtype == np.uint8
  np.testing.assert_array_equal(vd.to_model_range(as_bytes), out["video"])
  # Frames 13, 15, ..., 45 (centred span of 33 in 60): the first output frame comes from frame 13.
  np.testing.assert_array_equal(as_bytes[0], vd.resize_and_center_crop(video[13], 32))


def test_ucf101_with_mock_data_through_grain():
  with tfds.testing.mock_data(num_examples=4):
    source = vd.ucf101_source("train", data_dir="/nonexistent")
    assert len(source) == 4
    loader = grain_pipeline.make_loader(source, global_batch_size=2, shard=DataShard(0, 1), seed=0,
                                        map_fn=vd.VideoMapFn())
    batch = next(iter(loader))
  assert batch["video"].shape == (2, 17, 128, 128, 3) and batch["video"].dtype == np.float32
  assert batch["label"].shape == (2,) and np.all((0 <= batch["label"]) & (batch["label"] < 101))


def test_kinetics600_with_mock_data():
  with tfds.testing.mock_data(num_examples=3):
    source = vd.kinetics600_source("validation", data_dir="/nonexistent")
    record = source[0]
  assert np.asarray(record["video"]).shape == (17, 128, 128, 3)
  out = vd.VideoMapFn()(record)
  assert out["video"].shape == (17, 128, 128, 3) and 0 <= out["label"] < 600


def test_imagenet_with_mock_data():
  with tfds.testing.mock_data(num_examples=3):
    source = vd.imagenet_source("validation", data_dir="/nonexistent")
    records = [source[i] for i in range(3)]
  for record in records:  # mock images have random sizes; all come out 128×128 RGB
    out = vd.ImageMapFn()(record)
    assert out["image"].shape == (128, 128, 3) and out["image"].dtype == np.float32
    assert 0 <= out["label"] < 1000


@pytest.mark.parametrize("opener, message", [
    (vd.ucf101_source, "UCF-101 not found in .*prepare ucf101"),
    (vd.kinetics600_source, "Kinetics-600 not found in .*prepare kinetics600 .*--manual_dir"),
    (vd.imagenet_source, r"ImageNet \(imagenet2012\) not found in .*ILSVRC2012_img_train.tar.*prepare imagenet2012"),
])
def test_missing_data_errors_name_the_fix(tmp_path, opener, message):
  with pytest.raises(FileNotFoundError, match=message):
    opener(data_dir=str(tmp_path))


def _write_frame_folders(root, splits, classes, frames_per_clip=7):
  """<root>/<split>/<class>/clip<k>/<frame>.png; each clip is one flat grey, 40 + 150 × (class's position
  in `classes`), so the stored pixels say which folder a record came from."""
  import imageio.v3 as iio
  for split in splits:
    for position, name in enumerate(classes):
      for clip in range(2):
        folder = os.path.join(root, split, name, f"clip{clip}")
        os.makedirs(folder)
        for frame in range(frames_per_clip):
          iio.imwrite(os.path.join(folder, f"{frame:05d}.png"), np.full((24, 30, 3), 40 + 150 * position, np.uint8))


def test_video_folder_builds_kinetics_layout_from_frame_folders(tmp_path):
  manual_dir = str(tmp_path / "manual")
  _write_frame_folders(manual_dir, ["train", "validate"], ["bowling", "archery"])
  config = vd.VideoFolderConfig(name="tiny", num_classes=2, num_frames=5, resolution=16)
  builder = vd.VideoFolder(config=config, data_dir=str(tmp_path / "data"), file_format=vd.FILE_FORMAT)
  builder.download_and_prepare(file_format=vd.FILE_FORMAT,
                               download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  assert set(builder.info.splits) == {"train", "validation"}  # "validate" on disk
  source = builder.as_data_source("validation")
  assert len(source) == 4
  for record in source:
    video = np.asarray(record["video"])
    assert video.shape == (5, 16, 16, 3)
    # Labels are indices of the sorted class folders: archery = 0, bowling = 1 ...
    assert record["label"] == {b"archery": 0, b"bowling": 1}[record["label_name"]]
    # ... and the pixels come from that folder (bowling was written first: grey 40; archery: 190).
    assert abs(video.mean() - {b"bowling": 40, b"archery": 190}[record["label_name"]]) < 3

  # The same data stored as TFRecord cannot be read with random access: the error says to rebuild.
  tfrecord_builder = vd.VideoFolder(config=config, data_dir=str(tmp_path / "tfrecord"), file_format="tfrecord")
  tfrecord_builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
  with pytest.raises(ValueError, match="needs ArrayRecord"):
    vd._open_source(vd.VideoFolder(config=config, data_dir=str(tmp_path / "tfrecord")), "train", "Tiny", "rebuild")


def test_video_folder_rejects_wrong_class_count(tmp_path):
  manual_dir = str(tmp_path / "manual")
  _write_frame_folders(manual_dir, ["train"], ["a", "b"], frames_per_clip=2)
  builder = vd.VideoFolder(config="kinetics600", data_dir=str(tmp_path / "data"))
  with pytest.raises(ValueError, match="has 2 class folders; config kinetics600 expects 600"):
    builder.download_and_prepare(file_format=vd.FILE_FORMAT,
                                 download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
