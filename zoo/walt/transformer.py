"""W.A.L.T's diffusion transformer: alternating spatial / spatiotemporal window attention (§4.2–4.4).

Input: a noisy latent z_t [B, t, h, w, c] (t = 1 + T/4 latent frames; an image is t = 1, and a batch may
hold stacks of t independent images, flagged by `is_image` [B]). Channel-wise conditions (§4.3, §4.4):
the self-conditioning estimate x̂0 [B, t, h, w, c] and the frame-prediction condition concat(m ∘ z0, m)
[B, t, h, w, c + 1]; each is present when its switch is on, zeros when unused.

Per layer (Fig. 2, Table 8): LayerNorm → AdaLN modulate → window self-attention (qk-norm, learned
relative position bias per window offset and head) → gate → residual; LayerNorm → modulate → MLP → gate
→ residual. Even layers use spatial windows 1×h×w (one latent frame), odd layers spatiotemporal windows
(default 5×8×8); in spatiotemporal layers image stacks get the identity mask, so their frames never mix.
AdaLN (§4.3): the condition is c + t (class embedding + timestep embedding). "separate": A_i = Linear_i
(SiLU(c+t)) per layer (DiT); "lora": A_1 = MLP(c+t), A_i = A_1 + W_b^i W_a^i (c+t) with rank r (Eq. 3).
Modulation outputs start at zero (adaLN-Zero), so every block starts as the identity.
"""
from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
from flax import nnx

