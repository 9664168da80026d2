"""Inference exports (zoo/training/export.py): what a consumer restores equals the run's EMA parameters."""
import json
import os

import jax
import numpy as np
import pytest
from flax import nnx

from tests.helpers import digits_config
from tools import export as export_tool
from zoo.training import export, loop


def _params(model):
  return jax.device_get(nnx.to_pure_dict(nnx.state(model, nnx.Param)))


def test_export_restores_the_ema_parameters_and_evaluates_the_same(tfds_dir, tmp_path):
  config = digits_config("total_steps=10", "checkpoint.every_steps=10", "evals.classification.batch_size=100")
  loop.train_and_evaluate(config, str(tmp_path / "run"), devices=jax.devices()[:1])
  _, _, trained, step, which = loop.restore_for_eval(config, str(tmp_path / "run/checkpoints"),
                                                     devices=jax.devices()[:2])
  assert which == "ema_params"

  out = tmp_path / "shipped/checkpoints"
  assert export_tool.main(["--workdir", str(tmp_path / "run"), "--out", str(out)]) == 0
  assert json.loads((out / "export.json").read_text())["step"] == step
  # Both restore entry points accept the export; the model comes back sharded on the requested devices.
  stored_config, _, mesh, exported, exported_step, _ = loop.restore_trained_model(str(out), devices=jax.devices()[:2])
  assert exported_step == step and stored_config.model.width == config.model.width and mesh.size == 2
  jax.tree.map(np.testing.assert_array_equal, _params(exported), _params(trained))
  _, _, via_eval, _, _ = loop.restore_for_eval(config, str(out), devices=jax.devices()[:2])
  jax.tree.map(np.testing.assert_array_equal, _params(via_eval), _params(trained))

  half = tmp_path / "half/checkpoints"
  export.export(str(tmp_path / "run/checkpoints"), str(half), dtype="float16")
  assert os.path.getsize(half / "params.npz") < os.path.getsize(out / "params.npz")
  _, _, _, half_model, _, _ = loop.restore_trained_model(str(half))
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=2e-3, atol=1e-4), _params(half_model),
               _params(trained))


def test_export_of_another_model_is_a_clear_error(tfds_dir, tmp_path):
  config = digits_config("total_steps=2", "checkpoint.every_steps=2")
  loop.train_and_evaluate(config, str(tmp_path / "run"), devices=jax.devices()[:1])
  out = tmp_path / "export"
  export.export(str(tmp_path / "run/checkpoints"), str(out))
  stored = json.loads((out / "config.json").read_text())
  stored["model"]["embed_dim"] = 32  # The arrays no longer fit the model the config describes.
  (out / "config.json").write_text(json.dumps(stored))
  with pytest.raises(ValueError, match="has shape .* the model expects"):
    export.restore(str(out))
  with pytest.raises(FileNotFoundError, match="no such directory"):
    loop.restore_trained_model(str(tmp_path / "missing"))
