"""KPE encodings (paper §3) and the intrinsics bookkeeping under crop, resize and flip."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from zoo.kpe import encoding, models

# One jitted program per (variant, L, grid) instead of dozens of eagerly compiled primitives: keeps the suite fast.
crop_kpe = jax.jit(encoding.crop_kpe, static_argnums=(0, 3, 4))
NYU = encoding.Intrinsics(fx=518.86, fy=519.47, px=325.58, py=253.73, width=640, height=480)


def _boxes():
  """A batch of 3 crops [3] with odd and even sizes, one touching the image border."""
  return encoding.CropBox(x0=jnp.array([10.0, 300.0, 0.0]), y0=jnp.array([20.0, 100.0, 383.0]),
                          width=jnp.array([33.0, 128.0, 96.0]), height=jnp.array([41.0, 96.0, 97.0]))


def _batched(intrinsics, n):
  return encoding.Intrinsics.from_array(jnp.tile(intrinsics.as_array(), (n, 1)), intrinsics.width,
                                        intrinsics.height)


def test_angles_equal_atan_formula():
  u = np.array([0.0, 100.0, 325.58, 639.0])
  v = np.array([479.0, 10.0, 253.73, 0.0])
  angles = np.asarray(encoding.pixel_angles(jnp.asarray(u), jnp.asarray(v), NYU))
  np.testing.assert_allclose(angles[:, 0], np.arctan((u - 325.58) / 518.86), rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(angles[:, 1], np.arctan((v - 253.73) / 519.47), rtol=1e-6, atol=1e-7)
  assert abs(angles[2]).max() < 1e-6            # the principal point is on the optical axis


def test_sinusoids_follow_the_frequency_layout():
  angles = jnp.array([[0.3, -0.7]])
  features = np.asarray(encoding.sinusoidal_encoding(angles, 3))
  expected = np.concatenate([np.concatenate([np.sin(2.0 ** l * np.array([0.3, -0.7])),
                                             np.cos(2.0 ** l * np.array([0.3, -0.7]))]) for l in range(3)])
  np.testing.assert_allclose(features[0], expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("variant,per_frequency", [("centre", 4), ("corner", 16), ("sparse", 20), ("dense", 4)])
@pytest.mark.parametrize("num_frequencies", [1, 4, 8])
def test_output_sizes(variant, per_frequency, num_frequencies):
  features = crop_kpe(variant, _batched(NYU, 3), _boxes(), num_frequencies, (5, 7))
  expected_shape = (3, 5, 7, per_frequency * num_frequencies) if variant == "dense" else \
      (3, per_frequency * num_frequencies)
  assert features.shape == expected_shape
  assert encoding.kpe_size(variant, num_frequencies) == per_frequency * num_frequencies


def test_moving_principal_point_moves_encoding_exactly():
  """Shifting (px, py) by (dx, dy) is the same as shifting the crop by (−dx, −dy): the encoding only sees
  positions relative to the principal point."""
  box = _boxes()
  dx, dy = 17.0, -9.0
  shifted_k = encoding.Intrinsics(NYU.fx, NYU.fy, NYU.px + dx, NYU.py + dy, NYU.width, NYU.height)
  shifted_box = encoding.CropBox(box.x0 - dx, box.y0 - dy, box.width, box.height)
  for variant in ("centre", "corner", "sparse", "dense"):
    a = crop_kpe(variant, _batched(shifted_k, 3), box, 6, (4, 6))
    b = crop_kpe(variant, _batched(NYU, 3), shifted_box, 6, (4, 6))
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=2e-6)
  # And the encoding does change: a crop is not position-invariant.
  a = crop_kpe("centre", _batched(shifted_k, 3), box, 6, None)
  assert np.abs(np.asarray(a) - np.asarray(crop_kpe("centre", _batched(NYU, 3), box, 6, None))).max() > 1e-2


def test_dense_map_centre_equals_centre_variant():
  box = encoding.CropBox(jnp.array([10.0, 301.0]), jnp.array([20.0, 97.0]), jnp.array([33.0, 65.0]),
                         jnp.array([41.0, 17.0]))
  intrinsics = _batched(NYU, 2)
  centre = np.asarray(crop_kpe("centre", intrinsics, box, 8, None))
  for grid in ((5, 7), (41, 33), (1, 1)):
    dense = np.asarray(crop_kpe("dense", intrinsics, box, 8, grid))
    np.testing.assert_allclose(dense[:, grid[0] // 2, grid[1] // 2], centre, atol=2e-6)


def test_dense_map_at_crop_resolution_is_the_per_pixel_map():
  box = encoding.CropBox(50.0, 60.0, 9.0, 7.0)
  dense = np.asarray(crop_kpe("dense", NYU, box, 2, (7, 9)))
  u, v = np.meshgrid(50.0 + np.arange(9), 60.0 + np.arange(7))
  expected = np.asarray(jax.jit(lambda u, v: encoding.sinusoidal_encoding(encoding.pixel_angles(u, v, NYU), 2))(u, v))
  np.testing.assert_allclose(dense, expected, atol=2e-6)


def test_corners_are_crop_edges():
  box = encoding.CropBox(10.0, 20.0, 30.0, 40.0)
  # L = 1 layout per corner: [sin θx, sin θy, cos θx, cos θy].
  corners = np.asarray(encoding.corner_kpe(NYU, box, 1)).reshape(4, 4)
  theta_x = np.arctan2(corners[:, 0], corners[:, 2])
  theta_y = np.arctan2(corners[:, 1], corners[:, 3])
  np.testing.assert_allclose(theta_x, np.arctan((np.array([9.5, 39.5, 9.5, 39.5]) - NYU.px) / NYU.fx), atol=1e-6)
  np.testing.assert_allclose(theta_y, np.arctan((np.array([19.5, 19.5, 59.5, 59.5]) - NYU.py) / NYU.fy), atol=1e-6)


def test_crop_and_resize_keep_every_pixel_ray():
  """After crop + resize, the crop-local intrinsics give each resized pixel the ray it had in the full image:
  the dense KPE from (full K, crop box) equals the one from (crop K, the whole resized crop)."""
  box = encoding.CropBox(200.0, 150.0, 192.0, 144.0)
  crop_k = NYU.crop(box).resize(128, 96)
  assert (crop_k.width, crop_k.height) == (128, 96)
  np.testing.assert_allclose(crop_k.fx, NYU.fx * 128 / 192)
  whole_crop = encoding.CropBox(0.0, 0.0, 128.0, 96.0)
  from_full = crop_kpe("dense", NYU, box, 4, (96, 128))
  from_crop = crop_kpe("dense", crop_k, whole_crop, 4, (96, 128))
  np.testing.assert_allclose(np.asarray(from_full), np.asarray(from_crop), atol=1e-5)
  # Sparse variants agree too.
  np.testing.assert_allclose(np.asarray(crop_kpe("sparse", NYU, box, 4, None)),
                             np.asarray(crop_kpe("sparse", crop_k, whole_crop, 4, None)), atol=1e-5)


def test_resize_matches_jax_image_resize_geometry():
  """A bright dot at full-image pixel (u, v) lands where the resized intrinsics say (linear resize of a smooth
  blob, centroid within 0.05 px)."""
  h, w, new_h, new_w = 48, 64, 24, 40
  u0, v0 = 37.3, 20.6
  yy, xx = np.mgrid[0:h, 0:w]
  blob = np.exp(-((xx - u0) ** 2 + (yy - v0) ** 2) / (2 * 3.0 ** 2))
  resized = np.asarray(jax.image.resize(jnp.asarray(blob), (new_h, new_w), "linear"))
  yy, xx = np.mgrid[0:new_h, 0:new_w]
  centroid = np.array([(resized * xx).sum(), (resized * yy).sum()]) / resized.sum()
  k = encoding.Intrinsics(50.0, 50.0, u0, v0, w, h).resize(new_w, new_h)
  np.testing.assert_allclose(centroid, [k.px, k.py], atol=0.05)


def test_horizontal_flip_mirrors_the_encoding():
  """Flipping image and intrinsics: pixel u goes to W−1−u and its θx changes sign, θy is unchanged."""
  flipped = NYU.flip_horizontal()
  np.testing.assert_allclose(flipped.px, 639 - 325.58)
  box = encoding.CropBox(100.0, 50.0, 64.0, 48.0)
  mirrored_box = encoding.CropBox(640 - 100.0 - 64.0, 50.0, 64.0, 48.0)
  dense = np.asarray(crop_kpe("dense", NYU, box, 1, (48, 64)))
  dense_flipped = np.asarray(crop_kpe("dense", flipped, mirrored_box, 1, (48, 64)))
  # L = 1 layout: [sin θx, sin θy, cos θx, cos θy]; mirror the columns, negate sin θx.
  np.testing.assert_allclose(dense_flipped[:, ::-1] * np.array([-1, 1, 1, 1]), dense, atol=1e-6)
  np.testing.assert_allclose(flipped.flip_horizontal().px, NYU.px)


def test_kpe_is_jittable_and_vmappable():
  fn = jax.jit(lambda k, b: encoding.sparse_kpe(encoding.Intrinsics.from_array(k, 640, 480),
                                                encoding.CropBox.from_array(b), 4))
  boxes = _boxes().as_array()
  out = fn(jnp.tile(NYU.as_array(), (3, 1)), boxes)
  np.testing.assert_allclose(np.asarray(out), np.asarray(crop_kpe("sparse", _batched(NYU, 3), _boxes(), 4, None)),
                             atol=1e-6)


@pytest.mark.parametrize("injection,variant", [("none", "sparse"), ("early", "dense"), ("early", "sparse"),
                                               ("latent", "dense"), ("latent", "sparse")])
def test_regressor_uses_kpe_exactly_when_injected(injection, variant):
  model = models.KPERegressor(injection=injection, variant=variant, num_frequencies=2, widths=(8, 16),
                              num_outputs=3, rngs=nnx.Rngs(0))
  graphdef, state = nnx.split(model)
  apply = jax.jit(lambda state, *inputs: nnx.merge(graphdef, state)(*inputs))
  images = jax.random.normal(jax.random.key(0), (2, 16, 16, 3))
  k = jnp.tile(NYU.as_array(), (2, 1))
  boxes = _boxes().as_array()[:2]
  out = apply(state, images, k, boxes)
  assert out.shape == (2, 3)
  moved = apply(state, images, k, boxes.at[:, 0].add(150.0))
  changed = np.abs(np.asarray(out - moved)).max() > 1e-6
  assert changed == (injection != "none")


def test_token_kpe_adds_to_tokens_and_starts_at_zero():
  module = models.TokenKPE(kpe_channels=32, token_dim=24, hidden=16, rngs=nnx.Rngs(0))
  tokens = jax.random.normal(jax.random.key(1), (2, 6 * 8, 24))
  boxes = encoding.CropBox.from_array(_boxes().as_array()[:2])
  kpe = crop_kpe("dense", _batched(NYU, 2), boxes, 8, (6, 8))
  graphdef, _ = nnx.split(module)
  apply = jax.jit(lambda state, tokens, kpe: nnx.merge(graphdef, state)(tokens, kpe))
  np.testing.assert_allclose(np.asarray(apply(nnx.state(module), tokens, kpe)), np.asarray(tokens))   # zero init
  module.out.kernel[...] = jnp.ones_like(module.out.kernel[...])
  assert np.abs(np.asarray(apply(nnx.state(module), tokens, kpe) - tokens)).max() > 1e-3
  with pytest.raises(ValueError):
    apply(nnx.state(module), tokens, crop_kpe("dense", _batched(NYU, 2), boxes, 8, (5, 8)))
