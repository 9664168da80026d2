"""A jitted JAX ray-caster of primitives of known size on a ground plane, with exact multimodal labels.

Shared by the KPE rendered-crop study (zoo/kpe), 4M's synthetic "shapes world" and the text-to-3D paper: each
view gives RGB, metric depth, surface normals, semantic and instance segmentation, 2D/3D boxes and the camera
intrinsics, all exact (analytic ray–primitive intersections), deterministic per seed.

Frames and conventions
  * World: x right, y up, z forward; the ground is the plane y = 0; objects rest on it.
  * Camera (OpenCV): x right, y down, z forward; it sits at (0, camera_height, 0) pitched down by `pitch`.
  * Pixels: pixel (i, j) has its centre at (u, v) = (j, i) (same as `zoo.kpe.encoding`).
  * Pinhole: the ray of pixel (u, v) has camera-frame direction ((u − px)/fx, (v − py)/fy, 1).
    Orthographic: it starts at ((u − px)/fx, (v − py)/fy, 0) with direction (0, 0, 1); fx, fy are px per metre.
  * depth: camera-frame z of the hit (metres), 0 where the ray hits nothing (sky).
  * normals: unit surface normal in the camera frame, zeros on sky.
  * semantic: 0 = sky, 1 = ground, objects their `class_id` (≥ 2); instance: object slot index or −1.

API
  Camera, Scene, ObjectClass, DEFAULT_CLASSES
  sample_scene(key, camera, num_objects, classes=DEFAULT_CLASSES) -> Scene
  render(scene, camera, height, width, orthographic=False, supersample=1) -> dict of arrays (jitted)
  render_random_view(seed, height, width, ...) -> (Scene, Camera, dict): one deterministic view per seed
  box_corners(scene) -> [N, 8, 3] world-frame corners; project_points(points_cam, camera, orthographic)

Arrays are single-view; `jax.vmap` over Scene/Camera batches the renderer.
"""
from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np

EMPTY, SPHERE, BOX, CYLINDER = 0, 1, 2, 3
SKY_CLASS, GROUND_CLASS = 0, 1
_NO_HIT = jnp.inf
_LIGHT_DIRECTION = np.array([-0.35, 0.85, -0.4]) / np.linalg.norm([-0.35, 0.85, -0.4])   # world, towards light
_SKY_COLOUR = np.array([0.62, 0.76, 0.92])
_GROUND_COLOURS = np.array([[0.55, 0.55, 0.52], [0.38, 0.38, 0.36]])                     # checker squares
GROUND_TILE = 0.5                                                                        # metres per checker


@dataclasses.dataclass(frozen=True)
class ObjectClass:
  """A primitive of known size: shape (SPHERE/BOX/CYLINDER), full extents (x, y-up, z) in metres, RGB colour."""
  name: str
  shape: int
  size: tuple[float, float, float]
  colour: tuple[float, float, float]