from zoo import sharding as zsharding
from zoo.kernels.window_attention import resolve_impl, window_attention


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
  latent_channels: int = 8
  latent_frames: int = 5
  latent_size: int = 16                     # h = w of the latent grid.
  patch_size: int = 1                       # Table 3a: p = 1 is best (FVD 60.7 vs 134.4 at p = 2).
  width: int = 1152
  depth: int = 28                           # Single layers; even = spatial, odd = spatiotemporal.
  num_heads: int = 16
  mlp_ratio: float = 4.0
  spatiotemporal_window: tuple[int, int, int] = (5, 8, 8)
  num_classes: int = 101                    # Class index `num_classes` is the null class (CFG).
  adaln: str = "lora"                       # "lora" | "separate"
  adaln_lora_rank: int = 2
  qk_norm: bool = True
  self_condition: bool = True
  frame_prediction: bool = True
  full_attention: bool = False              # Ablation: every layer attends over the whole t×h×w grid.
  attention_impl: str = "auto"              # window attention dispatch: auto | xla | pallas | cudnn
  dtype: str = "float32"                    # activation dtype (bfloat16 on TPU)

  @property
  def grid(self) -> tuple[int, int, int]:
    return (self.latent_frames, self.latent_size // self.patch_size, self.latent_size // self.patch_size)

  @property
  def input_channels(self) -> int:
    c = self.latent_channels
    return c + (c if self.self_condition else 0) + (c + 1 if self.frame_prediction else 0)

  def window(self, layer: int) -> tuple[int, int, int]:
    t, h, w = self.grid
    if self.full_attention:
      return (t, h, w)
    if layer % 2 == 0:
      return (1, h, w)
    wt, wh, ww = self.spatiotemporal_window
    return (min(wt, t), min(wh, h), min(ww, w))


def _dense(in_features, out_features, axes, rngs, zero=False, dtype=None):
  """Linear layer with float32 parameters; `dtype` is its computation dtype (None: promote, i.e. float32
  with float32 parameters). Layers on the token path take the config's activation dtype, so a bfloat16
  model really runs bfloat16 matmuls; the per-example conditioning MLPs stay float32."""
  init = nnx.initializers.zeros_init() if zero else nnx.initializers.xavier_uniform()
  return nnx.Linear(in_features, out_features, kernel_init=nnx.with_partitioning(init, axes),
                    bias_init=nnx.with_partitioning(nnx.initializers.zeros_init(), (axes[1],)),
                    dtype=dtype, rngs=rngs)


def timestep_embedding(t: jax.Array, dim: int, max_period: float = 10_000.0) -> jax.Array:
  """Sinusoidal embedding of integer steps [B] -> [B, dim] (DiT / ADM)."""
  half = dim // 2
  freqs = jnp.exp(-math.log(max_period) * jnp.arange(half, dtype=jnp.float32) / half)
  angles = t.astype(jnp.float32)[:, None] * freqs[None]
  return jnp.concatenate([jnp.cos(angles), jnp.sin(angles)], axis=-1)


class RMSNormPerHead(nnx.Module):
  """qk-norm (Dehghani et al. 2023): RMS-normalise each head's query/key vector with a learned scale."""

  def __init__(self, head_dim: int, *, rngs: nnx.Rngs):
    del rngs
    self.scale = nnx.Param(jnp.ones((head_dim,)), out_sharding=("kv",))

  def __call__(self, x):
    x32 = x.astype(jnp.float32)
    normed = x32 * jax.lax.rsqrt(jnp.mean(jnp.square(x32), axis=-1, keepdims=True) + 1e-6)
    return (normed * self.scale[...]).astype(x.dtype)


class WindowSelfAttention(nnx.Module):
  def __init__(self, cfg: TransformerConfig, window: tuple[int, int, int], *, rngs: nnx.Rngs):
    d, n = cfg.width, cfg.num_heads
    self.head_dim = d // n
    self.window = window
    self.impl = cfg.attention_impl
    init = nnx.initializers.xavier_uniform()
    self.qkv = nnx.Param(init(rngs.params(), (d, 3 * d)).reshape(d, 3, n, self.head_dim),
                         out_sharding=("embed", None, "heads", "kv"))
    self.out = nnx.Param(init(rngs.params(), (d, d)).reshape(n, self.head_dim, d),
                         out_sharding=("heads", "kv", "embed"))
    self.out_bias = nnx.Param(jnp.zeros((d,)), out_sharding=("embed",))
    wt, wh, ww = window
    # Swin-style table: one learned bias per relative offset and head (§4.2, "relative position").
    self.relative_bias = nnx.Param(jnp.zeros((n, (2 * wt - 1) * (2 * wh - 1) * (2 * ww - 1))),
                                   out_sharding=("heads", None))
    self.q_norm = RMSNormPerHead(self.head_dim, rngs=rngs) if cfg.qk_norm else None
    self.k_norm = RMSNormPerHead(self.head_dim, rngs=rngs) if cfg.qk_norm else None

  def __call__(self, x: jax.Array, is_image: jax.Array | None) -> jax.Array:
    """x [B, T, H, W, D] -> [B, T, H, W, D]."""
    # Dense projections on flattened tokens [B·T·H·W, D]: XLA:CPU runs the weight gradient of a 5-D einsum
    # through transposes (zoo/walt/benchmark.py measured fwd+bwd 15% faster flattened); same math on TPU.
    d = x.shape[-1]
    qkv = (x.reshape(-1, d) @ self.qkv[...].astype(x.dtype).reshape(d, -1)).reshape(
        *x.shape[:-1], 3, *self.qkv.shape[2:])
    q, k, v = qkv[..., 0, :, :], qkv[..., 1, :, :], qkv[..., 2, :, :]
    if self.q_norm is not None:
      q, k = self.q_norm(q), self.k_norm(k)
    # The identity mask matters only where frames would mix: spatiotemporal windows (wt > 1).
    image_flags = is_image if self.window[0] > 1 else None
    impl = resolve_impl(self.impl, q.dtype, self.head_dim)
    o = window_attention(q, k, v, self.relative_bias[...], window=self.window, is_image=image_flags,
                         impl=impl, mesh=zsharding.kernel_mesh(impl))
    flat = o.reshape(-1, o.shape[-2] * o.shape[-1]) @ self.out[...].astype(x.dtype).reshape(-1, d)
    return flat.reshape(x.shape) + self.out_bias[...].astype(x.dtype)


def _dense_tokens(layer: nnx.Linear, x: jax.Array) -> jax.Array:
  """`layer` on the flattened tokens of x [..., C] -> [..., C'] (see WindowSelfAttention: on a 5-D input
  XLA:CPU fed the weight gradient a transposed copy of the output gradient, into which it fused the whole
  residual stream's backward pass)."""
  return layer(x.reshape(-1, x.shape[-1])).reshape(*x.shape[:-1], -1)


class Mlp(nnx.Module):
  def __init__(self, width: int, hidden: int, *, rngs: nnx.Rngs, dtype=None):
    self.fc1 = _dense(width, hidden, ("embed", "mlp"), rngs, dtype=dtype)
    self.fc2 = _dense(hidden, width, ("mlp", "embed"), rngs, dtype=dtype)

  def __call__(self, x):
    flat = x.reshape(-1, x.shape[-1])  # See WindowSelfAttention: 2-D matmuls differentiate faster on CPU.
    return self.fc2(jax.nn.gelu(self.fc1(flat), approximate=True)).reshape(x.shape)


def _layer_norm(x):
  x32 = x.astype(jnp.float32)
  mean = x32.mean(-1, keepdims=True)
  var = jnp.mean(jnp.square(x32 - mean), -1, keepdims=True)
  return ((x32 - mean) * jax.lax.rsqrt(var + 1e-6)).astype(x.dtype)


def _modulate(x, shift, scale):
  return x * (1 + scale[:, None, None, None]) + shift[:, None, None, None]


class TransformerLayer(nnx.Module):
  def __init__(self, cfg: TransformerConfig, layer: int, *, rngs: nnx.Rngs):
    self.attention = WindowSelfAttention(cfg, cfg.window(layer), rngs=rngs)
    self.mlp = Mlp(cfg.width, int(cfg.width * cfg.mlp_ratio), rngs=rngs, dtype=jnp.dtype(cfg.dtype))

  def __call__(self, x, modulation, is_image):
    """modulation [B, 6, D] = (shift_attn, scale_attn, gate_attn, shift_mlp, scale_mlp, gate_mlp)."""
    m = modulation.astype(x.dtype)
    h = self.attention(_modulate(_layer_norm(x), m[:, 0], m[:, 1]), is_image)
    x = x + m[:, 2][:, None, None, None] * h
    h = self.mlp(_modulate(_layer_norm(x), m[:, 3], m[:, 4]))
    return x + m[:, 5][:, None, None, None] * h


class AdaLNModulation(nnx.Module):
  """Produces the per-layer modulation A_i ∈ R^{6d} from the condition c + t (§4.3, Eq. 3)."""

  def __init__(self, cfg: TransformerConfig, *, rngs: nnx.Rngs):
    d = cfg.width
    self.kind = cfg.adaln
    self.depth = cfg.depth
    if cfg.adaln == "separate":
      self.per_layer = nnx.List([_dense(d, 6 * d, ("embed", "mlp"), rngs, zero=True) for _ in range(cfg.depth)])
    elif cfg.adaln == "lora":
      self.shared_hidden = _dense(d, d, ("embed", "mlp"), rngs)
      self.shared_out = _dense(d, 6 * d, ("mlp", "embed"), rngs, zero=True)
      r = cfg.adaln_lora_rank
      init = nnx.initializers.xavier_uniform()
      self.lora_a = nnx.Param(jnp.stack([init(rngs.params(), (d, r)) for _ in range(cfg.depth)]),
                              out_sharding=(None, "embed", None))
      self.lora_b = nnx.Param(jnp.zeros((cfg.depth, r, 6 * d)), out_sharding=(None, None, "mlp"))
    else:
      raise ValueError(f"Unknown adaln {cfg.adaln!r}; use 'lora' or 'separate'.")

  def __call__(self, condition: jax.Array) -> jax.Array:
    """condition [B, D] -> [depth, B, 6, D]."""
    b, d = condition.shape
    c = jax.nn.silu(condition)
    if self.kind == "separate":
      out = jnp.stack([layer(c) for layer in self.per_layer])
    else:
      shared = self.shared_out(jax.nn.silu(self.shared_hidden(c)))            # A_1 = MLP(c + t)
      low_rank = jnp.einsum("bd,ldr,lre->lbe", condition, self.lora_a[...], self.lora_b[...])
      out = shared[None] + low_rank.at[0].set(0.0)                          # A_1 has no LoRA term.
    return out.reshape(self.depth, b, 6, d)


class WaltTransformer(nnx.Module):
  """Denoiser f(z_t; x̂0, c_fp, class, t) -> prediction [B, t, h, w, c] (v by default)."""

  def __init__(self, cfg: TransformerConfig, *, rngs: nnx.Rngs):
    self.config = cfg
    d, p = cfg.width, cfg.patch_size
    t, h, w = cfg.grid
    activations = jnp.dtype(cfg.dtype)
    self.patch_embed = _dense(p * p * cfg.input_channels, d, (None, "embed"), rngs, dtype=activations)
    normal = nnx.initializers.normal(0.02)
    self.spatial_position = nnx.Param(normal(rngs.params(), (h, w, d)), out_sharding=(None, None, "embed"))
    self.temporal_position = nnx.Param(normal(rngs.params(), (t, d)), out_sharding=(None, "embed"))
    # The condition c + t is a sum, so the class table starts at the scale of the timestep MLP's output
    # (N(0, 1) rows, as ADM's nn.Embedding): Adam moves a table entry by at most ~lr per step, while the
    # timestep path grows multiplicatively through two layers. From DiT's N(0, 0.02) the class term stayed
    # ~50x smaller than the time term through a 1500-step demo run, whose samples then ignored their class.
    self.class_embed = nnx.Embed(cfg.num_classes + 1, d, embedding_init=nnx.with_partitioning(
        nnx.initializers.normal(1.0), ("classes", "embed")), rngs=rngs)
    self.time_hidden = _dense(256, d, (None, "embed"), rngs)
    self.time_out = _dense(d, d, ("embed", "mlp"), rngs)
    self.modulation = AdaLNModulation(cfg, rngs=rngs)
    self.layers = nnx.List([TransformerLayer(cfg, i, rngs=rngs) for i in range(cfg.depth)])
    self.final_modulation = _dense(d, 2 * d, ("embed", "mlp"), rngs, zero=True)
    self.final = _dense(d, p * p * cfg.latent_channels, ("embed", None), rngs, zero=True,
                        dtype=activations)

  def timestep_term(self, timesteps: jax.Array) -> jax.Array:
    """t of the AdaLN condition c + t (§4.3): sinusoidal embedding -> MLP, [B] -> [B, D]."""
    return self.time_out(jax.nn.silu(self.time_hidden(timestep_embedding(timesteps, 256))))

  def _patchify(self, x):
    b, t, h, w, c = x.shape
    p = self.config.patch_size
    x = x.reshape(b, t, h // p, p, w // p, p, c).transpose(0, 1, 2, 4, 3, 5, 6)
    return x.reshape(b, t, h // p, w // p, p * p * c)

  def _unpatchify(self, x):
    b, t, hp, wp, _ = x.shape
    p, c = self.config.patch_size, self.config.latent_channels
    x = x.reshape(b, t, hp, wp, p, p, c).transpose(0, 1, 2, 4, 3, 5, 6)
    return x.reshape(b, t, hp * p, wp * p, c)

  def __call__(self, z_t: jax.Array, timesteps: jax.Array, labels: jax.Array, *,
               self_condition: jax.Array | None = None, frame_condition: jax.Array | None = None,
               is_image: jax.Array | None = None) -> jax.Array:
    cfg = self.config
    b, t, h, w, c = z_t.shape
    if (t, h // cfg.patch_size, w // cfg.patch_size) != cfg.grid or c != cfg.latent_channels:
      raise ValueError(
          f"Latent {tuple(z_t.shape[1:])} does not match the model's ({cfg.latent_frames}, {cfg.latent_size}, "
          f"{cfg.latent_size}, {cfg.latent_channels}). Images train as stacks of {cfg.latent_frames} "
          "independent frames with is_image=True (§4.1); an image-only model sets latent_frames=1.")
    dtype = jnp.dtype(cfg.dtype)
    inputs = [z_t]
    if cfg.self_condition:
      inputs.append(jnp.zeros_like(z_t) if self_condition is None else self_condition)
    if cfg.frame_prediction:
      inputs.append(jnp.zeros(z_t.shape[:-1] + (c + 1,), z_t.dtype) if frame_condition is None
                    else frame_condition)
    patches = self._patchify(jnp.concatenate(inputs, axis=-1).astype(dtype))
    x = _dense_tokens(self.patch_embed, patches)
    # Absolute position = spatial + temporal (§4.2); images use the temporal embedding of frame 0.
    temporal = self.temporal_position[...][:t]
    if is_image is not None:
      temporal = jnp.where(is_image[:, None, None], self.temporal_position[...][:1][None], temporal[None])
      x = x + temporal[:, :, None, None].astype(dtype)
    else:
      x = x + temporal[None, :, None, None].astype(dtype)
    x = x + self.spatial_position[...][None, None].astype(dtype)

    condition = self.class_embed(labels) + self.timestep_term(timesteps)
    modulation = self.modulation(condition)
    for i, layer in enumerate(self.layers):
      x = layer(x, modulation[i], is_image)
    shift, scale = jnp.split(self.final_modulation(jax.nn.silu(condition)), 2, axis=-1)
    x = _dense_tokens(self.final, _modulate(_layer_norm(x), shift.astype(dtype), scale.astype(dtype)))
    return self._unpatchify(x.astype(jnp.float32))
