"""The shared ray-caster: analytic depth/normals on a known sphere, box and ground plane; labels; determinism."""
import dataclasses

import jax.numpy as jnp
import numpy as np
import pytest

from data_pipelines import scene_renderer as sr

H, W = 33, 49   # odd: the principal point is a pixel centre


def _camera(pitch_deg=0.0, camera_height=1.5):
  return sr.Camera(fx=40.0, fy=40.0, px=(W - 1) / 2, py=(H - 1) / 2, camera_height=camera_height,
                   pitch=np.deg2rad(pitch_deg))


def _scene(shapes, centres, sizes, yaws=None):
  n = len(shapes)
  return sr.Scene(shape=jnp.asarray(shapes, jnp.int32), centre=jnp.asarray(centres, jnp.float32),
                  size=jnp.asarray(sizes, jnp.float32), yaw=jnp.asarray(yaws or [0.0] * n, jnp.float32),
                  colour=jnp.full((n, 3), 0.5), class_id=jnp.arange(n, dtype=jnp.int32) + 2)


@pytest.fixture(scope="module")
def sphere_view():
  """A sphere of radius 0.5 centred on the optical axis at z = 4, above a ground plane 1.5 below the camera."""
  scene = _scene([sr.SPHERE], [[0.0, 1.5, 4.0]], [[1.0, 1.0, 1.0]])
  return scene, sr.render(scene, _camera(), H, W)


def test_sphere_depth_and_normals_are_analytic(sphere_view):
  _, out = sphere_view
  depth, normals = np.asarray(out["depth"]), np.asarray(out["normals"])
  cy, cx = H // 2, W // 2
  assert depth[cy, cx] == pytest.approx(3.5, abs=1e-5)                      # front pole: z_c − r
  np.testing.assert_allclose(normals[cy, cx], [0, 0, -1], atol=1e-5)
  # Off-centre pixels: the hit point from the ray-sphere quadratic, normal = (p − c)/r, depth = p_z.
  for (i, j) in [(cy, cx + 4), (cy - 3, cx + 2), (cy + 3, cx - 1)]:
    d = np.array([(j - cx) / 40.0, (i - cy) / 40.0, 1.0])
    c = np.array([0.0, 0.0, 4.0])
    b, a = -2 * d @ c, d @ d
    t = (-b - np.sqrt(b * b - 4 * a * (c @ c - 0.25))) / (2 * a)
    point = t * d
    assert depth[i, j] == pytest.approx(point[2], abs=1e-4)
    np.testing.assert_allclose(normals[i, j], (point - c) / 0.5, atol=1e-4)
  np.testing.assert_allclose(np.linalg.norm(normals[depth > 0], axis=-1), 1.0, atol=1e-5)


