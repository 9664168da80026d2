"""KPE: intrinsics-aware positional encoding of a crop (Prakash et al., arXiv 2312.06594, method
section "KPE"; section numbers of the paper are unverified, the formulas are checked against the authors' code).

A crop seen in isolation loses where it sits in the full image. KPE hands the model the *viewing angles* of the
crop, computed from the camera intrinsics K = (fx, fy, px, py) of the full image:

    θx = atan((u − px) / fx),   θy = atan((v − py) / fy)                              (paper: the KPE equation)

for a pixel (u, v) in full-image coordinates, encoded NeRF-style as sin/cos(2^ℓ θ), ℓ = 0..L−1 (4L numbers per
point). Variants (the authors' `pos_enc` option):

  * ``centre``  crop centre                             [..., 4L]
  * ``corner``  the 4 crop corners                      [..., 16L]
  * ``sparse``  centre + corners ("sparse KPE")         [..., 20L]
  * ``dense``   per-pixel map over the crop             [..., gh, gw, 4L]

Pixel convention (used everywhere in this package): pixel (i, j) has its centre at integer coordinates
(u, v) = (j, i); the image spans [−0.5, W − 0.5] × [−0.5, H − 0.5]. A crop box (x0, y0, w, h) covers the pixels
x0 .. x0 + w − 1, so its edges are at x0 − 0.5 and x0 + w − 0.5 and its centre at x0 + (w − 1) / 2. Corners are
the crop *edges* (not the corner pixel centres), so the corner encoding describes the crop's full angular extent.

Everything is plain `jnp` and broadcasts over leading batch dimensions, so the encodings can be computed inside
a jitted loss from per-example intrinsics and crop boxes.
"""
from __future__ import annotations

import dataclasses
from typing import Literal

import jax
import jax.numpy as jnp

KPEVariant = Literal["centre", "corner", "sparse", "dense"]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Intrinsics:
  """Pinhole intrinsics of an image of ``width`` × ``height`` pixels (pixel centres at integers).

  Fields may be Python floats or arrays with matching leading batch shapes. The bookkeeping methods return the
  intrinsics of the *transformed* image such that every pixel keeps its viewing ray: cropping shifts the
  principal point, resizing scales focal lengths and (half-pixel-centre) principal point, a horizontal flip
  mirrors the principal point (and the encoding's θx changes sign, as the image does).
  """
  fx: jax.Array | float
  fy: jax.Array | float
  px: jax.Array | float
  py: jax.Array | float
  width: jax.Array | float
  height: jax.Array | float

  def as_array(self) -> jax.Array:
    """[..., 4] = (fx, fy, px, py)."""
    return jnp.stack(jnp.broadcast_arrays(*map(jnp.asarray, (self.fx, self.fy, self.px, self.py))), axis=-1)

  @classmethod
  def from_array(cls, fx_fy_px_py: jax.Array, width, height) -> "Intrinsics":
    """Inverse of `as_array`: [..., 4] → Intrinsics."""
    return cls(fx_fy_px_py[..., 0], fx_fy_px_py[..., 1], fx_fy_px_py[..., 2], fx_fy_px_py[..., 3], width, height)

  def crop(self, box: "CropBox") -> "Intrinsics":
    """Intrinsics of the crop ``box`` (full-image pixels): only the principal point moves."""
    return Intrinsics(self.fx, self.fy, self.px - box.x0, self.py - box.y0, box.width, box.height)

  def resize(self, new_width, new_height) -> "Intrinsics":
    """Intrinsics after resizing to new_width × new_height (`jax.image.resize` half-pixel convention).

    A continuous coordinate x maps to (x + 0.5)·s − 0.5 with s = new/old, hence fx·s and (px + 0.5)·s − 0.5.
    """
    sx = new_width / self.width
    sy = new_height / self.height
    return Intrinsics(self.fx * sx, self.fy * sy, (self.px + 0.5) * sx - 0.5, (self.py + 0.5) * sy - 0.5,
                      new_width, new_height)

  def flip_horizontal(self) -> "Intrinsics":
    """Intrinsics of the mirrored image: column u ↦ W − 1 − u, so px ↦ W − 1 − px (NYU code does the same)."""
    return Intrinsics(self.fx, self.fy, self.width - 1 - self.px, self.py, self.width, self.height)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class CropBox:
  """A crop of ``width`` × ``height`` pixels whose top-left pixel is (x0, y0), in full-image pixels."""
  x0: jax.Array | float
  y0: jax.Array | float
  width: jax.Array | float
  height: jax.Array | float

  @classmethod
  def from_array(cls, x0_y0_w_h: jax.Array) -> "CropBox":
    """[..., 4] = (x0, y0, w, h) → CropBox."""
    return cls(x0_y0_w_h[..., 0], x0_y0_w_h[..., 1], x0_y0_w_h[..., 2], x0_y0_w_h[..., 3])

  def as_array(self) -> jax.Array:
    return jnp.stack(jnp.broadcast_arrays(*map(jnp.asarray, (self.x0, self.y0, self.width, self.height))), -1)

  def centre(self) -> tuple[jax.Array, jax.Array]:
    """(u, v) of the crop centre in full-image pixel coordinates."""
    return (jnp.asarray(self.x0 + (self.width - 1) / 2), jnp.asarray(self.y0 + (self.height - 1) / 2))

  def corners(self) -> tuple[jax.Array, jax.Array]:
    """(u, v), each [..., 4]: the crop's edge corners in order top-left, top-right, bottom-left, bottom-right."""
    left, right = self.x0 - 0.5, self.x0 + self.width - 0.5
    top, bottom = self.y0 - 0.5, self.y0 + self.height - 0.5
    u = jnp.stack(jnp.broadcast_arrays(left, right, left, right), axis=-1)
    v = jnp.stack(jnp.broadcast_arrays(top, top, bottom, bottom), axis=-1)
    return u, v


