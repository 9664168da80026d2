"""The KPE crop study through the common loop at CI size: trains, checkpoints, evaluates per angle bin."""
import jax
import numpy as np

from tests.helpers import REPO_ROOT
from zoo import config as zconfig
from zoo.training import loop


def test_crop_depth_task_end_to_end(tmp_path):
  config = zconfig.load_config(f"{REPO_ROOT}/experiments/kpe/crop_depth.py:tiny,kpe=dense_latent,steps=20",
                               ["data.num_train=128", "data.num_test=64", "batch_size=32", "log_every_steps=10",
                                "checkpoint.async_save=False", "model.widths=(8, 16, 16)"])
  result = loop.train_and_evaluate(config, str(tmp_path), devices=jax.devices()[:2])
  assert result.step == 20 and np.isfinite(result.last_metrics["loss"])
  evals = result.eval_metrics
  assert evals["eval/crop_depth/num_examples"] == 64
  assert 0 < evals["eval/crop_depth/depth_abs_rel"] < 10
  assert any(key.startswith("eval/crop_depth/depth_abs_rel_offaxis_") for key in evals)
