"""The paper's transformer experiments (Table 8): sizes, latent grids, and a TPU compile of their train step."""
import math

import jax
import pytest
from flax import nnx

from tools import aot_compile
from zoo import config as zconfig
from zoo.walt import diffusion_task

# (experiment, latent grid, input channels, parameters in millions, tolerance): paper 460M / 313M / 460M.
PAPER = [("ucf101_xl", (5, 16, 16), 16, 461.25), ("k600_l", (5, 16, 16), 25, 314.12),
         ("imagenet_l", (1, 32, 32), 16, 459.60)]


@pytest.mark.parametrize("name, grid, channels, millions", PAPER)
def test_paper_experiments_build_table_8_models(name, grid, channels, millions):
  config = zconfig.load_config(f"experiments/walt/{name}.py")
  cfg = diffusion_task.transformer_config(config)
  assert cfg.grid == grid and cfg.input_channels == channels
  model = nnx.eval_shape(lambda: diffusion_task.build_model(config, nnx.Rngs(0)))
  count = sum(math.prod(x.shape) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
  assert abs(count / 1e6 - millions) < 0.01, count


def test_ucf101_train_step_compiles_for_tpu_with_pallas_window_attention():
  """Two of the 28 layers at full width (1152, 16 heads × 72), batch 4 on v5e:2x2 with fsdp: the real step,
  Pallas window attention (spatial 1×16×16 and spatiotemporal 5×8×8) inside shard_map, compiled by Mosaic."""
  config = zconfig.load_config("experiments/walt/ucf101_xl.py:depth=2,batch=4")
  report = aot_compile.compile_for_topology(config, "v5e:2x2")
  assert report["kernels"] == {"window_attention": "pallas"}
  assert report["fits"], report
  assert report["mesh"]["fsdp"] == 4
  assert report["flops_per_step_per_device"] > 0