def pixel_angles(u: jax.Array, v: jax.Array, intrinsics: Intrinsics) -> jax.Array:
  """Viewing angles [..., 2] = (θx, θy) of full-image pixel coordinates u, v (paper: the KPE equation).

  θx = atan((u − px)/fx) is the horizontal angle of the ray from the optical axis (θy likewise); atan2 with the
  positive focal length in the second slot is the same function, numerically safer for tiny fx.
  """
  theta_x = jnp.arctan2(u - intrinsics.px, intrinsics.fx)
  theta_y = jnp.arctan2(v - intrinsics.py, intrinsics.fy)
  return jnp.stack([theta_x, theta_y], axis=-1)


def sinusoidal_encoding(angles: jax.Array, num_frequencies: int) -> jax.Array:
  """[..., A] angles → [..., 2·A·L] features, NeRF-style (paper: sin/cos(2^ℓ θ), ℓ < L).

  Layout: for each frequency ℓ, [sin(2^ℓ θ_1..A), cos(2^ℓ θ_1..A)]; with A = 2 angles that is 4 numbers per ℓ.
  """
  frequencies = 2.0 ** jnp.arange(num_frequencies, dtype=jnp.float32)              # [L]
  scaled = angles[..., None, :] * frequencies[:, None]                                # [..., L, A]
  features = jnp.concatenate([jnp.sin(scaled), jnp.cos(scaled)], axis=-1)             # [..., L, 2A]
  return features.reshape(*features.shape[:-2], -1)


def _add_point_axes(intrinsics: Intrinsics, num_axes: int) -> Intrinsics:
  """Appends `num_axes` singleton axes so per-crop intrinsics broadcast against per-point coordinates."""
  return jax.tree.map(lambda leaf: jnp.asarray(leaf)[(...,) + (None,) * num_axes], intrinsics)