# Known sizes resolve metric scale from appearance (a "familiar size" cue). The box's base is not square so its
# yaw is visible (up to the 180° symmetry).
DEFAULT_CLASSES = (
    ObjectClass("ball", SPHERE, (0.5, 0.5, 0.5), (0.85, 0.2, 0.15)),
    ObjectClass("crate", BOX, (0.8, 0.4, 0.4), (0.2, 0.7, 0.25)),
    ObjectClass("drum", CYLINDER, (0.4, 0.7, 0.4), (0.2, 0.35, 0.85)),
    ObjectClass("pillar", BOX, (0.3, 1.0, 0.3), (0.9, 0.8, 0.2)),
)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Camera:
  """Intrinsics (pixels; px/metre when orthographic) and pose above the ground (metres, radians down)."""
  fx: jax.Array | float
  fy: jax.Array | float
  px: jax.Array | float
  py: jax.Array | float
  camera_height: jax.Array | float = 1.5
  pitch: jax.Array | float = 0.0

  def intrinsics(self) -> jax.Array:
    """[4] = (fx, fy, px, py)."""
    return jnp.stack([jnp.asarray(v, jnp.float32) for v in (self.fx, self.fy, self.px, self.py)])

  def camera_to_world(self) -> tuple[jax.Array, jax.Array]:
    """(R [3, 3], t [3]) with p_world = R @ p_camera + t; columns of R are the camera axes in the world."""
    c, s = jnp.cos(self.pitch), jnp.sin(self.pitch)
    zero, one = jnp.zeros_like(c), jnp.ones_like(c)
    rotation = jnp.stack([jnp.stack([one, zero, zero]), jnp.stack([zero, -c, -s]), jnp.stack([zero, -s, c])],
                         axis=1)
    return rotation, jnp.stack([zero, jnp.asarray(self.camera_height, c.dtype), zero])


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Scene:
  """N object slots. shape [N] (EMPTY = unused), centre [N, 3] world, size [N, 3] full extents, yaw [N] about
  world up, colour [N, 3], class_id [N] (semantic label, ≥ 2)."""
  shape: jax.Array
  centre: jax.Array
  size: jax.Array
  yaw: jax.Array
  colour: jax.Array
  class_id: jax.Array


def _yaw_rotation(yaw: jax.Array) -> jax.Array:
  """[..., 3, 3] object-to-world rotation about the world y (up) axis."""
  c, s = jnp.cos(yaw), jnp.sin(yaw)
  zero, one = jnp.zeros_like(c), jnp.ones_like(c)
  return jnp.stack([jnp.stack([c, zero, s], -1), jnp.stack([zero, one, zero], -1), jnp.stack([-s, zero, c], -1)], -2)


def _safe_reciprocal(x: jax.Array) -> jax.Array:
  return 1.0 / jnp.where(jnp.abs(x) < 1e-12, jnp.where(x < 0, -1e-12, 1e-12), x)


def _intersect_sphere(origin, direction, radius):
  """Local-frame ray [R, 3] (direction not unit) vs sphere at the origin → t [R], normal [R, 3]."""
  a = jnp.sum(direction ** 2, -1)
  b = 2 * jnp.sum(direction * origin, -1)
  c = jnp.sum(origin ** 2, -1) - radius ** 2
  disc = b ** 2 - 4 * a * c
  t = (-b - jnp.sqrt(jnp.maximum(disc, 0.0))) / (2 * a)
  t = jnp.where((disc >= 0) & (t > 0), t, _NO_HIT)
  hit = origin + jnp.where(jnp.isfinite(t), t, 0.0)[:, None] * direction
  return t, hit / radius


def _intersect_box(origin, direction, half_size):
  """Slab test against the axis-aligned box [−half_size, half_size] (camera outside the box)."""
  inverse = _safe_reciprocal(direction)
  t1, t2 = (-half_size - origin) * inverse, (half_size - origin) * inverse
  t_near, t_far = jnp.minimum(t1, t2), jnp.maximum(t1, t2)
  t_enter, t_exit = t_near.max(-1), t_far.min(-1)
  t = jnp.where((t_exit >= t_enter) & (t_enter > 0), t_enter, _NO_HIT)
  entry_axis = jax.nn.one_hot(jnp.argmax(t_near, -1), 3)
  return t, -jnp.sign(direction) * entry_axis


