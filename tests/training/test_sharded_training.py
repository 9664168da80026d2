"""The loop on a data=2,fsdp=2,tensor=2 mesh matches 1-device training; checkpoints reshard 8 -> 4."""
import jax
import numpy as np

from tests.helpers import digits_config
from zoo.training import checkpoints, loop, metrics_io, optimizers
from zoo.training import state as state_lib
from zoo import sharding


def _final_params(workdir, config, devices):
  _, _, model, step, which = loop.restore_for_eval(config, f"{workdir}/checkpoints", prefer_ema=False,
                                                   devices=devices)
  from flax import nnx
  return step, jax.device_get(nnx.to_pure_dict(nnx.state(model, nnx.Param)))


def test_sharded_matches_single_device(tfds_dir, tmp_path):
  single = digits_config("mesh.data=1")
  sharded = digits_config("mesh.data=2", "mesh.fsdp=2", "mesh.tensor=2",
                          "axis_rules=[('batch', ('data', 'fsdp')), ('embed', 'fsdp'), "
                          "('conv_out', 'tensor'), ('classes', None)]")
  loop.train_and_evaluate(single, str(tmp_path / "one"), devices=jax.devices()[:1])
  result = loop.train_and_evaluate(sharded, str(tmp_path / "eight"), devices=jax.devices()[:8])
  assert result.step == 20

  losses_one = [m["loss"] for m in metrics_io.read_metrics(str(tmp_path / "one")) if "loss" in m]
  losses_eight = [m["loss"] for m in metrics_io.read_metrics(str(tmp_path / "eight")) if "loss" in m]
  assert len(losses_one) == len(losses_eight) == 4
  np.testing.assert_allclose(losses_eight, losses_one, rtol=2e-4, atol=1e-5)

  _, params_one = _final_params(tmp_path / "one", single, jax.devices()[:1])
  _, params_eight = _final_params(tmp_path / "eight", sharded, jax.devices()[:8])
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-3, atol=2e-5), params_eight, params_one)

  # The sharded run really was sharded: conv output channels on `tensor`, the embedding on `fsdp`.
  tx = optimizers.make_optimizer(sharded.optimizer, sharded.total_steps)
  mesh = sharding.make_mesh(sharded.mesh.to_dict())
  _, abstract_state, _ = state_lib.abstract_state_and_shardings(
      loop.get_task(sharded.task), sharded, tx, mesh, [tuple(r) for r in sharded.axis_rules])
  assert abstract_state.params["convs"][1]["kernel"].sharding.spec == jax.P(None, None, None, "tensor")
  assert abstract_state.params["head"]["kernel"].sharding.spec == jax.P("fsdp", None)


def test_checkpoint_from_8_devices_restores_on_4(tfds_dir, tmp_path):
  config8 = digits_config("mesh.data=2", "mesh.fsdp=2", "mesh.tensor=2", "total_steps=10")
  loop.train_and_evaluate(config8, str(tmp_path), devices=jax.devices()[:8])
  config4 = digits_config("mesh.data=1", "mesh.fsdp=2", "mesh.tensor=2", "total_steps=10")

  task = loop.get_task(config4.task)
  tx = optimizers.make_optimizer(config4.optimizer, config4.total_steps)
  rules = [tuple(r) for r in config4.axis_rules]
  mesh8 = sharding.make_mesh(config8.mesh.to_dict(), jax.devices()[:8])
  mesh4 = sharding.make_mesh(config4.mesh.to_dict(), jax.devices()[:4])
  _, target8, _ = state_lib.abstract_state_and_shardings(task, config8, tx, mesh8, rules)
  _, target4, _ = state_lib.abstract_state_and_shardings(task, config4, tx, mesh4, rules)
  ckpt = checkpoints.Checkpointer(str(tmp_path / "checkpoints"))
  step8, state8 = ckpt.restore(target8)
  step4, state4 = ckpt.restore(target4)
  assert step8 == step4 == 10
  for a, b in zip(jax.tree.leaves(state8), jax.tree.leaves(state4)):
    assert b.sharding.mesh.devices.size == 4 if hasattr(b.sharding, "mesh") else True
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert {d.id for d in state4.params["convs"][1]["kernel"].devices()} == {d.id for d in jax.devices()[:4]}