def centre_kpe(intrinsics: Intrinsics, box: CropBox, num_frequencies: int) -> jax.Array:
  """[..., 4L]: encoding of the crop centre's viewing angles."""
  u, v = box.centre()
  return sinusoidal_encoding(pixel_angles(u, v, intrinsics), num_frequencies)


def corner_kpe(intrinsics: Intrinsics, box: CropBox, num_frequencies: int) -> jax.Array:
  """[..., 16L]: encodings of the 4 crop corners (TL, TR, BL, BR), concatenated."""
  u, v = box.corners()                                                                 # [..., 4]
  features = sinusoidal_encoding(pixel_angles(u, v, _add_point_axes(intrinsics, 1)), num_frequencies)  # [..., 4, 4L]
  return features.reshape(*features.shape[:-2], -1)


def sparse_kpe(intrinsics: Intrinsics, box: CropBox, num_frequencies: int) -> jax.Array:
  """[..., 20L]: "sparse KPE" = centre ⊕ corners (the authors' ``center+corner``)."""
  return jnp.concatenate([centre_kpe(intrinsics, box, num_frequencies),
                          corner_kpe(intrinsics, box, num_frequencies)], axis=-1)


def dense_kpe(intrinsics: Intrinsics, box: CropBox, num_frequencies: int,
              grid_shape: tuple[int, int]) -> jax.Array:
  """[..., gh, gw, 4L]: per-pixel angle encoding of the crop on a gh × gw feature grid ("dense KPE").

  The authors bilinearly resize the full-resolution angle map to the feature grid; here the angles are
  evaluated exactly at the centres of the gh × gw cells tiling the crop, which is what that resize approximates
  (and equals the crop's pixel map when the grid is the crop size). With odd gh, gw the middle cell's centre is
  the crop centre, so the dense map there equals `centre_kpe`.
  """
  grid_h, grid_w = grid_shape
  x0, y0 = jnp.asarray(box.x0)[..., None], jnp.asarray(box.y0)[..., None]
  w, h = jnp.asarray(box.width)[..., None], jnp.asarray(box.height)[..., None]
  # Cell centres in full-image pixel coordinates; the crop spans [x0 − 0.5, x0 + w − 0.5].
  u = x0 - 0.5 + (jnp.arange(grid_w) + 0.5) * w / grid_w                               # [..., gw]
  v = y0 - 0.5 + (jnp.arange(grid_h) + 0.5) * h / grid_h                               # [..., gh]
  u_grid = jnp.broadcast_to(u[..., None, :], (*u.shape[:-1], grid_h, grid_w))
  v_grid = jnp.broadcast_to(v[..., :, None], (*v.shape[:-1], grid_h, grid_w))
  return sinusoidal_encoding(pixel_angles(u_grid, v_grid, _add_point_axes(intrinsics, 2)), num_frequencies)


def kpe_size(variant: KPEVariant, num_frequencies: int) -> int:
  """Channels of a variant: 4L (centre, dense), 16L (corner), 20L (sparse)."""
  return {"centre": 4, "corner": 16, "sparse": 20, "dense": 4}[variant] * num_frequencies


def crop_kpe(variant: KPEVariant, intrinsics: Intrinsics, box: CropBox, num_frequencies: int,
             grid_shape: tuple[int, int] | None = None) -> jax.Array:
  """Dispatch on the variant name: [..., C] for sparse variants, [..., gh, gw, 4L] for ``dense``."""
  if variant == "centre":
    return centre_kpe(intrinsics, box, num_frequencies)
  if variant == "corner":
    return corner_kpe(intrinsics, box, num_frequencies)
  if variant == "sparse":
    return sparse_kpe(intrinsics, box, num_frequencies)
  if variant == "dense":
    if grid_shape is None:
      raise ValueError("dense KPE needs grid_shape=(gh, gw)")
    return dense_kpe(intrinsics, box, num_frequencies, grid_shape)
  raise ValueError(f"unknown KPE variant {variant!r}; expected one of centre, corner, sparse, dense")
