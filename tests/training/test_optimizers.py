"""Schedules and optimizers from config; Adafactor's factored state gets valid shardings."""
import logging

import jax
import ml_collections
import numpy as np
import optax
import pytest

from zoo.training import optimizers


def _opt(**kw):
  base = dict(name="adamw", learning_rate=1.0, warmup_steps=10, decay="cosine", end_learning_rate_factor=0.1,
              weight_decay=0.0, grad_clip_norm=0.0)
  base.update(kw)
  return ml_collections.ConfigDict(base)


def test_warmup_then_cosine():
  schedule = optimizers.make_schedule(_opt(), total_steps=110)
  assert float(schedule(0)) == 0.0
  np.testing.assert_allclose(float(schedule(5)), 0.5, rtol=1e-6)
  np.testing.assert_allclose(float(schedule(10)), 1.0, rtol=1e-6)
  np.testing.assert_allclose(float(schedule(60)), 0.1 + 0.9 * 0.5, rtol=1e-5)  # Cosine midpoint.
  np.testing.assert_allclose(float(schedule(110)), 0.1, rtol=1e-5)


def test_clipping_bounds_the_update():
  tx = optimizers.make_optimizer(_opt(name="sgd", warmup_steps=0, decay="constant", grad_clip_norm=1.0), 10)
  params = {"w": np.zeros(4, np.float32)}
  updates, _ = tx.update({"w": np.full(4, 100.0, np.float32)}, tx.init(params), params)
  np.testing.assert_allclose(float(optax.tree.norm(updates)), 1.0, rtol=1e-5)


@pytest.mark.parametrize("name", ["adamw", "adafactor", "sgd"])
def test_each_optimizer_steps_on_a_sharded_mesh(name):
  from tests.helpers import digits_config
  from zoo import sharding
  from zoo.training import state as state_lib
  from zoo.training.task import get_task
  config = digits_config(f"optimizer.name={name}", "optimizer.warmup_steps=0", "mesh.data=1", "mesh.fsdp=2",
                         "mesh.tensor=2")
  task = get_task(config.task)
  tx = optimizers.make_optimizer(config.optimizer, 10)
  schedule = optimizers.make_schedule(config.optimizer, 10)
  mesh = sharding.make_mesh(config.mesh.to_dict(), jax.devices()[:4])
  rules = [tuple(r) for r in config.axis_rules]
  spec, state, shardings = state_lib.init_state(task, config, tx, mesh, rules)
  # Optimizer leaves shaped like a parameter follow its sharding; the rest (factored stats) replicate.
  for leaf, sh in zip(jax.tree.leaves(state.opt_state), jax.tree.leaves(shardings.opt_state)):
    assert leaf.sharding.is_equivalent_to(sh, leaf.ndim)
  abstract_batch = task.abstract_batch(config)
  batch_sh = jax.tree.map(lambda x: sharding.batch_sharding(mesh, rules, len(x.shape), x.shape), abstract_batch)
  rng = np.random.default_rng(0)
  batch = {"image": rng.uniform(size=abstract_batch["image"].shape).astype(np.float32),
           "label": rng.integers(0, 10, abstract_batch["label"].shape).astype(np.int32)}
  batch = jax.device_put(batch, batch_sh)
  step = state_lib.jit_train_step(state_lib.make_train_step(task, spec, config, tx, schedule), shardings,
                                  batch_sh, mesh)
  with jax.set_mesh(mesh):
    before = jax.device_get(state.params)
    state, metrics = step(state, batch)
  assert np.isfinite(float(metrics["loss"])) and int(state.step) == 1
  changed = jax.tree.map(lambda a, b: not np.array_equal(a, np.asarray(b)), before, state.params)
  assert any(jax.tree.leaves(changed))


def test_unknown_optimizer_is_clear():
  with pytest.raises(ValueError, match="Unknown config.optimizer.name 'lion'"):
    optimizers.make_optimizer(_opt(name="lion"), 10)


