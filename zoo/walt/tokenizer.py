"""W.A.L.T's first stage: a causal 3D CNN autoencoder (MAGVIT-v2 architecture without the quantizer).

W.A.L.T §4.1: videos x ∈ R^{(1+T)×H×W×3} map to latents z ∈ R^{(1+t)×h×w×c} with f_s = H/h = 8 and
f_t = T/t = 4; the first frame is always encoded on its own, so an image is a one-frame video and images
and videos share one latent space. Architecture after MAGVIT-v2 (../shared/papers/walt.md §3.2):
strided causal-conv downsampling with the temporal downsampling deferred to the last levels, conv +
depth-to-space upsampling, adaptive GroupNorm conditioned on the latent in the decoder.

Every convolution is a causal 3D convolution (zoo/kernels/causal_conv3d): frame t of any activation
depends only on input frames ≤ t. Hence (tests/walt/test_tokenizer.py) the latent of frame 0 equals the
latent of that frame encoded as an image, and changing future frames leaves earlier latents unchanged.

Shapes: video [B, 1+T, H, W, 3] in [-1, 1] -> latent [B, 1+T/f_t, H/f_s, W/f_s, c].
"""
from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from zoo import sharding as zsharding
from zoo.kernels.causal_conv3d import causal_conv3d, resolve_impl


