"""Schedules and optimizers from config; Adafactor's factored state gets valid shardings."""
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