def test_flattened_update_matches_the_per_leaf_update():
  """config.optimizer.flatten runs AdamW (with global-norm clipping) on one concatenated vector: the
  updates must be those of the per-leaf optimizer, leaf for leaf."""
  rng = np.random.default_rng(0)
  params = {"dense": {"kernel": rng.normal(size=(5, 3)).astype(np.float32),
                      "bias": rng.normal(size=(3,)).astype(np.float32)},
            "scale": rng.normal(size=(2, 2, 4)).astype(np.float32)}
  per_leaf = optimizers.make_optimizer(_opt(warmup_steps=2, weight_decay=0.1, grad_clip_norm=0.5), 10)
  flat = optimizers.make_optimizer(_opt(warmup_steps=2, weight_decay=0.1, grad_clip_norm=0.5, flatten=True), 10)
  state_leaf, state_flat = per_leaf.init(params), flat.init(params)
  # One flat vector per Adam moment: the whole point of the option.
  assert all(leaf.ndim <= 1 for leaf in jax.tree.leaves(state_flat))
  assert max(leaf.size for leaf in jax.tree.leaves(state_flat)) == 15 + 3 + 16
  p_leaf, p_flat = params, params
  for step in range(4):
    grads = jax.tree.map(lambda p: rng.normal(size=p.shape).astype(np.float32) * (step + 1), params)
    u_leaf, state_leaf = per_leaf.update(grads, state_leaf, p_leaf)
    u_flat, state_flat = flat.update(grads, state_flat, p_flat)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), u_flat, u_leaf)
    p_leaf, p_flat = optax.apply_updates(p_leaf, u_leaf), optax.apply_updates(p_flat, u_flat)
  assert jax.tree.structure(p_flat) == jax.tree.structure(params)


def test_flattened_optimizer_trains_data_parallel_and_refuses_sharded_parameters():
  from tests.helpers import digits_config
  from zoo import sharding
  from zoo.training import state as state_lib
  from zoo.training.task import get_task

  def one_step(config, devices):
    task = get_task(config.task)
    tx = optimizers.make_optimizer(config.optimizer, 10)
    schedule = optimizers.make_schedule(config.optimizer, 10)
    mesh = sharding.make_mesh(config.mesh.to_dict(), devices)
    rules = [tuple(r) for r in config.axis_rules]
    spec, state, shardings = state_lib.init_state(task, config, tx, mesh, rules)
    abstract_batch = task.abstract_batch(config)
    batch_sh = jax.tree.map(lambda x: sharding.batch_sharding(mesh, rules, len(x.shape), x.shape),
                            abstract_batch)
    rng = np.random.default_rng(0)
    batch = jax.device_put({"image": rng.uniform(size=abstract_batch["image"].shape).astype(np.float32),
                            "label": rng.integers(0, 10, abstract_batch["label"].shape).astype(np.int32)},
                           batch_sh)
    step = state_lib.jit_train_step(state_lib.make_train_step(task, spec, config, tx, schedule), shardings,
                                    batch_sh, mesh)
    with jax.set_mesh(mesh):
      for _ in range(2):
        state, metrics = step(state, batch)
    return state, metrics

  flat_state, flat_metrics = one_step(digits_config("optimizer.flatten=True", "mesh.data=2"), jax.devices()[:2])
  leaf_state, leaf_metrics = one_step(digits_config("mesh.data=2"), jax.devices()[:2])
  assert max(leaf.ndim for leaf in jax.tree.leaves(flat_state.opt_state)) == 1
  np.testing.assert_allclose(float(flat_metrics["loss"]), float(leaf_metrics["loss"]), rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
               jax.device_get(flat_state.params), jax.device_get(leaf_state.params))

  with pytest.raises(ValueError, match=r"optimizer.flatten=True needs replicated parameters.*flatten=False"):
    one_step(digits_config("optimizer.flatten=True", "mesh.data=1", "mesh.fsdp=2"), jax.devices()[:2])


def test_flattened_optimizer_state_checkpoints_and_resumes(tfds_dir, tmp_path, caplog):
  """The flat moments go through orbax like any other state: resuming from step 10 of a 20-step run ends
  at the parameters of the uninterrupted run."""
  import shutil
  from flax import nnx
  from tests.helpers import digits_config
  from zoo.training import loop

  config = digits_config("optimizer.flatten=True", "mesh.data=2")
  devices = jax.devices()[:2]
  loop.train_and_evaluate(config, str(tmp_path / "straight"), devices=devices)
  shutil.copytree(tmp_path / "straight", tmp_path / "resumed")
  shutil.rmtree(tmp_path / "resumed" / "checkpoints" / "20")
  with caplog.at_level(logging.INFO):
    result = loop.train_and_evaluate(config, str(tmp_path / "resumed"), devices=devices)
  assert result.step == 20
  assert any("Resumed from" in r.getMessage() and r.getMessage().endswith("at step 10.") for r in caplog.records)

  def final(workdir):
    _, _, model, step, _ = loop.restore_for_eval(config, f"{workdir}/checkpoints", prefer_ema=False,
                                                 devices=devices)
    assert step == 20
    return jax.device_get(nnx.to_pure_dict(nnx.state(model, nnx.Param)))

  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7),
               final(tmp_path / "resumed"), final(tmp_path / "straight"))
