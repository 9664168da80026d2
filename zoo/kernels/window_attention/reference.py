"""Pure-jnp window attention: the numerical truth the XLA and Pallas paths are tested against.

W.A.L.T (arXiv 2312.06662) §4.2 alternates two kinds of non-overlapping window self-attention over the
latent token grid [T, H, W]: spatial windows (1, h, w) and spatiotemporal windows (e.g. 5, 8, 8), with a
learned Swin-style relative position bias per head. For a stack of independent *images* the
spatiotemporal layer uses an identity attention mask: every token returns its own value vector, so
frames of the stack never mix.

Layouts used everywhere in this package:
  tokens      q, k, v, output  [B, T, H, W, num_heads, head_dim]
  windowed    q, k, v          [B * num_windows, num_heads, S, head_dim],  S = wt * wh * ww
  bias table                   [num_heads, (2wt-1) (2wh-1) (2ww-1)]   (Swin style, one entry per offset)
  bias, gathered               [num_heads, S, S]
  is_image                     [B] bool (None: no example is an image)
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

Window = tuple[int, int, int]


def check_window(grid: tuple[int, int, int], window: Window) -> None:
  """Raises a ValueError naming the axis when `window` does not tile the token grid [T, H, W]."""
  if len(window) != 3:
    raise ValueError(f"window must be (wt, wh, ww), got {window!r}")
  for axis_name, size, win in zip(("T", "H", "W"), grid, window):
    if win <= 0 or size % win != 0:
      raise ValueError(
          f"window {tuple(window)} does not divide the token grid (T, H, W) = {tuple(grid)}: "
          f"{axis_name}={size} is not a multiple of {win}. W.A.L.T uses non-overlapping, unshifted "
          "windows, so every grid axis must be a multiple of the window along it.")


def window_partition(x: jax.Array, window: Window) -> jax.Array:
  """[B, T, H, W, N, D] -> [B * num_windows, N, S, D], windows in (t, h, w) raster order."""
  b, t, h, w, n, d = x.shape
  check_window((t, h, w), window)
  wt, wh, ww = window
  x = x.reshape(b, t // wt, wt, h // wh, wh, w // ww, ww, n, d)
  # One transpose puts the window index first and the heads before the in-window tokens, so every
  # (window, head) pair is a contiguous [S, D] matrix: the layout both kernels want.
  x = x.transpose(0, 1, 3, 5, 7, 2, 4, 6, 8)
  return x.reshape(b * (t // wt) * (h // wh) * (w // ww), n, wt * wh * ww, d)


def window_merge(xw: jax.Array, window: Window, grid_shape: tuple[int, int, int, int]) -> jax.Array:
  """Inverse of `window_partition`: [B * num_windows, N, S, D] -> [B, T, H, W, N, D].

  grid_shape is (B, T, H, W).
  """
  b, t, h, w = grid_shape
  wt, wh, ww = window
  n, d = xw.shape[1], xw.shape[-1]
  x = xw.reshape(b, t // wt, h // wh, w // ww, n, wt, wh, ww, d)
  x = x.transpose(0, 1, 5, 2, 6, 3, 7, 4, 8)
  return x.reshape(b, t, h, w, n, d)


def num_relative_offsets(window: Window) -> int:
  wt, wh, ww = window
  return (2 * wt - 1) * (2 * wh - 1) * (2 * ww - 1)


@functools.lru_cache(maxsize=None)
def relative_position_index(window: Window) -> np.ndarray:
  """[S, S] int32: index into the Swin bias table of the offset (query - key) in (t, h, w)."""
  wt, wh, ww = window
  coords = np.stack(np.meshgrid(np.arange(wt), np.arange(wh), np.arange(ww), indexing="ij"), -1)
  coords = coords.reshape(-1, 3)                                  # [S, 3]
  offsets = coords[:, None, :] - coords[None, :, :] + np.array([wt - 1, wh - 1, ww - 1])
  index = (offsets[..., 0] * (2 * wh - 1) + offsets[..., 1]) * (2 * ww - 1) + offsets[..., 2]
  return index.astype(np.int32)


def gather_relative_bias(relative_bias: jax.Array, window: Window) -> jax.Array:
  """Swin table [N, (2wt-1)(2wh-1)(2ww-1)] -> [N, S, S]; an already-gathered [N, S, S] passes through."""
  s = window[0] * window[1] * window[2]
  if relative_bias.ndim == 3:
    if relative_bias.shape[1:] != (s, s):
      raise ValueError(f"gathered relative_bias must be [num_heads, {s}, {s}] for window {window}, "
                       f"got {relative_bias.shape}")
    return relative_bias
  if relative_bias.ndim != 2 or relative_bias.shape[1] != num_relative_offsets(window):
    raise ValueError(
        f"relative_bias must be a table [num_heads, {num_relative_offsets(window)}] or gathered "
        f"[num_heads, {s}, {s}] for window {window}, got {relative_bias.shape}")
  # The gather sits outside any kernel, so its gradient (a scatter-add into the table) is plain XLA.
  return relative_bias[:, relative_position_index(tuple(window))]


def default_scale(head_dim: int) -> float:
  return 1.0 / float(np.sqrt(head_dim))


def window_attention_reference(q, k, v, relative_bias, *, window: Window, is_image=None, scale=None):
  """Window attention in float32, materialising every [S, S] score matrix; output in q.dtype.

  q, k, v: [B, T, H, W, N, D]; relative_bias: table or gathered (see module docstring);
  is_image: [B] bool or None. Returns [B, T, H, W, N, D].
  """
  b, t, h, w, n, d = q.shape
  scale = default_scale(d) if scale is None else scale
  bias = gather_relative_bias(relative_bias, window).astype(jnp.float32)       # [N, S, S]
  qw, kw, vw = (window_partition(x.astype(jnp.float32), window) for x in (q, k, v))
  scores = jnp.einsum("gnqd,gnkd->gnqk", qw, kw, precision="highest") * scale + bias
  if is_image is not None:
    num_windows = qw.shape[0] // b
    image_per_window = jnp.repeat(jnp.asarray(is_image, bool), num_windows)    # [B * num_windows]
    s = scores.shape[-1]
    identity = jnp.eye(s, dtype=bool)
    # W.A.L.T §4.2: images in a spatiotemporal layer see only themselves (identity attention mask).
    allowed = jnp.where(image_per_window[:, None, None, None], identity, True)
    scores = jnp.where(allowed, scores, -jnp.inf)
  probs = jax.nn.softmax(scores, axis=-1)
  out = jnp.einsum("gnqk,gnkd->gnqd", probs, vw, precision="highest")
  return window_merge(out, window, (b, t, h, w)).astype(q.dtype)
