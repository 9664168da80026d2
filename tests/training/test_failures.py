"""Corrupt checkpoints fall back with a warning; NaN stops training naming the step."""
import glob
import os

import jax
import numpy as np
import pytest

from tests.helpers import digits_config
from zoo.training import checkpoints, loop, optimizers
from zoo.training import state as state_lib
from zoo.training.task import Task, register
from zoo import sharding


def _abstract(config, devices):
  task = loop.get_task(config.task)
  tx = optimizers.make_optimizer(config.optimizer, config.total_steps)
  mesh = sharding.make_mesh(config.mesh.to_dict(), devices)
  return state_lib.abstract_state_and_shardings(task, config, tx, mesh,
                                                [tuple(r) for r in config.axis_rules])[1]


def _corrupt(step_dir):
  """Truncates every array data file of the state item (what a crash mid-write on a bad disk leaves)."""
  files = [f for f in glob.glob(os.path.join(step_dir, "state", "**", "*"), recursive=True)
           if os.path.isfile(f) and os.path.getsize(f) > 0 and "d/" in f.replace(os.sep, "/")]
  assert files, os.listdir(os.path.join(step_dir, "state"))
  for f in files:
    with open(f, "r+b") as handle:
      handle.truncate(max(1, os.path.getsize(f) // 3))


def test_corrupt_latest_checkpoint_falls_back_with_warning(tfds_dir, tmp_path):
  config = digits_config("total_steps=30")
  devices = jax.devices()[:2]
  loop.train_and_evaluate(config, str(tmp_path), devices=devices)
  ckpt_dir = tmp_path / "checkpoints"
  assert sorted(int(d) for d in os.listdir(ckpt_dir) if d.isdigit()) == [10, 20, 30]
  _corrupt(str(ckpt_dir / "30"))

  ckpt = checkpoints.Checkpointer(str(ckpt_dir))
  with pytest.warns(RuntimeWarning, match="Checkpoint step 30 .* could not be restored"):
    step, state = ckpt.restore(_abstract(config, devices))
  assert step == 20
  assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state.params))
  # Nothing was deleted by the failed read.
  assert (ckpt_dir / "30").exists()

  # The loop resumes from step 20 and trains on.
  config40 = digits_config("total_steps=40")
  with pytest.warns(RuntimeWarning, match="step 30"):
    result = loop.train_and_evaluate(config40, str(tmp_path), devices=devices)
  assert result.step == 40


BAD_BATCH = 25  # 0-based batch index -> update number 26.


def _nan_data(config, shard):
  from data_pipelines import grain_pipeline
  images = np.random.default_rng(0).uniform(size=(64 * 16, 16, 16, 1)).astype(np.float32)
  images[BAD_BATCH * 16: (BAD_BATCH + 1) * 16] = np.nan
  records = [{"image": images[i], "label": np.int32(i % 10)} for i in range(len(images))]
  return grain_pipeline.make_loader(records, global_batch_size=config.batch_size, shard=shard, seed=0,
                                    shuffle=False)


def test_nan_loss_stops_with_step_and_keeps_last_good_checkpoint(tfds_dir, tmp_path):
  from zoo.digits import tasks as digits_tasks
  register(Task(name="testing.digits_nan", build_model=digits_tasks.build_model,
                loss_fn=digits_tasks.loss_fn, train_data=_nan_data,
                abstract_batch=digits_tasks.abstract_batch))
  config = digits_config("task='testing.digits_nan'", "total_steps=60", "log_every_steps=10")
  devices = jax.devices()[:2]
  with pytest.raises(loop.NonFiniteLossError, match=r"at step 26 .*last good checkpoint \(step 20\)"):
    loop.train_and_evaluate(config, str(tmp_path), devices=devices)
  ckpt = checkpoints.Checkpointer(str(tmp_path / "checkpoints"))
  assert ckpt.steps() == [10, 20]
  step, state = ckpt.restore(_abstract(config, devices))
  assert step == 20
  assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state))