def _intersect_cylinder(origin, direction, radius, half_height):
  """Vertical (y-axis) capped cylinder of `radius`, y ∈ [−half_height, half_height]."""
  a = direction[:, 0] ** 2 + direction[:, 2] ** 2
  b = 2 * (origin[:, 0] * direction[:, 0] + origin[:, 2] * direction[:, 2])
  c = origin[:, 0] ** 2 + origin[:, 2] ** 2 - radius ** 2
  disc = b ** 2 - 4 * a * c
  t_side = (-b - jnp.sqrt(jnp.maximum(disc, 0.0))) / (2 * jnp.maximum(a, 1e-12))
  y_side = origin[:, 1] + t_side * direction[:, 1]
  t_side = jnp.where((disc >= 0) & (a > 1e-12) & (t_side > 0) & (jnp.abs(y_side) <= half_height), t_side, _NO_HIT)
  inverse_dy = _safe_reciprocal(direction[:, 1])
  # The cap facing the ray origin: top if the origin is above the cylinder, bottom if below.
  cap_y = jnp.where(origin[:, 1] > 0, half_height, -half_height)
  t_cap = (cap_y - origin[:, 1]) * inverse_dy
  cap_hit = origin + t_cap[:, None] * direction
  t_cap = jnp.where((t_cap > 0) & (cap_hit[:, 0] ** 2 + cap_hit[:, 2] ** 2 <= radius ** 2), t_cap, _NO_HIT)
  t = jnp.minimum(t_side, t_cap)
  side_hit = origin + jnp.where(jnp.isfinite(t_side), t_side, 0.0)[:, None] * direction
  side_normal = side_hit * jnp.array([1.0, 0.0, 1.0]) / radius
  cap_normal = jnp.zeros_like(origin).at[:, 1].set(jnp.sign(cap_y))
  return t, jnp.where((t_cap < t_side)[:, None], cap_normal, side_normal)


def _intersect_object(origin_world, direction_world, shape, centre, size, yaw):
  """One object vs all rays: t [R] (inf = miss) and world-frame normal [R, 3]."""
  rotation = _yaw_rotation(yaw)                                          # object → world
  origin = (origin_world - centre) @ rotation                            # world → object: R^T (p − c)
  direction = direction_world @ rotation
  t_sphere, n_sphere = _intersect_sphere(origin, direction, size[0] / 2)
  t_box, n_box = _intersect_box(origin, direction, size / 2)
  t_cyl, n_cyl = _intersect_cylinder(origin, direction, size[0] / 2, size[1] / 2)
  t = jnp.select([shape == SPHERE, shape == BOX, shape == CYLINDER], [t_sphere, t_box, t_cyl], _NO_HIT)
  normal = jnp.select([shape == SPHERE, shape == BOX, shape == CYLINDER], [n_sphere, n_box, n_cyl], n_box)
  return t, normal @ rotation.T


def _camera_rays(camera: Camera, height: int, width: int, orthographic: bool, supersample: int):
  """Camera-frame ray origins and directions [H·s, W·s, 3] sampled at sub-pixel offsets."""
  offsets = (jnp.arange(supersample) - (supersample - 1) / 2) / supersample
  u = (jnp.arange(width)[:, None] + offsets[None, :]).reshape(-1)
  v = (jnp.arange(height)[:, None] + offsets[None, :]).reshape(-1)
  x = (u[None, :] - camera.px) / camera.fx
  y = (v[:, None] - camera.py) / camera.fy
  x, y = jnp.broadcast_arrays(x, y)
  if orthographic:
    origin = jnp.stack([x, y, jnp.zeros_like(x)], -1)
    direction = jnp.broadcast_to(jnp.array([0.0, 0.0, 1.0]), origin.shape)
  else:
    direction = jnp.stack([x, y, jnp.ones_like(x)], -1)
    origin = jnp.zeros_like(direction)
  return origin, direction


