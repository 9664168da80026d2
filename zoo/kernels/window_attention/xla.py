"""Window attention for CPU and GPU as plain XLA ops (the `impl="xla"` path).

Same math as `reference.py`, arranged for speed rather than clarity (measured on the 2-core CPU box,
see zoo/kernels/README.md):
  * the softmax scale is folded into q ([S, D] multiplies instead of [S, S]);
  * normalisation happens after the value matmul (divide [S, D] by the row sums instead of [S, S]);
  * matmuls take the input dtype and accumulate in float32 (`preferred_element_type`);
  * image examples (W.A.L.T identity mask) select v afterwards instead of masking scores.
Autodiff of these ops gives the backward pass; XLA fuses the elementwise parts.

On a GPU with 16-bit inputs `cudnn_windowed_attention` (cuDNN's fused attention, bias gradient
included) replaces it: measured on an H200 at W.A.L.T-XL head shapes (16 x 72, bf16) it took 0.5-0.9x
the time of the einsum path (zoo/kernels/README.md).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp


def windowed_attention(q, k, v, bias, is_image, *, scale: float):
  """q, k, v [G, N, S, D]; bias [N, S, S]; is_image [G] bool or None -> [G, N, S, D] in q.dtype."""
  scores = jnp.einsum("gnqd,gnkd->gnqk", q * jnp.asarray(scale, q.dtype), k,
                      preferred_element_type=jnp.float32)
  scores = scores + bias.astype(jnp.float32)
  # Subtracting the row max is what keeps exp finite; it is a constant per row, so it needs no
  # gradient (stop_gradient saves the backward pass a reduction).
  row_max = jax.lax.stop_gradient(jnp.max(scores, axis=-1, keepdims=True))
  unnormalised = jnp.exp(scores - row_max)
  row_sum = jnp.sum(unnormalised, axis=-1, keepdims=True)
  out = jnp.einsum("gnqk,gnkd->gnqd", unnormalised.astype(v.dtype), v,
                   preferred_element_type=jnp.float32) / row_sum
  out = out.astype(q.dtype)
  if is_image is not None:
    out = jnp.where(is_image[:, None, None, None], v, out)
  return out


def cudnn_windowed_attention(q, k, v, bias, is_image, *, scale: float):
  """Same contract as `windowed_attention`, through cuDNN's fused attention (GPU, 16-bit dtypes).

  The bias goes in as q.dtype (cuDNN's requirement); its gradient comes back from cuDNN's backward.
  """
  # cuDNN takes [batch, seq, heads, dim] ("BTNH"); the windows are [G, N, S, D].
  out = jax.nn.dot_product_attention(
      q.swapaxes(1, 2), k.swapaxes(1, 2), v.swapaxes(1, 2), bias=bias[None].astype(q.dtype),
      scale=scale, implementation="cudnn").swapaxes(1, 2)
  if is_image is not None:
    out = jnp.where(is_image[:, None, None, None], v, out)
  return out
