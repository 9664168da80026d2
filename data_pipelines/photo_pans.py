"""Photo pans: a virtual camera panning or zooming across scikit-image's sample photos (issue 5).

Natural-image texture and global motion, the two things moving digits lack, with no download: the photos
ship inside scikit-image (the `skimage.data` images that load without `pooch`; see `PHOTOS`). This is the
embedded analogue of camera motion in UCF-101 / Kinetics for W.A.L.T's tokenizer (17-frame clips, §0).

An example (T = 17 frames, S = resolution):
  video      [T, S, S, 3] uint8    the camera's view in each frame (grey photos replicated to RGB); stored
                                   as JPEG frames, so a read-back record differs from
                                   `generate_example` by a few levels
  label      []           int64    the camera motion, index into MOTIONS:
                                   pan_left, pan_right, pan_up, pan_down, zoom_in, zoom_out.
                                   Named after the *camera*: when the camera pans left, the scene
                                   moves right in the frame; zoom_in = the view window shrinks.
  photo      []           int64    index into PHOTOS
  crop_boxes [T, 4]       float32  the view window in each frame, (top, left, height, width) in pixels of
                                   the photo after it was rescaled to a short side of 2·S (see below)

How a clip is made: the photo is rescaled (anti-aliased) so its short side is 2·S; the view is a square
window of side 0.5–0.8 of that short side (zooms go between 0.4 and 0.85 by a factor of 1.4–1.9); pans
travel 0.15–0.35 of the short side in T frames, at constant speed; every frame is the window resampled
bilinearly to S×S. Windows always lie inside the photo.

Configs: pans_64 (1200 + 180 clips, ~30 s to build on 2 CPU cores, ~45 MB) and pans_128 (600 + 120);
`local_tfds.prepare(PhotoPans, data_dir, config="pans_64")`, then
`video_datasets.VideoMapFn(resolution=config.resolution)` in the grain loader.

Splits: both splits use every photo; `train` and `test` differ in the random windows and motions
(example `i` of a split is a pure function of (config.seed, split, i)). A photo-disjoint split would leave
too few photos per side.
"""
from __future__ import annotations

import dataclasses
import functools

import numpy as np
import tensorflow_datasets as tfds

from data_pipelines import local_tfds

NUM_FRAMES = 17
MOTIONS = ("pan_left", "pan_right", "pan_up", "pan_down", "zoom_in", "zoom_out")
# skimage.data photos that ship with the package (no pooch download), chosen for natural texture.
PHOTOS = ("astronaut", "brick", "camera", "chelsea", "clock", "coffee", "coins", "grass", "gravel",
          "hubble_deep_field", "immunohistochemistry", "moon", "retina", "rocket")
_SPLIT_IDS = {"train": 0, "test": 1}
# Motion extents, as fractions of the rescaled photo's short side.
WINDOW_RANGE = (0.5, 0.8)
PAN_DISTANCE_RANGE = (0.15, 0.35)
ZOOM_WINDOW_RANGE = (0.4, 0.85)
ZOOM_FACTOR_RANGE = (1.4, 1.9)


@dataclasses.dataclass
class PhotoPansConfig(tfds.core.BuilderConfig):
  resolution: int = 64
  num_frames: int = NUM_FRAMES
  num_train: int = 1200
  num_test: int = 180
  seed: int = 0


@functools.lru_cache(maxsize=2)
def load_photos(short_side: int) -> tuple[np.ndarray, ...]:
  """PHOTOS as float32 RGB arrays in [0, 1], each rescaled (anti-aliased) to the given short side."""
  from skimage import data, transform  # pylint: disable=import-outside-toplevel
  photos = []
  for name in PHOTOS:
    image = getattr(data, name)()
    if image.ndim == 2:
      image = np.repeat(image[..., None], 3, axis=-1)
    image = image[..., :3].astype(np.float32) / 255.0
    scale = short_side / min(image.shape[:2])
    shape = (round(image.shape[0] * scale), round(image.shape[1] * scale), 3)
    photos.append(transform.resize(image, shape, order=1, anti_aliasing=scale < 1).astype(np.float32))
  return tuple(photos)


def render_window(photo: np.ndarray, box: np.ndarray, resolution: int) -> np.ndarray:
  """The window `box` = (top, left, height, width) of photo [H, W, 3] resampled bilinearly to [S, S, 3].

  Output pixel centres sit at box_top + (i + 0.5)·height/S (half-pixel convention), so a window of
  exactly S pixels reproduces the photo's pixels.
  """
  top, left, height, width = box
  rows = top + (np.arange(resolution) + 0.5) * (height / resolution) - 0.5
  cols = left + (np.arange(resolution) + 0.5) * (width / resolution) - 0.5
  rows = np.clip(rows, 0, photo.shape[0] - 1)
  cols = np.clip(cols, 0, photo.shape[1] - 1)
  row0 = np.minimum(np.floor(rows).astype(np.int64), photo.shape[0] - 2)
  col0 = np.minimum(np.floor(cols).astype(np.int64), photo.shape[1] - 2)
  row_frac = (rows - row0)[:, None, None]
  col_frac = (cols - col0)[None, :, None]
  top_rows = photo[row0][:, col0] * (1 - col_frac) + photo[row0][:, col0 + 1] * col_frac
  bottom_rows = photo[row0 + 1][:, col0] * (1 - col_frac) + photo[row0 + 1][:, col0 + 1] * col_frac
  return top_rows * (1 - row_frac) + bottom_rows * row_frac


