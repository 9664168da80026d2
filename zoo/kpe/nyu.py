"""NYUv2 metric depth on 96×128 crops with dense KPE, L = 8 (paper: NYUv2 experiment; authors' `metric_depth/`).

Reads tfds's ``nyu_depth_v2`` (480×640 RGB + float16 metric depth) from a `data_dir` the user has prepared
(nothing is downloaded here: ``download=False``). Each example is augmented as in the authors' ZoeDepth
setup (random scale, horizontal flip, random 96×128 crop) with the intrinsics carried through every step, so the
dense KPE of the crop is computed in the coordinates of the transformed full image:

    K_full --resize(s)--> K_s --flip?--> K_sf ;  crop box in the s-scaled (flipped) image ;  KPE(K_sf, box)

Metric depth values are unchanged by these geometric augmentations (the camera's focal length changes instead,
which is exactly what KPE tells the model).

  examples = nyu_crops("train", data_dir="~/tensorflow_datasets", seed=0)      # iterator of numpy dicts
"""
from __future__ import annotations

from typing import Iterator

import jax
import numpy as np
from PIL import Image

from zoo.kpe import encoding

# Kinect v1 colour camera of NYUv2 (the values used by the authors' metric_depth code and ZoeDepth).
NYU_INTRINSICS = encoding.Intrinsics(fx=518.8579, fy=519.4696, px=325.5824, py=253.7362, width=640, height=480)
CROP_HW = (96, 128)
NUM_FREQUENCIES = 8
SCALE_RANGE = (1.0, 1.5)

# One compiled program for every crop (fixed crop and grid shapes; intrinsics and box are traced).
_dense_kpe = jax.jit(encoding.dense_kpe, static_argnums=(2, 3))


def augment_crop(image: np.ndarray, depth: np.ndarray, rng: np.random.Generator,
                 intrinsics: encoding.Intrinsics = NYU_INTRINSICS, crop_hw: tuple[int, int] = CROP_HW,
                 scale_range: tuple[float, float] = SCALE_RANGE, flip: bool = True,
                 num_frequencies: int = NUM_FREQUENCIES, kpe_grid: tuple[int, int] | None = None) -> dict:
  """One augmented crop. image [H, W, 3] uint8, depth [H, W] (metres, 0 = missing) →
    image [h, w, 3] uint8, depth [h, w] float32, intrinsics [4] of the transformed full image,
    crop_box [4] (x0, y0, w, h) in that image, kpe [gh, gw, 4L] float32 (gh, gw = kpe_grid or the crop size),
    flipped (bool).
  """
  height, width = depth.shape
  scale = rng.uniform(*scale_range)
  new_w, new_h = int(round(width * scale)), int(round(height * scale))
  k = intrinsics.resize(new_w, new_h)
  image = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.BILINEAR))
  # Nearest keeps depth edges metric (no averaging across an occlusion boundary) and keeps holes at 0.
  depth = np.asarray(Image.fromarray(depth.astype(np.float32), mode="F").resize((new_w, new_h), Image.NEAREST))
  flipped = bool(flip and rng.uniform() < 0.5)
  if flipped:
    image, depth, k = image[:, ::-1], depth[:, ::-1], k.flip_horizontal()
  crop_h, crop_w = crop_hw
  y0 = int(rng.integers(0, new_h - crop_h + 1))
  x0 = int(rng.integers(0, new_w - crop_w + 1))
  box = encoding.CropBox(float(x0), float(y0), float(crop_w), float(crop_h))
  kpe = _dense_kpe(k, box, num_frequencies, tuple(kpe_grid or crop_hw))
  return dict(image=np.ascontiguousarray(image[y0:y0 + crop_h, x0:x0 + crop_w]),
              depth=np.ascontiguousarray(depth[y0:y0 + crop_h, x0:x0 + crop_w], dtype=np.float32),
              intrinsics=np.asarray(k.as_array(), np.float32), crop_box=np.asarray(box.as_array(), np.float32),
              kpe=np.asarray(kpe, np.float32), flipped=flipped)


def nyu_crops(split: str, data_dir: str | None = None, seed: int = 0, **augment_kwargs) -> Iterator[dict]:
  """Augmented crops of tfds ``nyu_depth_v2`` (`split`: train / validation). Needs the prepared dataset."""
  import tensorflow_datasets as tfds
  dataset = tfds.load("nyu_depth_v2", split=split, data_dir=data_dir, download=False, shuffle_files=False)
  rng = np.random.default_rng(seed)
  for example in tfds.as_numpy(dataset):
    yield augment_crop(example["image"], example["depth"].astype(np.float32), rng, **augment_kwargs)
