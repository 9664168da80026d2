"""Flax NNX modules that inject KPE into a network (paper: early vs latent KPE; authors' ``*_latent`` options).

Three places to inject the encoding of `zoo.kpe.encoding`:

  * early:  concatenated to the input image channels (the first conv sees [B, H, W, 3 + C_kpe]);
  * latent: concatenated to a backbone feature map [B, h, w, C] (sparse KPE broadcast over h × w, dense KPE
            evaluated on the h × w grid), then a small conv fusion stack without normalisation (the authors use
            1×1 → 3×3 → 3×3 on ResNet features; `LatentKPEFusion`);
  * tokens: dense KPE on the ViT token grid, mapped by two 1×1 projections and *added* to the patch tokens
            (the authors' MiDaS/BEiT path for NYUv2; `TokenKPE`).

`KPERegressor` is the small CNN of the rendered-crop study: crop → (log-depth, …) with any injection.
"""
from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
from flax import nnx

from zoo.kpe import encoding

Injection = Literal["none", "early", "latent"]


def kpe_map(variant: encoding.KPEVariant, intrinsics: encoding.Intrinsics, box: encoding.CropBox,
            num_frequencies: int, grid_shape: tuple[int, int]) -> jax.Array:
  """KPE laid out on a spatial grid: [B, gh, gw, C] (sparse variants broadcast, dense evaluated per cell)."""
  features = encoding.crop_kpe(variant, intrinsics, box, num_frequencies, grid_shape)
  if variant == "dense":
    return features
  return jnp.broadcast_to(features[..., None, None, :], (*features.shape[:-1], *grid_shape, features.shape[-1]))


class LatentKPEFusion(nnx.Module):
  """concat(features [B, h, w, C], kpe [B, h, w, C_kpe]) → 1×1 → 3×3 → 3×3 convs (ReLU, no norm) → [B, h, w, C_out].

  No normalisation, as in the authors' fusion stack: a norm over the concatenation would mix the KPE's fixed
  [−1, 1] scale with the feature statistics.
  """

  def __init__(self, feature_channels: int, kpe_channels: int, out_channels: int, *, rngs: nnx.Rngs):
    hidden = max(out_channels, feature_channels)
    self.mix = nnx.Conv(feature_channels + kpe_channels, hidden, (1, 1), rngs=rngs)
    self.conv1 = nnx.Conv(hidden, out_channels, (3, 3), rngs=rngs)
    self.conv2 = nnx.Conv(out_channels, out_channels, (3, 3), rngs=rngs)

  def __call__(self, features: jax.Array, kpe: jax.Array) -> jax.Array:
    x = jnp.concatenate([features, kpe.astype(features.dtype)], axis=-1)
    x = jax.nn.relu(self.mix(x))
    x = jax.nn.relu(self.conv1(x))
    return jax.nn.relu(self.conv2(x))


class TokenKPE(nnx.Module):
  """Dense KPE on the token grid → 1×1 → hidden → 1×1 → token dim, added to ViT patch tokens.

  tokens: [B, gh·gw, D] (row-major patch order), kpe: [B, gh, gw, 4L]. Mirrors the authors' BEiT path where the
  projected encoding is added to the patch tokens (`x[:, :-1] += pos_enc`; here there is no class token).
  The output projection starts at zero so a pre-trained ViT is unchanged at initialisation.
  """

  def __init__(self, kpe_channels: int, token_dim: int, hidden: int = 256, *, rngs: nnx.Rngs):
    self.hidden = nnx.Linear(kpe_channels, hidden, rngs=rngs)
    self.out = nnx.Linear(hidden, token_dim, kernel_init=nnx.initializers.zeros, rngs=rngs)

  def __call__(self, tokens: jax.Array, kpe: jax.Array) -> jax.Array:
    kpe_tokens = kpe.reshape(kpe.shape[0], -1, kpe.shape[-1])                               # [B, N, 4L]
    if kpe_tokens.shape[1] != tokens.shape[1]:
      raise ValueError(f"KPE grid has {kpe_tokens.shape[1]} cells but there are {tokens.shape[1]} tokens")
    return tokens + self.out(jax.nn.relu(self.hidden(kpe_tokens))).astype(tokens.dtype)


class KPERegressor(nnx.Module):
  """Small CNN: crop [B, S, S, 3] (+ KPE) → [B, num_outputs]; the rendered-crop study's model.

  Backbone: per stage a stride-2 3×3 conv then a 3×3 conv (ReLU), widths `widths`; S/2^stages feature grid.
  KPE is computed inside from the full-image intrinsics and the crop box (so controls that permute or replace
  them act on the inputs, not on the model), and injected according to `injection`:
    none   – the crop seen in isolation (paper's baseline);
    early  – KPE map at input resolution concatenated to RGB;
    latent – KPE on the final feature grid through `LatentKPEFusion`.
  """

  def __init__(self, *, injection: Injection = "latent", variant: encoding.KPEVariant = "sparse",
               num_frequencies: int = 4, widths: tuple[int, ...] = (32, 64, 128), num_outputs: int = 1,
               image_channels: int = 3, head_width: int = 128, rngs: nnx.Rngs):
    if injection not in ("none", "early", "latent"):
      raise ValueError(f"unknown injection {injection!r}; expected none, early or latent")
    self.injection = injection
    self.variant = variant
    self.num_frequencies = num_frequencies
    kpe_channels = encoding.kpe_size(variant, num_frequencies)
    in_channels = image_channels + (kpe_channels if injection == "early" else 0)
    strided, same = [], []
    for width in widths:
      strided.append(nnx.Conv(in_channels, width, (3, 3), strides=(2, 2), rngs=rngs))
      same.append(nnx.Conv(width, width, (3, 3), rngs=rngs))
      in_channels = width
    self.strided_convs = nnx.List(strided)
    self.same_convs = nnx.List(same)
    self.fusion = (LatentKPEFusion(in_channels, kpe_channels, in_channels, rngs=rngs)
                   if injection == "latent" else None)
    self.hidden = nnx.Linear(in_channels, head_width, rngs=rngs)
    self.head = nnx.Linear(head_width, num_outputs, rngs=rngs)

  def __call__(self, images: jax.Array, intrinsics: jax.Array, crop_boxes: jax.Array) -> jax.Array:
    """images [B, S, S, C]; intrinsics [B, 4] = full-image (fx, fy, px, py); crop_boxes [B, 4] = (x0, y0, w, h)."""
    kpe_args = (self.variant, encoding.Intrinsics.from_array(intrinsics, None, None),
                encoding.CropBox.from_array(crop_boxes), self.num_frequencies)
    x = images
    if self.injection == "early":
      x = jnp.concatenate([x, kpe_map(*kpe_args, grid_shape=x.shape[1:3]).astype(x.dtype)], axis=-1)
    for strided, same in zip(self.strided_convs, self.same_convs):
      x = jax.nn.relu(same(jax.nn.relu(strided(x))))
    if self.fusion is not None:
      x = self.fusion(x, kpe_map(*kpe_args, grid_shape=x.shape[1:3]))
    x = x.mean(axis=(1, 2))                                                               # [B, C]
    return self.head(jax.nn.relu(self.hidden(x)))
