"""A small convnet for scikit-learn's digits. Input [B, R, R, 1] in [0, 1]; output logits [B, 10]."""
from __future__ import annotations

import jax
from flax import nnx


def _conv(in_features, out_features, stride, rngs):
  # No bias: GroupNorm follows and would cancel it; its gradient would be pure round-off noise that Adam
  # then amplifies into updates (seen as sharded-vs-single-device parameter drift).
  return nnx.Conv(in_features, out_features, kernel_size=(3, 3), strides=(stride, stride), padding="SAME",
                  use_bias=False,
                  kernel_init=nnx.with_partitioning(nnx.initializers.lecun_normal(),
                                                    (None, None, "conv_in", "conv_out")),
                  rngs=rngs)


class DigitsConvNet(nnx.Module):
  """`depth` stages of (3×3 conv, GroupNorm, GELU), each after the first halving the resolution, then a
  dense embedding layer (the features) and a linear classifier. Flattening, not global pooling, keeps
  where the strokes are, which is most of what distinguishes digits."""

  def __init__(self, *, resolution: int = 16, width: int = 32, depth: int = 2, embed_dim: int = 64,
               num_classes: int = 10, rngs: nnx.Rngs):
    channels = [1] + [width * 2**i for i in range(depth)]
    self.convs = nnx.List([_conv(channels[i], channels[i + 1], 1 if i == 0 else 2, rngs)
                           for i in range(depth)])
    self.norms = nnx.List([nnx.GroupNorm(channels[i + 1], num_groups=min(8, channels[i + 1]), rngs=rngs)
                           for i in range(depth)])
    final_resolution = resolution // 2 ** (depth - 1)
    self.embed = nnx.Linear(channels[-1] * final_resolution**2, embed_dim,
                            kernel_init=nnx.with_partitioning(nnx.initializers.lecun_normal(),
                                                              (None, "embed")),
                            rngs=rngs)
    self.head = nnx.Linear(embed_dim, num_classes,
                           kernel_init=nnx.with_partitioning(nnx.initializers.zeros_init(),
                                                             ("embed", "classes")),
                           rngs=rngs)

  def stage_features(self, images: jax.Array) -> list[jax.Array]:
    """The activation map after each conv stage, [B, R / 2^i, R / 2^i, width·2^i] (W.A.L.T's perceptual
    loss compares these, zoo/walt/perceptual.py)."""
    x, stages = images, []
    for conv, norm in zip(self.convs, self.norms):
      x = jax.nn.gelu(norm(conv(x)))
      stages.append(x)
    return stages

  def features(self, images: jax.Array) -> jax.Array:
    """Embedding [B, embed_dim] of images [B, R, R, 1]: the features used for Fréchet distances."""
    x = self.stage_features(images)[-1]
    return jax.nn.gelu(self.embed(x.reshape(x.shape[0], -1)))

  def __call__(self, images: jax.Array) -> jax.Array:
    return self.head(self.features(images))
