"""EMA warm-up: decay min(d, (1 + n) / (10 + n)), so short runs' EMA does not keep the initial weights."""
import jax
import jax.numpy as jnp
import numpy as np

from tests.helpers import digits_config
from zoo import sharding as zsharding
from zoo.training import state as state_lib
from zoo.training.task import get_task


def test_ema_follows_the_warmed_up_decay():
  config = digits_config("ema_decay=0.999", "optimizer.warmup_steps=0")
  task = get_task(config.task)
  mesh = zsharding.make_mesh(config.mesh.to_dict(), jax.devices()[:1])
  rules = [tuple(r) for r in config.axis_rules]
  state, step, batch_sh, abstract_batch = state_lib.build_train_step(task, config, mesh, rules)
  rng = np.random.default_rng(0)
  batch = {"image": rng.random(abstract_batch["image"].shape, np.float32),
           "label": rng.integers(0, 10, abstract_batch["label"].shape).astype(np.int32)}
  batch = jax.tree.map(jax.device_put, batch, batch_sh)
  with jax.set_mesh(mesh):
    for n in range(3):
      old_ema = jax.device_get(state.ema_params)
      state, _ = step(state, batch)
      decay = min(0.999, (1 + n) / (10 + n))
      expected = jax.tree.map(lambda e, p: decay * e + (1 - decay) * p, old_ema, jax.device_get(state.params))
      jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
                   jax.device_get(state.ema_params), expected)
  assert int(state.step) == 3 and bool(jnp.all(state.first_nonfinite_step < 0))
