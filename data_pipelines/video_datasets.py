"""Real video/image datasets for W.A.L.T (UCF-101, Kinetics-600, ImageNet) and the grain map functions that
turn generated and real records alike into model inputs.

W.A.L.T trains on 17-frame 128×128 clips (walt.md §0, §1.9: "UCF-101 and K600 use the standard splits";
ImageNet is the image task, an image being a 1-frame video). The zoo never downloads at run time: the real
datasets are read when the user has prepared them, and the embedded defaults are
data_pipelines/moving_digits.py and data_pipelines/photo_pans.py.

Preprocessing, the same for every source (`VideoMapFn`, `ImageMapFn`):
  - clip: `num_frames` (17) frames `frame_stride` apart, centred in the video (deterministic, so evals
    and resumed runs see the same clips); videos shorter than the clip repeat their last frame;
  - space: shorter side resized to `resolution` (128) with PIL's anti-aliased bilinear filter, then a
    centre crop to resolution × resolution; grey frames become RGB;
  - values: stored uint8 in [0, 255]; the model sees float32 in [−1, 1] (x / 127.5 − 1), or uint8 with
    `as_uint8=True` to convert on device and send 4× fewer bytes to the accelerator.
  Records already in the target shape (the generated datasets) pass through untouched apart from the
  value mapping.

Real datasets (all are random-access ArrayRecord sources for data_pipelines/grain_pipeline.make_loader):
  ucf101_source(split)        tfds `ucf101` (config ucf101_1_256: split 1, 256×256 frames; train/test),
                              prepared once on a machine with network:
                                python -m data_pipelines.video_datasets prepare ucf101 --data_dir DIR
  kinetics600_source(split)   the `VideoFolder` builder below, config `kinetics600`, built from clips the
                              user downloaded (tfds has no Kinetics builder); layout in
                              VideoFolder.MANUAL_DOWNLOAD_INSTRUCTIONS; 17×128×128 clips stored as JPEG
                                python -m data_pipelines.video_datasets prepare kinetics600 \
                                    --data_dir DIR --manual_dir K600_DIR
  imagenet_source(split)      tfds `imagenet2012` from the two ILSVRC2012 tars (train/validation):
                                python -m data_pipelines.video_datasets prepare imagenet2012 \
                                    --data_dir DIR --manual_dir TARS_DIR
Each raises FileNotFoundError naming that command when the data is missing. data_dir resolution:
argument > $TFDS_DATA_DIR > ~/tensorflow_datasets (data_pipelines/local_tfds.py).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from typing import Any, Iterator, Sequence

import numpy as np
import tensorflow_datasets as tfds

from data_pipelines import local_tfds

NUM_FRAMES = 17
RESOLUTION = 128
FILE_FORMAT = local_tfds.FILE_FORMAT

# ---- preprocessing (numpy / PIL; runs in grain worker threads) --------------------------------------


def clip_frame_indices(num_available: int, num_frames: int = NUM_FRAMES, frame_stride: int = 1) -> np.ndarray:
  """Indices [num_frames] of a clip of `num_frames` frames `frame_stride` apart, centred in the video.

  A video shorter than the clip's span repeats its last frame (indices are clipped).
  """
  if num_available < 1:
    raise ValueError("The video has no frames.")
  span = (num_frames - 1) * frame_stride + 1
  start = max((num_available - span) // 2, 0)
  return np.minimum(start + np.arange(num_frames) * frame_stride, num_available - 1)


def resize_and_center_crop(frames: np.ndarray, resolution: int) -> np.ndarray:
  """[..., H, W(, C)] uint8 -> [..., resolution, resolution, 3] uint8: shorter side to `resolution`
  (PIL bilinear, anti-aliased when shrinking), centre crop, grey/RGBA -> RGB."""
  from PIL import Image  # pylint: disable=import-outside-toplevel
  frames = np.asarray(frames)
  if frames.dtype != np.uint8:
    raise ValueError(f"Expected uint8 frames; got {frames.dtype}.")
  if frames.shape[-1] not in (1, 3, 4):
    frames = frames[..., None]  # [..., H, W] grey
  frames = frames[..., :3]
  if frames.shape[-1] == 1:
    frames = np.repeat(frames, 3, axis=-1)
  height, width = frames.shape[-3:-1]
  if (height, width) == (resolution, resolution):
    return frames
  scale = resolution / min(height, width)
  new_height, new_width = max(resolution, round(height * scale)), max(resolution, round(width * scale))
  top, left = (new_height - resolution) // 2, (new_width - resolution) // 2
  flat = frames.reshape(-1, height, width, 3)
  out = np.empty((len(flat), resolution, resolution, 3), np.uint8)
  for i, frame in enumerate(flat):
    resized = Image.fromarray(frame).resize((new_width, new_height), Image.BILINEAR)
    out[i] = np.asarray(resized)[top:top + resolution, left:left + resolution]
  return out.reshape(frames.shape[:-3] + (resolution, resolution, 3))


def preprocess_video(video: np.ndarray, num_frames: int = NUM_FRAMES, resolution: int = RESOLUTION,
                     frame_stride: int = 1) -> np.ndarray:
  """uint8 video [T, H, W(, C)] -> uint8 clip [num_frames, resolution, resolution, 3]."""
  video = np.asarray(video)
  indices = clip_frame_indices(len(video), num_frames, frame_stride)
  return resize_and_center_crop(video[indices], resolution)


def to_model_range(pixels: np.ndarray) -> np.ndarray:
  """uint8 [0, 255] -> float32 [−1, 1]."""
  return np.asarray(pixels, np.float32) / 127.5 - 1.0


def to_uint8(values: np.ndarray) -> np.ndarray:
  """float [−1, 1] -> uint8 [0, 255] (clipped, rounded): the inverse of `to_model_range`."""
  return np.clip(np.rint((np.asarray(values, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


# ---- grain map functions, shared by generated and real data ------------------------------------------


@dataclasses.dataclass(frozen=True)
class VideoMapFn:
  """record {video_key: uint8 [T, H, W(, C)], label_key: int} -> {"video": [num_frames, R, R, 3], "label"}.

  The record's video may be an array or a list of frames (tfds `Video` features read that way).

  "video" is float32 in [−1, 1] (or uint8 with `as_uint8`); "label" is int32. Pass as
  `make_loader(..., map_fn=VideoMapFn())`. A frozen dataclass, so it pickles into grain worker processes.
  """
  num_frames: int = NUM_FRAMES
  resolution: int = RESOLUTION
  frame_stride: int = 1
  video_key: str = "video"
  label_key: str = "label"
  as_uint8: bool = False

  def __call__(self, record: dict[str, Any]) -> dict[str, np.ndarray]:
    clip = preprocess_video(record[self.video_key], self.num_frames, self.resolution, self.frame_stride)
    return {"video": clip if self.as_uint8 else to_model_range(clip),
            "label": np.int32(record[self.label_key])}


@dataclasses.dataclass(frozen=True)
class ImageMapFn:
  """record {image_key: uint8 [H, W(, C)], label_key: int} -> {"image": [R, R, 3], "label": int32}.

  Shorter side to `resolution`, centre crop (ImageNet's standard evaluation crop at 128 is the same
  operation); "image" float32 in [−1, 1] or uint8 with `as_uint8`. W.A.L.T encodes an image as a 1-frame
  video: `image[None]` is [1, R, R, 3].
  """
  resolution: int = RESOLUTION
  image_key: str = "image"
  label_key: str = "label"
  as_uint8: bool = False

  def __call__(self, record: dict[str, Any]) -> dict[str, np.ndarray]:
    image = resize_and_center_crop(record[self.image_key], self.resolution)
    return {"image": image if self.as_uint8 else to_model_range(image),
            "label": np.int32(record[self.label_key])}


# ---- Kinetics (and any class-per-folder video collection) ---------------------------------------------

VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv", ".mov")
FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png")
# Kinetics calls its validation split "validate"; both names are accepted on disk.
_SPLIT_DIRECTORY_NAMES = {"train": ("train",), "validation": ("validation", "validate", "val"),
                          "test": ("test",)}


@dataclasses.dataclass
class VideoFolderConfig(tfds.core.BuilderConfig):
  num_classes: int = 600
  num_frames: int = NUM_FRAMES
  resolution: int = RESOLUTION
  frame_stride: int = 1


def read_video(path: str) -> np.ndarray:
  """uint8 frames [T, H, W, 3] of a video file, or of a directory of frame images (sorted by name)."""
  import imageio.v3 as iio  # pylint: disable=import-outside-toplevel
  if os.path.isdir(path):
    names = sorted(n for n in os.listdir(path) if n.lower().endswith(FRAME_EXTENSIONS))
    if not names:
      raise FileNotFoundError(f"No {FRAME_EXTENSIONS} frames in {path}.")
    return np.stack([iio.imread(os.path.join(path, n)) for n in names])
  try:
    return np.asarray(iio.imread(path, index=None))
  except Exception as error:  # imageio raises different types per missing plugin
    raise ImportError(
        f"Could not decode {path}: video files need a decoder plugin for imageio (`pip install av` or "
        "`pip install imageio[ffmpeg]`), or extract the frames into a directory of JPEG/PNG files "
        "named in temporal order.") from error


class VideoFolder(tfds.core.GeneratorBasedBuilder):
  """Clips from a class-per-folder video collection, preprocessed at build time to W.A.L.T's clip shape."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = [
      VideoFolderConfig(name="kinetics600", num_classes=600,
                        description="Kinetics-600 clips: 17 frames at 128×128, stride 1."),
  ]
  MANUAL_DOWNLOAD_INSTRUCTIONS = """
  Put the videos (e.g. Kinetics-600, fetched with https://github.com/cvdfoundation/kinetics-dataset)
  under manual_dir, one folder per split and one sub-folder per class:
      <manual_dir>/train/<class name>/<clip>.mp4          (.mp4 .avi .webm .mkv .mov, decoded by imageio:
      <manual_dir>/validation/<class name>/<clip>.mp4      `pip install av`), or
      <manual_dir>/test/<class name>/<clip>/00001.jpg     a folder of frames named in temporal order
  ("validate" or "val" is accepted for validation). Labels are the class folders' indices in sorted
  order of the train split (600 classes for kinetics600); a split that is absent is skipped.
  Then: python -m data_pipelines.video_datasets prepare kinetics600 --data_dir DIR --manual_dir <manual_dir>
  """

  def _info(self) -> tfds.core.DatasetInfo:
    config = self.builder_config
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            # JPEG per frame: natural video compresses ~10× better than with zlib.
            "video": tfds.features.Video(
                shape=(config.num_frames, config.resolution, config.resolution, 3), encoding_format="jpeg"),
            "label": tfds.features.ClassLabel(num_classes=config.num_classes),
            "label_name": tfds.features.Text(),
            "clip_id": tfds.features.Text(),
        }),
        supervised_keys=("video", "label"),
    )

  def _split_generators(self, dl_manager):
    root = dl_manager.manual_dir
    split_dirs = {}
    for split, names in _SPLIT_DIRECTORY_NAMES.items():
      for name in names:
        if os.path.isdir(os.path.join(root, name)):
          split_dirs[split] = os.path.join(root, name)
          break
    if "train" not in split_dirs:
      raise FileNotFoundError(f"No train/ folder in {root}.{self.MANUAL_DOWNLOAD_INSTRUCTIONS}")
    class_names = sorted(os.listdir(split_dirs["train"]))
    if len(class_names) != self.builder_config.num_classes:
      raise ValueError(f"{split_dirs['train']} has {len(class_names)} class folders; config "
                       f"{self.builder_config.name} expects {self.builder_config.num_classes}.")
    return {split: self._generate_examples(path, class_names) for split, path in split_dirs.items()}

  def _generate_examples(self, split_dir: str, class_names: Sequence[str]) -> Iterator[tuple[str, dict]]:
    config = self.builder_config
    for label, class_name in enumerate(class_names):
      class_dir = os.path.join(split_dir, class_name)
      if not os.path.isdir(class_dir):
        continue
      for clip in sorted(os.listdir(class_dir)):
        path = os.path.join(class_dir, clip)
        if not (os.path.isdir(path) or clip.lower().endswith(VIDEO_EXTENSIONS)):
          continue
        video = preprocess_video(read_video(path), config.num_frames, config.resolution,
                                 config.frame_stride)
        key = f"{class_name}/{clip}"
        yield key, {"video": video, "label": label, "label_name": class_name, "clip_id": key}