@functools.partial(jax.jit, static_argnames=("height", "width", "orthographic", "supersample", "textured_ground"))
def render(scene: Scene, camera: Camera, height: int, width: int, orthographic: bool = False,
           supersample: int = 1, textured_ground: bool = True) -> dict[str, jax.Array]:
  """Ray-casts one view. Returns
    rgb [H, W, 3] float32 in [0, 1] (Lambertian + ambient, checkerboard ground – or a uniform one with
      `textured_ground=False`, which removes the texture's perspective cues – no shadows),
    depth [H, W] camera-frame z in metres (0 = sky), normals [H, W, 3] camera frame,
    semantic [H, W] int32, instance [H, W] int32 (−1 = background), pixel_count [N] visible pixels per object,
    boxes_3d [N, 8, 3] camera-frame box corners, boxes_2d [N, 4] (u_min, v_min, u_max, v_max) of the projected
    box corners (amodal, unclipped; only meaningful for objects in front of the camera), intrinsics [4].
  `supersample` (odd) averages s × s rays per pixel for the RGB only; all label maps come from the ray through
  the pixel centre (the middle sub-sample), so they stay exact.
  """
  if supersample % 2 != 1:
    raise ValueError("supersample must be odd so that the middle sub-sample is the pixel centre")
  rotation, translation = camera.camera_to_world()
  origin_cam, direction_cam = _camera_rays(camera, height, width, orthographic, supersample)
  origin = origin_cam.reshape(-1, 3) @ rotation.T + translation                         # [R, 3] world
  direction = direction_cam.reshape(-1, 3) @ rotation.T

  # Ground plane y = 0, hit from above only.
  t_ground = jnp.where(direction[:, 1] < 0, -origin[:, 1] * _safe_reciprocal(direction[:, 1]), _NO_HIT)
  t_objects, n_objects = jax.vmap(_intersect_object, in_axes=(None, None, 0, 0, 0, 0))(
      origin, direction, scene.shape, scene.centre, scene.size, scene.yaw)                # [N, R], [N, R, 3]
  nearest = jnp.argmin(t_objects, axis=0) if t_objects.shape[0] else jnp.zeros(origin.shape[0], jnp.int32)
  t_object = jnp.take_along_axis(t_objects, nearest[None], 0)[0]
  object_normal = jnp.take_along_axis(n_objects, nearest[None, :, None], 0)[0]
  hits_object = t_object < t_ground
  t = jnp.minimum(t_object, t_ground)
  hits_anything = jnp.isfinite(t)
  normal_world = jnp.where(hits_object[:, None], object_normal, jnp.array([0.0, 1.0, 0.0]))

  point = origin + jnp.where(hits_anything, t, 0.0)[:, None] * direction
  checker = (jnp.floor(point[:, 0] / GROUND_TILE) + jnp.floor(point[:, 2] / GROUND_TILE)).astype(jnp.int32) % 2
  checker = checker if textured_ground else jnp.zeros_like(checker)
  albedo = jnp.where(hits_object[:, None], scene.colour[nearest], jnp.asarray(_GROUND_COLOURS)[checker])
  shading = 0.35 + 0.65 * jnp.maximum(normal_world @ jnp.asarray(_LIGHT_DIRECTION, jnp.float32), 0.0)
  rgb = jnp.where(hits_anything[:, None], albedo * shading[:, None], jnp.asarray(_SKY_COLOUR))
  s = supersample
  rgb = rgb.reshape(height, s, width, s, 3).mean(axis=(1, 3))

  def centre_samples(x):                              # [R, ...] → [H, W, ...] at the pixel-centre sub-sample
    return x.reshape(height, s, width, s, *x.shape[1:])[:, s // 2, :, s // 2]

  # Depth is camera z: the camera-frame direction has z = 1 (pinhole) or the ray starts at z = 0 (orthographic).
  depth = centre_samples(jnp.where(hits_anything, t, 0.0))
  normals = centre_samples(jnp.where(hits_anything[:, None], normal_world @ rotation, 0.0))
  instance = centre_samples(jnp.where(hits_object, nearest, -1)).astype(jnp.int32)
  semantic = jnp.where(instance >= 0, scene.class_id[jnp.maximum(instance, 0)],
                       jnp.where(centre_samples(hits_anything), GROUND_CLASS, SKY_CLASS)).astype(jnp.int32)
  pixel_count = jnp.sum(instance.reshape(-1)[:, None] == jnp.arange(scene.shape.shape[0]), axis=0)

  corners_cam = (box_corners(scene) - translation) @ rotation                           # [N, 8, 3]
  corners_2d = project_points(corners_cam, camera, orthographic)
  boxes_2d = jnp.concatenate([corners_2d.min(axis=1), corners_2d.max(axis=1)], axis=-1)
  return dict(rgb=rgb.astype(jnp.float32), depth=depth, normals=normals, semantic=semantic, instance=instance,
              pixel_count=pixel_count, boxes_3d=corners_cam, boxes_2d=boxes_2d, intrinsics=camera.intrinsics())


def box_corners(scene: Scene) -> jax.Array:
  """[N, 8, 3] world-frame corners of each object's (yawed) 3D bounding box."""
  signs = jnp.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], jnp.float32)   # [8, 3]
  local = signs[None] * scene.size[:, None, :] / 2
  return jnp.einsum("nij,nkj->nki", _yaw_rotation(scene.yaw), local) + scene.centre[:, None, :]