@dataclasses.dataclass(frozen=True)
class TokenizerConfig:
  channels: int = 128                          # Table 8: 128.
  channel_multipliers: tuple[int, ...] = (1, 2, 2, 4)
  # One entry per downsampling step (between levels): whether it also halves time. MAGVIT-v2 defers
  # temporal downsampling to the last levels: 17 -> 17 -> 9 -> 5.
  temporal_downsample: tuple[bool, ...] = (False, True, True)
  num_res_blocks: int = 2
  latent_channels: int = 8                     # W.A.L.T default c = 8 (Table 3f).
  num_groups: int = 32
  kernel_impl: str = "auto"                    # causal conv dispatch: auto | xla | pallas
  # Rematerialise each residual block in the backward pass: activations at 17×128×128×128 dominate HBM
  # (tools/aot_compile.py: 32 GiB of temporaries per v5e chip without it at one clip per chip).
  remat: bool = False

  @property
  def spatial_factor(self) -> int:
    return 2 ** (len(self.channel_multipliers) - 1)

  @property
  def temporal_factor(self) -> int:
    return 2 ** sum(self.temporal_downsample)

  def latent_shape(self, frames: int, height: int, width: int) -> tuple[int, int, int, int]:
    if (frames - 1) % self.temporal_factor or height % self.spatial_factor or width % self.spatial_factor:
      raise ValueError(
          f"Input {frames}x{height}x{width} does not fit the tokenizer: frames must be 1 + a multiple of "
          f"{self.temporal_factor} (e.g. {1 + 4 * self.temporal_factor}) and height/width multiples of "
          f"{self.spatial_factor}.")
    return (1 + (frames - 1) // self.temporal_factor, height // self.spatial_factor,
            width // self.spatial_factor, self.latent_channels)


class CausalConv3d(nnx.Module):
  """A causal 3D convolution layer; parameters are [kt, kh, kw, Cin, Cout] with logical axes."""

  def __init__(self, in_channels: int, out_channels: int, kernel_size=(3, 3, 3), *, spatial_stride: int = 1,
               impl: str = "auto", rngs: nnx.Rngs):
    init = nnx.initializers.variance_scaling(1.0, "fan_in", "truncated_normal")
    self.kernel = nnx.Param(init(rngs.params(), (*kernel_size, in_channels, out_channels)),
                            out_sharding=(None, None, None, "conv_in", "conv_out"))
    self.bias = nnx.Param(jnp.zeros((out_channels,)), out_sharding=("conv_out",))
    self.spatial_stride = spatial_stride
    self.impl = impl

  def __call__(self, x: jax.Array) -> jax.Array:
    impl = resolve_impl(self.impl)
    return causal_conv3d(x, self.kernel[...].astype(x.dtype), self.bias[...].astype(x.dtype),
                         spatial_stride=self.spatial_stride, impl=impl, mesh=zsharding.kernel_mesh(impl))


def _run_block(block: nnx.Module, x: jax.Array, remat: bool) -> jax.Array:
  if not remat:
    return block(x)
  return nnx.remat(lambda module, inputs: module(inputs))(block, x)


def _groups(channels: int, num_groups: int) -> int:
  return math.gcd(channels, num_groups)


class ResBlock(nnx.Module):
  """GroupNorm -> swish -> causal conv, twice, with a 1×1×1 projection on the skip when widths differ.
  GroupNorm normalises over (H, W, C-group) *per frame*: statistics over time would leak future frames
  into the past and break causality."""

  def __init__(self, in_channels: int, out_channels: int, cfg: TokenizerConfig, *, rngs: nnx.Rngs):
    self.norm1 = FrameGroupNorm(in_channels, cfg.num_groups, rngs=rngs)
    self.conv1 = CausalConv3d(in_channels, out_channels, impl=cfg.kernel_impl, rngs=rngs)
    self.norm2 = FrameGroupNorm(out_channels, cfg.num_groups, rngs=rngs)
    self.conv2 = CausalConv3d(out_channels, out_channels, impl=cfg.kernel_impl, rngs=rngs)
    self.skip = (CausalConv3d(in_channels, out_channels, (1, 1, 1), impl=cfg.kernel_impl, rngs=rngs)
                 if in_channels != out_channels else None)

  def __call__(self, x: jax.Array) -> jax.Array:
    h = self.conv1(jax.nn.swish(self.norm1(x)))
    h = self.conv2(jax.nn.swish(self.norm2(h)))
    return h + (x if self.skip is None else self.skip(x))


class FrameGroupNorm(nnx.Module):
  """GroupNorm applied to each frame independently: [B, T, H, W, C] with statistics over (H, W, group)."""

  def __init__(self, channels: int, num_groups: int, *, rngs: nnx.Rngs):
    self.num_groups = _groups(channels, num_groups)
    self.scale = nnx.Param(jnp.ones((channels,)), out_sharding=("conv_out",))
    self.bias = nnx.Param(jnp.zeros((channels,)), out_sharding=("conv_out",))

  def normalize(self, x: jax.Array) -> jax.Array:
    b, t, h, w, c = x.shape
    g = x.astype(jnp.float32).reshape(b, t, h, w, self.num_groups, c // self.num_groups)
    mean = g.mean(axis=(2, 3, 5), keepdims=True)
    var = g.var(axis=(2, 3, 5), keepdims=True)
    return ((g - mean) * jax.lax.rsqrt(var + 1e-6)).reshape(x.shape)

  def __call__(self, x: jax.Array) -> jax.Array:
    return (self.normalize(x) * self.scale[...] + self.bias[...]).astype(x.dtype)


class AdaptiveGroupNorm(nnx.Module):
  """MAGVIT-v2's adaptive GroupNorm: per-position scale and shift predicted from the latent z.

  The latent is brought to the activation's grid causally: activation frame t reads latent frame
  ceil(t / f) (f = the activation's temporal factor), space by nearest upsampling.
  """

  def __init__(self, channels: int, latent_channels: int, num_groups: int, impl: str, *, rngs: nnx.Rngs):
    self.norm = FrameGroupNorm(channels, num_groups, rngs=rngs)
    zero = nnx.initializers.zeros_init()
    self.to_scale = CausalConv3d(latent_channels, channels, (1, 1, 1), impl=impl, rngs=rngs)
    self.to_shift = CausalConv3d(latent_channels, channels, (1, 1, 1), impl=impl, rngs=rngs)
    # Start as a plain GroupNorm.
    self.to_scale.kernel[...] = zero(rngs.params(), self.to_scale.kernel.shape)
    self.to_shift.kernel[...] = zero(rngs.params(), self.to_shift.kernel.shape)

  def __call__(self, x: jax.Array, z: jax.Array) -> jax.Array:
    z = resize_latent_causal(z, x.shape[1:4])
    return (self.norm(x) * (1.0 + self.to_scale(z)) + self.to_shift(z)).astype(x.dtype)


def resize_latent_causal(z: jax.Array, grid: Sequence[int]) -> jax.Array:
  """[B, t, h, w, c] -> [B, T, H, W, c]; frame i reads latent frame ceil(i / ((T-1)/(t-1)))."""
  frames, height, width = grid
  t = z.shape[1]
  if t > 1:
    factor = (frames - 1) // (t - 1)
    index = -(-jnp.arange(frames) // factor)  # ceil(i / factor)
    z = jnp.take(z, index, axis=1)
  else:
    z = jnp.repeat(z, frames, axis=1)
  z = jnp.repeat(z, height // z.shape[2], axis=2)
  return jnp.repeat(z, width // z.shape[3], axis=3)


def temporal_subsample(x: jax.Array) -> jax.Array:
  """Keeps frames 0, 2, 4, ...: after a causal conv this is a causal temporal stride of 2 (1+2k -> 1+k)."""
  return x[:, ::2]


def depth_to_space(x: jax.Array, time_factor: int, space_factor: int) -> jax.Array:
  """[B, T, H, W, C·ft·fs·fs] -> [B, T·ft, H·fs, W·fs, C]."""
  b, t, h, w, c = x.shape
  channels = c // (time_factor * space_factor**2)
  x = x.reshape(b, t, h, w, time_factor, space_factor, space_factor, channels)
  x = x.transpose(0, 1, 4, 2, 5, 3, 6, 7)
  return x.reshape(b, t * time_factor, h * space_factor, w * space_factor, channels)


def _res_blocks(in_width: int, width: int, cfg: TokenizerConfig, rngs: nnx.Rngs) -> nnx.List:
  """One resolution level: `num_res_blocks` ResBlocks, the first changing in_width -> width."""
  widths = [in_width] + [width] * cfg.num_res_blocks
  return nnx.List([ResBlock(a, b, cfg, rngs=rngs) for a, b in zip(widths[:-1], widths[1:])])


class Encoder(nnx.Module):
  def __init__(self, cfg: TokenizerConfig, *, rngs: nnx.Rngs):
    widths = [cfg.channels * m for m in cfg.channel_multipliers]
    self.conv_in = CausalConv3d(3, widths[0], impl=cfg.kernel_impl, rngs=rngs)
    blocks, downsamples = [], []
    in_width = widths[0]
    for level, width in enumerate(widths):
      blocks.append(_res_blocks(in_width, width, cfg, rngs))
      in_width = width
      if level < len(widths) - 1:
        downsamples.append(CausalConv3d(width, width, spatial_stride=2, impl=cfg.kernel_impl, rngs=rngs))
    self.blocks = nnx.List(blocks)
    self.downsamples = nnx.List(downsamples)
    self.temporal_downsample = tuple(cfg.temporal_downsample)
    self.remat = cfg.remat
    self.mid = nnx.List([ResBlock(in_width, in_width, cfg, rngs=rngs) for _ in range(2)])
    self.norm_out = FrameGroupNorm(in_width, cfg.num_groups, rngs=rngs)
    self.conv_out = CausalConv3d(in_width, cfg.latent_channels, (1, 1, 1), impl=cfg.kernel_impl, rngs=rngs)

  def __call__(self, video: jax.Array) -> jax.Array:
    x = self.conv_in(video)
    for level, level_blocks in enumerate(self.blocks):
      for block in level_blocks:
        x = _run_block(block, x, self.remat)
      if level < len(self.downsamples):
        x = self.downsamples[level](x)
        if self.temporal_downsample[level]:
          x = temporal_subsample(x)
    for block in self.mid:
      x = _run_block(block, x, self.remat)
    return self.conv_out(jax.nn.swish(self.norm_out(x)))


class Decoder(nnx.Module):
  def __init__(self, cfg: TokenizerConfig, *, rngs: nnx.Rngs):
    widths = [cfg.channels * m for m in cfg.channel_multipliers][::-1]
    temporal_up = tuple(cfg.temporal_downsample)[::-1]
    self.conv_in = CausalConv3d(cfg.latent_channels, widths[0], impl=cfg.kernel_impl, rngs=rngs)
    self.mid = nnx.List([ResBlock(widths[0], widths[0], cfg, rngs=rngs) for _ in range(2)])
    norms, blocks, upsamples = [], [], []
    in_width = widths[0]
    for level, width in enumerate(widths):
      norms.append(AdaptiveGroupNorm(in_width, cfg.latent_channels, cfg.num_groups, cfg.kernel_impl, rngs=rngs))
      blocks.append(_res_blocks(in_width, width, cfg, rngs))
      in_width = width
      if level < len(widths) - 1:
        factor_t = 2 if temporal_up[level] else 1
        upsamples.append(CausalConv3d(width, width * factor_t * 4, impl=cfg.kernel_impl, rngs=rngs))
    self.norms = nnx.List(norms)
    self.blocks = nnx.List(blocks)
    self.upsamples = nnx.List(upsamples)
    self.temporal_up = temporal_up
    self.remat = cfg.remat
    self.norm_out = FrameGroupNorm(in_width, cfg.num_groups, rngs=rngs)
    self.conv_out = CausalConv3d(in_width, 3, impl=cfg.kernel_impl, rngs=rngs)

  def __call__(self, z: jax.Array) -> jax.Array:
    x = self.conv_in(z)
    for block in self.mid:
      x = _run_block(block, x, self.remat)
    for level, level_blocks in enumerate(self.blocks):
      x = self.norms[level](x, z)
      for block in level_blocks:
        x = _run_block(block, x, self.remat)
      if level < len(self.upsamples):
        factor_t = 2 if self.temporal_up[level] else 1
        x = depth_to_space(self.upsamples[level](x), factor_t, 2)
        if factor_t == 2:
          # 1+k latent frames became 2+2k; dropping frame 1 keeps frame 0 on its own (1+2k frames).
          x = jnp.concatenate([x[:, :1], x[:, 2:]], axis=1)
    return self.conv_out(jax.nn.swish(self.norm_out(x)))


class CausalVideoTokenizer(nnx.Module):
  """Encoder + decoder; `encode(video)` / `decode(latent)` / `__call__` reconstructs."""

  def __init__(self, cfg: TokenizerConfig, *, rngs: nnx.Rngs):
    if len(cfg.temporal_downsample) != len(cfg.channel_multipliers) - 1:
      raise ValueError("temporal_downsample needs one entry per downsampling step "
                       f"({len(cfg.channel_multipliers) - 1}), got {cfg.temporal_downsample}.")
    self.config = cfg
    self.encoder = Encoder(cfg, rngs=rngs)
    self.decoder = Decoder(cfg, rngs=rngs)

  def encode(self, video: jax.Array) -> jax.Array:
    self.config.latent_shape(*video.shape[1:4])  # Clear error for shapes the factors do not divide.
    return self.encoder(video)

  def decode(self, latent: jax.Array) -> jax.Array:
    return self.decoder(latent)

  def __call__(self, video: jax.Array) -> tuple[jax.Array, jax.Array]:
    latent = self.encode(video)
    return self.decode(latent), latent