# ---- opening prepared datasets with errors that name the fix ------------------------------------------


def _open_source(builder: tfds.core.DatasetBuilder, split: str, display_name: str, prepare_hint: str):
  """builder.as_data_source(split), or an error that says what is missing and how to fix it."""
  try:
    return builder.as_data_source(split)
  except Exception as error:  # tfds raises AssertionError/NotImplementedError/ValueError by state
    if not os.path.exists(os.path.join(builder.data_dir, "dataset_info.json")):
      raise FileNotFoundError(
          f"{display_name} not found in {builder.data_dir}: {prepare_hint}") from error
    file_format = builder.info.file_format
    if file_format is not None and str(getattr(file_format, "value", file_format)) != FILE_FORMAT:
      raise ValueError(
          f"{display_name} in {builder.data_dir} is stored as {file_format}, but grain reads it with "
          f"random access and needs ArrayRecord. Rebuild it with: {prepare_hint}") from error
    if split not in builder.info.splits:
      raise ValueError(f"{display_name} has no split {split!r}; it has {list(builder.info.splits)}.") from error
    raise


def ucf101_source(split: str = "train", data_dir: str | None = None, config: str = "ucf101_1_256"):
  """UCF-101 records {"video": uint8 [T, 256, 256, 3] (whole video), "label": 0..100}; train/test."""
  data_dir = local_tfds.resolve_data_dir(data_dir)
  builder = tfds.builder(f"ucf101/{config}", data_dir=data_dir)
  hint = (f"download it (6.5 GB from https://www.crcv.ucf.edu/data/UCF101.php; this needs network once) "
          f"and build it as ArrayRecord with `python -m data_pipelines.video_datasets prepare ucf101 "
          f"--data_dir {data_dir}`, then copy {data_dir}/ucf101 to the training machine.")
  return _open_source(builder, split, "UCF-101", hint)