def project_points(points_cam: jax.Array, camera: Camera, orthographic: bool = False) -> jax.Array:
  """[..., 3] camera-frame points → [..., 2] pixel coordinates (u, v)."""
  scale = 1.0 if orthographic else points_cam[..., 2]
  return jnp.stack([camera.fx * points_cam[..., 0] / scale + camera.px,
                    camera.fy * points_cam[..., 1] / scale + camera.py], axis=-1)


def sample_scene(key: jax.Array, camera: Camera, num_objects: int, classes=DEFAULT_CLASSES,
                 depth_range: tuple[float, float] = (2.0, 8.0), fov_fraction: float = 0.9,
                 image_width: float | None = None, orthographic: bool = False) -> Scene:
  """Random objects of known classes resting on the ground, inside the horizontal field of view.

  Each object: class uniform over `classes`, forward distance z ~ U(depth_range), lateral x within
  `fov_fraction` of the horizontal half-field of view at that distance (from fx and the image width, default
  2·px + 1; for an orthographic camera the half-width in metres, the same at every distance),
  yaw ~ U(−π, π). Objects may interpenetrate; the ray-caster handles that.
  """
  k_class, k_z, k_x, k_yaw = jax.random.split(key, 4)
  class_index = jax.random.randint(k_class, (num_objects,), 0, len(classes))
  table = lambda field, dtype: jnp.asarray([getattr(c, field) for c in classes], dtype)[class_index]
  size = table("size", jnp.float32)
  z = jax.random.uniform(k_z, (num_objects,), minval=depth_range[0], maxval=depth_range[1])
  width = 2 * camera.px + 1 if image_width is None else image_width
  half_tan = fov_fraction * (width / 2) / camera.fx
  x = jax.random.uniform(k_x, (num_objects,), minval=-1.0, maxval=1.0) * half_tan * (1.0 if orthographic else z)
  centre = jnp.stack([x, size[:, 1] / 2, z], axis=-1)
  return Scene(shape=table("shape", jnp.int32), centre=centre, size=size,
               yaw=jax.random.uniform(k_yaw, (num_objects,), minval=-jnp.pi, maxval=jnp.pi),
               colour=table("colour", jnp.float32), class_id=class_index.astype(jnp.int32) + 2)


def pinhole_camera(height: int, width: int, horizontal_fov_deg: float = 90.0, camera_height: float = 1.5,
                   pitch_deg: float = 10.0) -> Camera:
  """Square-pixel pinhole with the principal point at the image centre."""
  focal = (width / 2) / np.tan(np.deg2rad(horizontal_fov_deg) / 2)
  return Camera(fx=focal, fy=focal, px=(width - 1) / 2, py=(height - 1) / 2, camera_height=camera_height,
                pitch=np.deg2rad(pitch_deg))


def render_random_view(seed: int, height: int = 64, width: int = 64, num_objects: int = 4,
                       horizontal_fov_deg: float = 90.0, supersample: int = 1):
  """One deterministic view per seed: (Scene, Camera, render outputs)."""
  camera = pinhole_camera(height, width, horizontal_fov_deg)
  scene = sample_scene(jax.random.key(seed), camera, num_objects, image_width=width)
  return scene, camera, render(scene, camera, height, width, supersample=supersample)