def camera_path(motion: str, photo_shape: tuple[int, int], num_frames: int,
                rng: np.random.Generator) -> np.ndarray:
  """Windows [T, 4] = (top, left, height, width) of a square view moving as `motion` inside the photo."""
  photo_height, photo_width = photo_shape
  short_side = min(photo_shape)
  progress = np.linspace(0.0, 1.0, num_frames)
  if motion.startswith("pan"):
    side = rng.uniform(*WINDOW_RANGE) * short_side
    distance = rng.uniform(*PAN_DISTANCE_RANGE) * short_side
    horizontal = motion in ("pan_left", "pan_right")
    room = (photo_width if horizontal else photo_height) - side
    distance = min(distance, room)  # a pan never leaves the photo
    start_along = rng.uniform(0, room - distance)
    across = rng.uniform(0, (photo_height if horizontal else photo_width) - side)
    # Camera pans right/down = window moves towards larger column/row.
    direction = 1.0 if motion in ("pan_right", "pan_down") else -1.0
    along = start_along + (progress if direction > 0 else 1.0 - progress) * distance
    tops, lefts = (np.full(num_frames, across), along) if horizontal else (along, np.full(num_frames, across))
    sides = np.full(num_frames, side)
  else:
    factor = rng.uniform(*ZOOM_FACTOR_RANGE)
    # The small window (large / factor) is at least ZOOM_WINDOW_RANGE[0] of the short side.
    large = rng.uniform(ZOOM_WINDOW_RANGE[0] * factor, ZOOM_WINDOW_RANGE[1]) * short_side
    small = large / factor
    # Geometric interpolation: the apparent zoom speed is constant from frame to frame.
    sides = large * (small / large) ** (progress if motion == "zoom_in" else 1.0 - progress)
    # Zoom about a fixed point that stays inside every window: the centre of the large window.
    centre_row = rng.uniform(large / 2, photo_height - large / 2)
    centre_col = rng.uniform(large / 2, photo_width - large / 2)
    tops, lefts = centre_row - sides / 2, centre_col - sides / 2
  return np.stack([tops, lefts, sides, sides], axis=-1).astype(np.float32)


def generate_example(config: PhotoPansConfig, split: str, index: int) -> dict[str, np.ndarray]:
  """Example `index` of `split`: a pure function of (config.seed, split, index)."""
  photos = load_photos(2 * config.resolution)
  rng = np.random.default_rng([config.seed, _SPLIT_IDS[split], index])
  photo_index = int(rng.integers(len(photos)))
  # Motions cycle with the index, so every class is equally frequent in any prefix of a split.
  label = index % len(MOTIONS)
  photo = photos[photo_index]
  boxes = camera_path(MOTIONS[label], photo.shape[:2], config.num_frames, rng)
  frames = np.stack([render_window(photo, box, config.resolution) for box in boxes])
  return {"video": np.clip(np.rint(frames * 255), 0, 255).astype(np.uint8), "label": label,
          "photo": photo_index, "crop_boxes": boxes}


class PhotoPans(local_tfds.IndexedSplitsMixin, tfds.core.GeneratorBasedBuilder):
  """Camera pans/zooms across scikit-image's photos, generated locally (see the module docstring)."""

  VERSION = tfds.core.Version("1.0.0")
  example_fn = staticmethod(generate_example)
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = [
      PhotoPansConfig(name="pans_64", resolution=64, num_train=1200, num_test=180,
                      description="17-frame pans/zooms at 64×64."),
      PhotoPansConfig(name="pans_128", resolution=128, num_train=600, num_test=120,
                      description="17-frame pans/zooms at 128×128."),
  ]

  def _info(self) -> tfds.core.DatasetInfo:
    config = self.builder_config
    t, s = config.num_frames, config.resolution
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            # JPEG per frame (quality 95), like the real video datasets: photos barely compress with
            # zlib (2×, and slowly), JPEG stores them ~10× smaller; the loss (±2 levels) is far below
            # what a tokenizer reconstructs.
            "video": tfds.features.Video(shape=(t, s, s, 3), encoding_format="jpeg"),
            "label": tfds.features.ClassLabel(names=MOTIONS),
            "photo": tfds.features.ClassLabel(names=PHOTOS),
            "crop_boxes": tfds.features.Tensor(shape=(t, 4), dtype=np.float32),
        }),
        supervised_keys=("video", "label"),
        homepage="https://scikit-image.org/docs/stable/api/skimage.data.html",
    )