def kinetics600_source(split: str = "train", data_dir: str | None = None):
  """Kinetics-600 records {"video": uint8 [17, 128, 128, 3], "label": 0..599, ...} from `VideoFolder`."""
  data_dir = local_tfds.resolve_data_dir(data_dir)
  builder = VideoFolder(config="kinetics600", data_dir=data_dir, file_format=FILE_FORMAT)
  hint = ("arrange the downloaded clips as described in VideoFolder.MANUAL_DOWNLOAD_INSTRUCTIONS "
          "(<manual_dir>/{train,validation,test}/<class>/<clip>.mp4) and run `python -m "
          f"data_pipelines.video_datasets prepare kinetics600 --data_dir {data_dir} --manual_dir <manual_dir>`.")
  return _open_source(builder, split, "Kinetics-600", hint)


def imagenet_source(split: str = "train", data_dir: str | None = None):
  """ImageNet-1k records {"image": uint8 [H, W, 3] (variable size), "label": 0..999, ...};
  train/validation."""
  data_dir = local_tfds.resolve_data_dir(data_dir)
  builder = tfds.builder("imagenet2012", data_dir=data_dir)
  hint = ("download ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar from https://image-net.org "
          "(registration required) into a folder and run `python -m data_pipelines.video_datasets prepare "
          f"imagenet2012 --data_dir {data_dir} --manual_dir <that folder>`.")
  return _open_source(builder, split, "ImageNet (imagenet2012)", hint)


