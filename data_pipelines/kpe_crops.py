"""Rendered object crops for the KPE study (synthetic analogue of the paper's crop tasks; issue 7), generated locally.

Each example: a random scene of known-size primitives on a checkerboard ground (data_pipelines/scene_renderer),
seen by a wide pinhole camera (128 × 128 px, 90° horizontal FOV, 10° down-pitch). Object 0 of the scene is the
target; a square crop is cut around its projected 3D box (side ×U(1.3, 2.0), centre jitter ±15 % of the side,
shifted to lie inside the image) and resized to `crop_size` px. The crop is rendered *directly* through the
crop's intrinsics (K cropped then resized, 3 × 3 supersampled), which is an exact, anti-aliased crop + resize.

Fields (shapes per example):
  image        [S, S, 3] uint8     the resized crop
  intrinsics   [4] float32         full-image (fx, fy, px, py) – what KPE is computed from
  crop_box     [4] float32         (x0, y0, w, h) of the crop in full-image pixels
  object_depth []  float32         target: camera-frame z of the target object's centre (metres)
  centre_depth []  float32         rendered depth along the crop-centre ray (0 = sky)
  yaw_target   [2] float32         (cos 2ψ, sin 2ψ) of the target's yaw ψ about the up axis (π-symmetric box)
  yaw_valid    []  float32         1 where the yaw is defined (the "crate" class), else 0
  object_class []  int32           index into scene_renderer.DEFAULT_CLASSES
  off_axis_deg []  float32         angle between the crop-centre ray and the optical axis
  depth_map    [S, S] float32      dense metric depth of the crop

`orthographic=True` renders the same scenes with an orthographic camera of the same pixel grid (the control
where the crop's appearance does not depend on its position): 16 px per metre, objects placed within the
same 90 % of the image width; `intrinsics` then holds the orthographic (px per metre) values, and the KPE
computed from them only encodes the crop's position and size.

  generate_crops(seed, num_examples, ...)  numpy dict of stacked fields (tests and quick studies)
  KpeCrops                                 the tfds builder (configs: perspective / orthographic, 32 or 48 px)
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import tensorflow_datasets as tfds

from data_pipelines import scene_renderer as sr
from zoo.kpe.encoding import CropBox, Intrinsics

IMAGE_SIZE = 128
HORIZONTAL_FOV_DEG = 90.0
PITCH_DEG = 10.0
NUM_OBJECTS = 3
CROP_SCALE_RANGE = (1.3, 2.0)
CROP_JITTER = 0.15
YAW_CLASS = 1            # "crate": the only default class whose yaw is visible and not 90°-symmetric
ORTHOGRAPHIC_PIXELS_PER_METRE = 16.0


def full_camera(orthographic: bool) -> sr.Camera:
  camera = sr.pinhole_camera(IMAGE_SIZE, IMAGE_SIZE, HORIZONTAL_FOV_DEG, pitch_deg=PITCH_DEG)
  if orthographic:
    # Same view direction and pixel grid; 16 px/m shows 8 m across, the width of the pinhole view at ~4 m.
    camera = dataclasses.replace(camera, fx=ORTHOGRAPHIC_PIXELS_PER_METRE, fy=ORTHOGRAPHIC_PIXELS_PER_METRE)
  return camera


def sample_crop(key: jax.Array, orthographic: bool = False) -> tuple[sr.Scene, sr.Camera, CropBox]:
  """The scene, full-image camera and crop box of one example (object 0 of the scene is the target)."""
  camera = full_camera(orthographic)
  k_scene, k_scale, k_jitter = jax.random.split(key, 3)
  scene = sr.sample_scene(k_scene, camera, NUM_OBJECTS, image_width=IMAGE_SIZE, orthographic=orthographic)
  rotation, translation = camera.camera_to_world()
  corners_2d = sr.project_points((sr.box_corners(scene)[0] - translation) @ rotation, camera, orthographic)
  lo, hi = corners_2d.min(0), corners_2d.max(0)
  side = jnp.max(hi - lo) * jax.random.uniform(k_scale, (), minval=CROP_SCALE_RANGE[0], maxval=CROP_SCALE_RANGE[1])
  side = jnp.clip(side, 4.0, IMAGE_SIZE)
  centre = (lo + hi) / 2 + side * jax.random.uniform(k_jitter, (2,), minval=-CROP_JITTER, maxval=CROP_JITTER)
  # Edges at centre ± side/2 (continuous coordinates), shifted inside the image; x0 is the first covered
  # pixel centre, i.e. the left edge + 0.5.
  top_left = jnp.clip(centre - side / 2, -0.5, IMAGE_SIZE - 0.5 - side) + 0.5
  return scene, camera, CropBox(top_left[0], top_left[1], side, side)


def crop_camera(camera: sr.Camera, box: CropBox, crop_size: int) -> sr.Camera:
  """The camera whose crop_size² image is the crop `box` of `camera`'s image, resized (KPE bookkeeping)."""
  full = Intrinsics(camera.fx, camera.fy, camera.px, camera.py, IMAGE_SIZE, IMAGE_SIZE)
  k = full.crop(box).resize(crop_size, crop_size)
  return dataclasses.replace(camera, fx=k.fx, fy=k.fy, px=k.px, py=k.py)


