"""Moving digits: 1–2 scikit-learn digits bouncing on a black canvas, a local Moving-MNIST (issue 5).

W.A.L.T trains its causal tokenizer and transformer on 17-frame clips (walt.md §0: 17×128×128 → 5×16×16×8);
this is the embedded stand-in for UCF-101 that every tiny config trains on. It needs no network: the
digits ship with scikit-learn (data_pipelines/digits.py).

An example (T = 17 frames, S = resolution, K = number of digits):
  video      [T, S, S, 3] uint8   white digits on black (grey replicated to RGB, so the same tokenizer
                                  serves photos); where digits overlap the brighter pixel wins (max)
  label      []           int64   K = 1: the digit class, 0..9.
                                  K = 2: the *unordered* pair {a, b}, a <= b, numbered in lexicographic
                                  order: (0,0)=0, (0,1)=1, …, (0,9)=9, (1,1)=10, …, (9,9)=54 (55 classes);
                                  `pair_label(a, b)` / `pair_from_label(label)` convert.
  digits     [K]          int64   the digit classes, sorted ascending
  positions  [T, K, 2]    int32   top-left (row, col) of each digit's box in every frame

Motion: each digit starts at a uniform position with a speed of 1/32–1/16 of the canvas per frame in a
uniform direction, and bounces elastically off the walls (the box never leaves the canvas). Digit glyphs
are the 8×8 images upscaled bilinearly to 3/8 of the canvas (24 px at 64, 48 px at 128).

Splits: `train` digits come from digits.py's 1497 train images, `test` digits from its 300 held-out
images. Example `i` of a split is a pure function of (config.seed, split, i), so any subset can be
regenerated and the data does not depend on generation order or worker count.

Configs: one_digit_64, two_digits_64, one_digit_128, two_digits_128 (see `BUILDER_CONFIGS`); build with
`local_tfds.prepare(MovingDigits, data_dir, config="one_digit_64")` (~10 s for 2000 + 256 clips at 64×64
on 2 CPU cores, ~9 MB) and feed grain with
`video_datasets.VideoMapFn(resolution=config.resolution)` (uint8 -> float32 in [−1, 1]).
Frames as an image dataset: `FramesAsImages(source)` views every frame of a video source as an image
record {"image": [S, S, 3] uint8, "label"} without storing anything twice.
"""
from __future__ import annotations

import dataclasses
import functools
import itertools

import numpy as np
import tensorflow_datasets as tfds

from data_pipelines import local_tfds

from data_pipelines import digits as digits_data

NUM_FRAMES = 17
NUM_DIGIT_CLASSES = digits_data.NUM_CLASSES
# Unordered pairs (a, b), a <= b, in lexicographic order; index = two-digit label.
DIGIT_PAIRS = tuple(itertools.combinations_with_replacement(range(NUM_DIGIT_CLASSES), 2))
_PAIR_INDEX = {pair: index for index, pair in enumerate(DIGIT_PAIRS)}
_SPLIT_IDS = {"train": 0, "test": 1}


def pair_label(first: int, second: int) -> int:
  """Label of a two-digit clip showing digits `first` and `second` (in either order)."""
  return _PAIR_INDEX[(min(first, second), max(first, second))]


def pair_from_label(label: int) -> tuple[int, int]:
  """(a, b), a <= b, for a two-digit label."""
  return DIGIT_PAIRS[label]


def num_classes(num_digits: int) -> int:
  return {1: NUM_DIGIT_CLASSES, 2: len(DIGIT_PAIRS)}[num_digits]


@dataclasses.dataclass
class MovingDigitsConfig(tfds.core.BuilderConfig):
  resolution: int = 64
  num_digits: int = 1
  num_frames: int = NUM_FRAMES
  num_train: int = 2000
  num_test: int = 256
  seed: int = 0

  @property
  def digit_size(self) -> int:
    return self.resolution * 3 // 8


def _config(resolution: int, num_digits: int, num_train: int, num_test: int) -> MovingDigitsConfig:
  name = f"{'one_digit' if num_digits == 1 else 'two_digits'}_{resolution}"
  return MovingDigitsConfig(
      name=name, resolution=resolution, num_digits=num_digits, num_train=num_train, num_test=num_test,
      description=f"{num_digits} digit(s) bouncing on a {resolution}×{resolution} canvas, {NUM_FRAMES} frames.")


@functools.lru_cache(maxsize=4)
def _glyphs(split: str, size: int) -> tuple[np.ndarray, np.ndarray]:
  """(glyphs [N, size, size] float32 in [0, 1], labels [N]) of a split's digits, upscaled bilinearly."""
  from skimage.transform import resize  # pylint: disable=import-outside-toplevel
  images, labels = digits_data.load_arrays()[split]
  glyphs = resize(images.astype(np.float32) / 255.0, (len(images), size, size), order=1,
                  anti_aliasing=False, mode="edge")
  return np.clip(glyphs, 0.0, 1.0).astype(np.float32), labels


