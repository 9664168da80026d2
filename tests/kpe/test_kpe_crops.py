"""Rendered KPE crops: fields, crop bookkeeping against a rendered full image, determinism, tfds builder, loss."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from data_pipelines import kpe_crops
from data_pipelines import scene_renderer as sr
from zoo.kpe import crop_depth

CROP = 16


@pytest.fixture(scope="module")
def crops():
  return kpe_crops.generate_crops(seed=3, num_examples=8, crop_size=CROP, chunk_size=4)


def test_fields_and_ranges(crops):
  assert crops["image"].shape == (8, CROP, CROP, 3) and crops["image"].dtype == np.uint8
  assert crops["depth_map"].shape == (8, CROP, CROP)
  np.testing.assert_allclose(crops["intrinsics"], np.tile([64.0, 64.0, 63.5, 63.5], (8, 1)))
  x0, y0, w, h = crops["crop_box"].T
  np.testing.assert_allclose(w, h)
  assert (x0 >= -1e-3).all() and (y0 >= -1e-3).all()
  assert (x0 + w <= 128 + 1e-3).all() and (y0 + h <= 128 + 1e-3).all()
  assert ((crops["object_depth"] > 1.5) & (crops["object_depth"] < 9.0)).all()
  # off_axis_deg is the angle of the crop-centre ray: atan(√(tan²θx + tan²θy)) from the box and intrinsics.
  centre_u, centre_v = x0 + (w - 1) / 2, y0 + (h - 1) / 2
  expected = np.degrees(np.arctan(np.hypot((centre_u - 63.5) / 64.0, (centre_v - 63.5) / 64.0)))
  np.testing.assert_allclose(crops["off_axis_deg"], expected, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(np.linalg.norm(crops["yaw_target"], axis=-1), 1.0, atol=1e-5)
  np.testing.assert_array_equal(crops["yaw_valid"], (crops["object_class"] == kpe_crops.YAW_CLASS).astype(np.float32))


def test_examples_depend_only_on_seed_and_index(crops):
  again = kpe_crops.generate_crops(seed=3, num_examples=4, crop_size=CROP, chunk_size=4)
  for name, values in again.items():
    np.testing.assert_array_equal(values, crops[name][:4])
  other = kpe_crops.generate_crops(seed=4, num_examples=4, crop_size=CROP, chunk_size=4)
  assert not np.array_equal(other["crop_box"], crops["crop_box"][:4])


def test_crop_camera_sees_the_full_image_rays():
  """Rendering through `crop_camera` = cropping + resizing the full render. With a 48 px box resized to 16 px
  (factor 3) every crop pixel centre is exactly a full-image pixel centre (x0 + 3j + 1), so labels must match
  exactly (a half-pixel or scale slip in the bookkeeping would shift them)."""
  scene, camera, box = kpe_crops.sample_crop(kpe_crops.example_key(3, 1))
  full = sr.render(scene, camera, 128, 128)
  x0 = int(np.clip(np.round(float(box.x0)), 0, 128 - 48))
  y0 = int(np.clip(np.round(float(box.y0)), 0, 128 - 48))
  for crop_size, step in ((16, 3),):
    box_48 = kpe_crops.CropBox(float(x0), float(y0), 48.0, 48.0)
    direct = sr.render(scene, kpe_crops.crop_camera(camera, box_48, crop_size), crop_size, crop_size)
    rows = y0 + step * np.arange(crop_size) + step // 2
    cols = x0 + step * np.arange(crop_size) + step // 2
    for name in ("semantic", "instance"):
      np.testing.assert_array_equal(np.asarray(direct[name]), np.asarray(full[name])[np.ix_(rows, cols)])
    # Float32 rays built from different intrinsics differ in the last bits; a one-pixel shift would not.
    for name in ("depth", "normals", "rgb"):
      np.testing.assert_allclose(np.asarray(direct[name]), np.asarray(full[name])[np.ix_(rows, cols)], rtol=1e-4,
                                 atol=1e-3, err_msg=name)
  assert (np.asarray(full["instance"]) == 0).sum() > 10                   # the target object is in view


def test_tfds_builder_generates_locally(tmp_path):
  config = kpe_crops.KpeCropsConfig(name="tiny", crop_size=CROP, num_train=4, num_test=4)
  builder = kpe_crops.KpeCrops(config=config, data_dir=str(tmp_path))
  builder.download_and_prepare()
  examples = list(builder.as_dataset(split="test").as_numpy_iterator())
  assert len(examples) == 4
  # tfds shuffles the stored order; match examples to the generator's by their (distinct) target depths.
  reference = kpe_crops.generate_crops(kpe_crops.KpeCrops.SPLIT_SEEDS["test"], 4, CROP, chunk_size=4)
  for example in examples:
    index = int(np.argmin(np.abs(reference["object_depth"] - example["object_depth"])))
    np.testing.assert_array_equal(example["image"], reference["image"][index])
    np.testing.assert_array_equal(example["crop_box"], reference["crop_box"][index])


@pytest.mark.parametrize("permute_kpe", [False, True])
def test_crop_depth_loss_trains(crops, permute_kpe):
  model = crop_depth.build_crop_model("latent", "sparse", 2, rngs=nnx.Rngs(0), widths=(8, 16))
  batch = {k: jnp.asarray(v) for k, v in crops.items()}
  loss_fn = functools.partial(crop_depth.crop_depth_loss, permute_kpe=permute_kpe)
  graphdef, params = nnx.split(model)
  grad_fn = jax.jit(jax.value_and_grad(lambda p, rng: loss_fn(nnx.merge(graphdef, p), batch, rng), has_aux=True))
  (loss, metrics), grads = grad_fn(params, jax.random.key(0))
  assert np.isfinite(float(loss))
  assert set(metrics) == {"depth_loss", "yaw_loss", "depth_abs_rel", "depth_abs_m", "yaw_error_deg"}
  assert 0 <= float(metrics["yaw_error_deg"]) <= 90
  # A few Adam steps lower the loss on this batch (the loss is wired to the parameters).
  tx = optax.adam(1e-2)
  opt_state = tx.init(params)
  for _ in range(5):
    updates, opt_state = tx.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    (new_loss, _), grads = grad_fn(params, jax.random.key(0))
  assert float(new_loss) < float(loss)


def test_permuted_kpe_control_breaks_the_link():
  model = crop_depth.build_crop_model("latent", "sparse", 2, rngs=nnx.Rngs(0), widths=(8,))
  batch = dict(image=jnp.zeros((6, CROP, CROP, 3), jnp.uint8),
               intrinsics=jnp.tile(jnp.array([64.0, 64, 63.5, 63.5]), (6, 1)),
               crop_box=jnp.stack([jnp.arange(6.0) * 10, jnp.zeros(6), jnp.full(6, 20.0), jnp.full(6, 20.0)], -1))
  plain = crop_depth.predict(model, batch)["depth"]
  permuted = crop_depth.predict(model, batch, jax.random.key(1), permute_kpe=True)["depth"]
  # Same images, so predictions are a permutation of each other – but not the identity.
  np.testing.assert_allclose(np.sort(np.asarray(plain)), np.sort(np.asarray(permuted)), rtol=1e-5)
  assert not np.allclose(np.asarray(plain), np.asarray(permuted))


def test_yaw_error_is_modulo_180():
  target = jnp.array([[np.cos(2 * 0.1), np.sin(2 * 0.1)]] * 3)
  predicted = jnp.array([0.1 + np.pi, 0.1 - np.deg2rad(89.0), 0.1 + np.deg2rad(30.0)])
  np.testing.assert_allclose(np.asarray(crop_depth.yaw_error_deg(predicted, target)), [0.0, 89.0, 30.0], atol=1e-3)