@functools.partial(jax.jit, static_argnames=("crop_size", "orthographic", "textured_ground"))
def _generate_batch(keys: jax.Array, crop_size: int, orthographic: bool, textured_ground: bool
                    ) -> dict[str, jax.Array]:
  pinhole = full_camera(False)

  def one(key):
    scene, camera, box = sample_crop(key, orthographic)
    # Rendering through the crop's own intrinsics is an exact crop + resize; 3×3 supersampling stands in for
    # the area filter of a real resize.
    view = sr.render(scene, crop_camera(camera, box, crop_size), crop_size, crop_size, orthographic=orthographic,
                     supersample=3, textured_ground=textured_ground)
    centre_u, centre_v = box.centre()
    centre_ray = sr.render(scene, dataclasses.replace(camera, px=camera.px - centre_u, py=camera.py - centre_v),
                           1, 1, orthographic=orthographic)
    # Off-axis angle of the crop centre's ray under the pinhole camera (for the orthographic control: the angle
    # the same crop position would have had, so the bins of both cameras are comparable).
    tan_x = (centre_u - pinhole.px) / pinhole.fx
    tan_y = (centre_v - pinhole.py) / pinhole.fy
    rotation, translation = camera.camera_to_world()
    yaw = scene.yaw[0]
    return dict(
        image=jnp.round(view["rgb"] * 255).astype(jnp.uint8),
        intrinsics=camera.intrinsics(),
        crop_box=box.as_array().astype(jnp.float32),
        object_depth=((scene.centre[0] - translation) @ rotation)[2],
        centre_depth=centre_ray["depth"][0, 0],
        yaw_target=jnp.stack([jnp.cos(2 * yaw), jnp.sin(2 * yaw)]),
        yaw_valid=(scene.class_id[0] - 2 == YAW_CLASS).astype(jnp.float32),
        object_class=scene.class_id[0] - 2,
        off_axis_deg=jnp.rad2deg(jnp.arctan(jnp.sqrt(tan_x ** 2 + tan_y ** 2))),
        depth_map=view["depth"],
    )

  return jax.vmap(one)(keys)


def example_key(seed: int, index) -> jax.Array:
  """Example `index` of split seed `seed` depends on this key only."""
  return jax.random.fold_in(jax.random.key(seed), index)


def generate_crops(seed: int, num_examples: int, crop_size: int = 32, orthographic: bool = False,
                   chunk_size: int = 256, textured_ground: bool = True) -> dict[str, np.ndarray]:
  """Stacked numpy fields (see module doc) of `num_examples` crops; example i depends only on (seed, i).
  `textured_ground=False` renders a uniform ground: no vanishing lines in the crop that betray its position."""
  chunks = []
  for start in range(0, num_examples, chunk_size):
    indices = jnp.arange(start, min(start + chunk_size, num_examples))
    keys = jax.vmap(lambda i: example_key(seed, i))(indices)
    chunks.append(jax.device_get(_generate_batch(keys, crop_size, orthographic, textured_ground)))
  return {name: np.concatenate([c[name] for c in chunks]) for name in chunks[0]}


@dataclasses.dataclass
class KpeCropsConfig(tfds.core.BuilderConfig):
  crop_size: int = 32
  orthographic: bool = False
  textured_ground: bool = True
  num_train: int = 20000
  num_test: int = 2000


class KpeCrops(tfds.core.GeneratorBasedBuilder):
  """Rendered object crops with intrinsics and crop boxes, generated locally by the JAX ray-caster."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  BUILDER_CONFIGS = [
      KpeCropsConfig(name="perspective_32", crop_size=32),
      KpeCropsConfig(name="orthographic_32", crop_size=32, orthographic=True),
      KpeCropsConfig(name="perspective_48", crop_size=48),
      KpeCropsConfig(name="orthographic_48", crop_size=48, orthographic=True),
      KpeCropsConfig(name="perspective_plain_32", crop_size=32, textured_ground=False),
      KpeCropsConfig(name="orthographic_plain_32", crop_size=32, orthographic=True, textured_ground=False),
  ]
  # Split seeds: train and test scenes never share a key stream.
  SPLIT_SEEDS = {"train": 0, "test": 1}

  def _info(self) -> tfds.core.DatasetInfo:
    s = self.builder_config.crop_size
    scalar = lambda dtype=np.float32: tfds.features.Tensor(shape=(), dtype=dtype)
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Tensor(shape=(s, s, 3), dtype=np.uint8),
            "intrinsics": tfds.features.Tensor(shape=(4,), dtype=np.float32),
            "crop_box": tfds.features.Tensor(shape=(4,), dtype=np.float32),
            "object_depth": scalar(),
            "centre_depth": scalar(),
            "yaw_target": tfds.features.Tensor(shape=(2,), dtype=np.float32),
            "yaw_valid": scalar(),
            "object_class": scalar(np.int32),
            "off_axis_deg": scalar(),
            "depth_map": tfds.features.Tensor(shape=(s, s), dtype=np.float32),
        }),
        homepage="https://arxiv.org/abs/2312.06594",
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download: the renderer generates everything.
    sizes = {"train": self.builder_config.num_train, "test": self.builder_config.num_test}
    return {split: self._generate_examples(split, n) for split, n in sizes.items()}

  def _generate_examples(self, split: str, num_examples: int):
    config = self.builder_config
    data = generate_crops(self.SPLIT_SEEDS[split], num_examples, config.crop_size, config.orthographic,
                          textured_ground=config.textured_ground)
    for i in range(num_examples):
      yield i, {name: values[i] for name, values in data.items()}