def bounce(start: np.ndarray, velocity: np.ndarray, num_frames: int, limit: int) -> np.ndarray:
  """Positions [T, ...] of points moving at `velocity` from `start`, reflected elastically in [0, limit].

  The unfolded path x = start + v·t is folded into [0, limit] by a triangle wave, the closed form of
  bouncing between two walls; positions are rounded to whole pixels.
  """
  unfolded = start[None] + velocity[None] * np.arange(num_frames).reshape(-1, *([1] * start.ndim))
  period = 2.0 * limit
  folded = limit - np.abs(np.mod(unfolded, period) - limit)
  return np.clip(np.rint(folded), 0, limit).astype(np.int32)


def generate_example(config: MovingDigitsConfig, split: str, index: int) -> dict[str, np.ndarray]:
  """Example `index` of `split`: a pure function of (config.seed, split, index)."""
  glyphs, glyph_labels = _glyphs(split, config.digit_size)
  rng = np.random.default_rng([config.seed, _SPLIT_IDS[split], index])
  size, canvas = config.digit_size, config.resolution
  limit = canvas - size
  chosen = rng.choice(len(glyphs), size=config.num_digits, replace=False)
  start = rng.uniform(0, limit, size=(config.num_digits, 2))
  speed = rng.uniform(canvas / 32, canvas / 16, size=config.num_digits)
  angle = rng.uniform(0, 2 * np.pi, size=config.num_digits)
  velocity = np.stack([speed * np.sin(angle), speed * np.cos(angle)], axis=-1)
  positions = bounce(start, velocity, config.num_frames, limit)  # [T, K, 2]

  frames = np.zeros((config.num_frames, canvas, canvas), np.float32)
  for t in range(config.num_frames):
    for k, glyph in enumerate(glyphs[chosen]):
      row, col = positions[t, k]
      window = frames[t, row:row + size, col:col + size]
      np.maximum(window, glyph, out=window)
  video = np.repeat(np.rint(frames * 255).astype(np.uint8)[..., None], 3, axis=-1)
  classes = np.sort(glyph_labels[chosen]).astype(np.int64)
  label = int(classes[0]) if config.num_digits == 1 else pair_label(int(classes[0]), int(classes[1]))
  return {"video": video, "label": label, "digits": classes, "positions": positions}


class MovingDigits(local_tfds.IndexedSplitsMixin, tfds.core.GeneratorBasedBuilder):
  """1–2 scikit-learn digits bouncing on a canvas, generated locally (see the module docstring)."""

  VERSION = tfds.core.Version("1.0.0")
  example_fn = staticmethod(generate_example)
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = [
      _config(64, 1, num_train=2000, num_test=256),
      _config(64, 2, num_train=2000, num_test=256),
      _config(128, 1, num_train=1000, num_test=128),
      _config(128, 2, num_train=1000, num_test=128),
  ]

  def _info(self) -> tfds.core.DatasetInfo:
    config = self.builder_config
    t, s, k = config.num_frames, config.resolution, config.num_digits
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            # zlib: the frames are mostly black, so they compress ~20×, and decode far faster than PNG.
            "video": tfds.features.Tensor(shape=(t, s, s, 3), dtype=np.uint8,
                                          encoding=tfds.features.Encoding.ZLIB),
            "label": tfds.features.ClassLabel(num_classes=num_classes(k)),
            "digits": tfds.features.Tensor(shape=(k,), dtype=np.int64),
            "positions": tfds.features.Tensor(shape=(t, k, 2), dtype=np.int32),
        }),
        supervised_keys=("video", "label"),
        homepage="https://scikit-learn.org/stable/modules/generated/sklearn.datasets.load_digits.html",
    )



class FramesAsImages:
  """Random-access view of a video source's frames as images: record i = frame i % T of video i // T.

  Works over any source of {"video": [T, H, W, C], "label", …} records (a tfds ArrayRecord data source,
  a list), e.g. to train W.A.L.T's image path or a per-frame classifier on moving digits. `frame_stride`
  keeps every n-th frame (consecutive frames are near-duplicates). Records: {"image": [H, W, C] uint8,
  "label": int64, "video_index": int64, "frame_index": int64}.
  """

  def __init__(self, source, num_frames: int = NUM_FRAMES, frame_stride: int = 1):
    self.source = source
    self.frame_indices = np.arange(0, num_frames, frame_stride)

  def __len__(self) -> int:
    return len(self.source) * len(self.frame_indices)

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    if not 0 <= index < len(self):
      raise IndexError(f"Frame record {index} out of range [0, {len(self)}).")
    video_index, position = divmod(int(index), len(self.frame_indices))
    record = self.source[video_index]
    frame_index = self.frame_indices[position]
    return {"image": np.asarray(record["video"][frame_index]), "label": np.int64(record["label"]),
            "video_index": np.int64(video_index), "frame_index": np.int64(frame_index)}