def prepare(name: str, data_dir: str | None = None, manual_dir: str | None = None) -> str:
  """Builds a real dataset as ArrayRecord into data_dir (the one-time step the errors above name)."""
  if name not in ("ucf101", "kinetics600", "imagenet2012"):
    raise ValueError(f"Unknown dataset {name!r}; choose ucf101, kinetics600 or imagenet2012.")
  if name != "ucf101" and not manual_dir:
    raise ValueError(f"{name} is built from files you downloaded: pass --manual_dir.")
  data_dir = local_tfds.resolve_data_dir(data_dir)
  if name == "kinetics600":
    builder = VideoFolder(config="kinetics600", data_dir=data_dir, file_format=FILE_FORMAT)
  else:
    # tfds's own builders: ucf101 downloads its archives (network needed once), imagenet2012 reads the
    # two tars from manual_dir.
    builder = tfds.builder("ucf101/ucf101_1_256" if name == "ucf101" else name, data_dir=data_dir,
                           file_format=FILE_FORMAT)
  download_config = tfds.download.DownloadConfig(manual_dir=manual_dir)
  builder.download_and_prepare(file_format=FILE_FORMAT, download_config=download_config)
  return builder.data_dir


def main(argv: Sequence[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description="Build a real dataset as ArrayRecord for grain.")
  commands = parser.add_subparsers(dest="command", required=True)
  prepare_parser = commands.add_parser("prepare")
  prepare_parser.add_argument("name", choices=("ucf101", "kinetics600", "imagenet2012"))
  prepare_parser.add_argument("--data_dir", default=None)
  prepare_parser.add_argument("--manual_dir", default=None)
  args = parser.parse_args(argv)
  print(prepare(args.name, args.data_dir, args.manual_dir))


if __name__ == "__main__":
  main()