def test_ground_plane_depth_and_normal(sphere_view):
  """Level camera at height h: the ground seen at row v has depth h·fy/(v − py) and normal −y (camera up)."""
  _, out = sphere_view
  depth, normals, semantic = (np.asarray(out[k]) for k in ("depth", "normals", "semantic"))
  rows = np.arange(H // 2 + 1, H)
  np.testing.assert_allclose(depth[rows, 0], 1.5 * 40.0 / (rows - (H - 1) / 2), rtol=1e-5)
  np.testing.assert_allclose(normals[H - 1, 0], [0, -1, 0], atol=1e-6)
  assert (semantic[rows, 0] == sr.GROUND_CLASS).all()
  # Rows above the horizon see the sky: no depth, no normal, class 0.
  assert (depth[: H // 2, 0] == 0).all() and (semantic[: H // 2, 0] == sr.SKY_CLASS).all()
  assert (normals[: H // 2, 0] == 0).all()


def test_pitched_camera_ground_depth():
  """Pitch φ down: a ground point at forward distance D on the optical axis (D = h / tan φ) has depth
  z = D cos φ + h sin φ = h / sin φ."""
  pitch = 20.0
  out = sr.render(_scene([sr.EMPTY], [[0, 0, 0]], [[1, 1, 1]]), _camera(pitch), H, W)
  assert float(out["depth"][H // 2, W // 2]) == pytest.approx(1.5 / np.sin(np.deg2rad(pitch)), rel=1e-5)
  normal = np.asarray(out["normals"][H // 2, W // 2])
  np.testing.assert_allclose(normal, [0, -np.cos(np.deg2rad(pitch)), -np.sin(np.deg2rad(pitch))], atol=1e-5)


def test_box_face_depth_normal_and_yaw():
  """Box face towards the camera at z = 3 − 0.5; yawed by 90° its x and z extents swap."""
  scene = _scene([sr.BOX], [[0.0, 1.5, 3.0]], [[2.0, 1.0, 1.0]])
  out = sr.render(scene, _camera(), H, W)
  assert float(out["depth"][H // 2, W // 2]) == pytest.approx(2.5, abs=1e-5)
  np.testing.assert_allclose(np.asarray(out["normals"][H // 2, W // 2]), [0, 0, -1], atol=1e-6)
  yawed = sr.render(dataclasses.replace(scene, yaw=jnp.array([np.pi / 2])), _camera(), H, W)
  assert float(yawed["depth"][H // 2, W // 2]) == pytest.approx(2.0, abs=1e-4)
  # Width on screen: 2 m at depth 2.5 → 32 px; after the yaw 1 m at depth 2 → 20 px (± the box's side faces).
  assert np.sum(np.asarray(out["instance"][H // 2]) == 0) == pytest.approx(32, abs=1)
  assert np.sum(np.asarray(yawed["instance"][H // 2]) == 0) > 19


def test_cylinder_side_and_cap():
  scene = _scene([sr.CYLINDER], [[0.0, 1.0, 5.0]], [[1.0, 2.0, 1.0]])       # top cap at y = 2, above the camera
  out = sr.render(scene, _camera(), H, W)
  assert float(out["depth"][H // 2, W // 2]) == pytest.approx(4.5, abs=1e-5)
  np.testing.assert_allclose(np.asarray(out["normals"][H // 2, W // 2]), [0, 0, -1], atol=1e-5)
  # Camera 3 m up pitched 60° down: the optical axis meets the plane y = 1 at forward distance 2 / tan 60°,
  # where the top cap (radius 1) of a 1 m tall cylinder is centred; the hit is 2 / sin 60° along the axis.
  cap_centre_z = 2 / np.tan(np.deg2rad(60))
  looking_down = sr.render(dataclasses.replace(scene, centre=jnp.array([[0.0, 0.5, cap_centre_z]]),
                                               size=jnp.array([[2.0, 1.0, 2.0]])),
                           _camera(pitch_deg=60.0, camera_height=3.0), H, W)
  assert float(looking_down["depth"][H // 2, W // 2]) == pytest.approx(2 / np.sin(np.deg2rad(60)), rel=1e-4)
  np.testing.assert_allclose(np.asarray(looking_down["normals"][H // 2, W // 2]),
                             [0, -np.cos(np.deg2rad(60)), -np.sin(np.deg2rad(60))], atol=1e-5)


def test_labels_boxes_and_occlusion(sphere_view):
  scene, out = sphere_view
  instance = np.asarray(out["instance"])
  assert out["pixel_count"][0] == (instance == 0).sum() > 0
  np.testing.assert_array_equal(np.asarray(out["semantic"])[instance == 0], 2)
  # The amodal 2D box of the sphere's bounding cube contains every sphere pixel.
  u0, v0, u1, v1 = np.asarray(out["boxes_2d"][0])
  rows, cols = np.nonzero(instance == 0)
  assert u0 <= cols.min() and cols.max() <= u1 and v0 <= rows.min() and rows.max() <= v1
  np.testing.assert_allclose(np.asarray(out["boxes_3d"][0]).mean(0), [0, 0, 4], atol=1e-5)
  np.testing.assert_allclose(np.asarray(out["intrinsics"]), [40, 40, (W - 1) / 2, (H - 1) / 2])
  # A second sphere in front hides the first.
  both = _scene([sr.SPHERE, sr.SPHERE], [[0.0, 1.5, 4.0], [0.0, 1.5, 2.0]], [[1.0] * 3, [0.4] * 3])
  out2 = sr.render(both, _camera(), H, W)
  assert int(out2["instance"][H // 2, W // 2]) == 1
  assert float(out2["depth"][H // 2, W // 2]) == pytest.approx(1.8, abs=1e-5)


def test_orthographic_depth_is_independent_of_pixel():
  """Orthographic rays are parallel: a box face perpendicular to the axis has the same depth at every pixel."""
  scene = _scene([sr.BOX], [[0.0, 1.5, 3.0]], [[2.0, 1.0, 1.0]])
  camera = dataclasses.replace(_camera(), fx=10.0, fy=10.0)
  out = sr.render(scene, camera, H, W, orthographic=True)
  hits = np.asarray(out["instance"]) == 0
  np.testing.assert_allclose(np.asarray(out["depth"])[hits], 2.5, atol=1e-5)
  assert hits.sum() == pytest.approx(20 * 10, rel=0.15)                     # 2 m × 1 m at 10 px/m


def test_render_random_view_is_deterministic_per_seed():
  _, _, a = sr.render_random_view(7, 24, 32, supersample=3)
  _, _, b = sr.render_random_view(7, 24, 32, supersample=3)
  _, _, c = sr.render_random_view(8, 24, 32, supersample=3)
  for key in a:
    np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]))
  assert np.abs(np.asarray(a["rgb"]) - np.asarray(c["rgb"])).max() > 0.1
  rgb = np.asarray(a["rgb"])
  assert rgb.shape == (24, 32, 3) and rgb.min() >= 0 and rgb.max() <= 1
  assert set(np.unique(np.asarray(a["semantic"]))) >= {sr.SKY_CLASS, sr.GROUND_CLASS}
