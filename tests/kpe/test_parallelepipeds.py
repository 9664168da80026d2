"""The parallelepiped study (paper §3.1, Fig. 3): data geometry and a short training run."""
import jax
import numpy as np

from zoo.kpe import parallelepipeds as ppd


def test_parallelepiped_geometry():
  corners = np.asarray(ppd.sample_parallelepipeds(jax.random.key(0), 64, 35.0))       # [B, 8, 3]
  assert corners.shape == (64, 8, 3)
  base, top = corners[:, :4], corners[:, 4:]
  # Square base of side 0.2 in the plane z = 1, centred on the translation (within ±tan 35° in x, y).
  np.testing.assert_allclose(base[:, :, 2], 1.0, atol=1e-6)
  np.testing.assert_allclose(np.linalg.norm(base[:, 1] - base[:, 0], axis=-1), 0.2, atol=1e-6)
  np.testing.assert_allclose(np.linalg.norm(base[:, 3] - base[:, 0], axis=-1), 0.2, atol=1e-6)
  assert np.abs(base.mean(1)[:, :2]).max() <= np.tan(np.deg2rad(35.0)) + 1e-6
  # The third edge is shared by all four vertical edges, has length ≤ 1.2 and points away from the camera.
  edges = top - base
  np.testing.assert_allclose(edges, np.repeat(edges[:, :1], 4, axis=1), atol=1e-6)
  assert (np.linalg.norm(edges[:, 0], axis=-1) <= 1.2 + 1e-5).all() and (edges[:, 0, 2] >= 0).all()
  # Projection is the f = 192 pinhole with principal point 0.
  projected = np.asarray(ppd.project(corners))
  np.testing.assert_allclose(projected, 192 * corners[..., :2] / corners[..., 2:], rtol=1e-5)


def test_centred_inputs_discard_position_and_targets_can_be_root_relative():
  corners = ppd.sample_parallelepipeds(jax.random.key(1), 8, 70.0)
  x_centred = np.asarray(ppd.network_inputs(ppd.project(corners), centred=True)).reshape(8, 8, 2)
  np.testing.assert_allclose(x_centred.mean(1), 0.0, atol=1e-7)
  # Translating the 2D projection leaves the centred input unchanged: the crop position is gone.
  moved = ppd.project(corners) + np.array([37.0, -12.0])
  np.testing.assert_allclose(np.asarray(ppd.network_inputs(moved, centred=True)).reshape(8, 8, 2), x_centred,
                             atol=1e-7)
  x_absolute = np.asarray(ppd.network_inputs(ppd.project(corners), centred=False))
  np.testing.assert_allclose(x_absolute, np.asarray(ppd.project(corners)).reshape(8, -1) / 1e4, rtol=1e-6)
  np.testing.assert_allclose(np.asarray(ppd.targets(corners, True)).mean(1), 0.0, atol=1e-6)


def test_short_run_absolute_input_fits_better_and_gap_shrinks_with_fov():
  """Paper: the centred model cannot even fit the training data; with weak perspective (small FOV) the gap
  closes. Absolute 3D output, 2 seeds, 400 steps (the full 5000-step study is in zoo/kpe/README.md)."""
  specs = [ppd.RunSpec(fov, centred, False, seed) for fov in (70.0, 10.0) for centred in (False, True)
           for seed in (0, 1)]
  curves = ppd.train_runs(specs, num_steps=400, log_every=100)
  final_train = {(s.max_off_axis_deg, s.centred, s.seed): float(t[-1]) for s, t in zip(specs, curves["train"])}
  for seed in (0, 1):
    absolute, centred = final_train[(70.0, False, seed)], final_train[(70.0, True, seed)]
    assert absolute < 0.5 * centred, (seed, absolute, centred)
  gap = lambda fov: np.mean([final_train[(fov, True, s)] - final_train[(fov, False, s)] for s in (0, 1)])
  assert gap(10.0) < 0.5 * gap(70.0)
  table = ppd.summarise(specs, curves, final_chunks=1)
  assert {row["input"] for row in table} == {"absolute", "centred"} and all(row["seeds"] == 2 for row in table)
