"""The causal tokenizer: shapes, image == first frame of a video, future frames never change the past."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from zoo.nnx_utils import jit_init
from zoo.walt.tokenizer import CausalVideoTokenizer, TokenizerConfig, depth_to_space

TINY = TokenizerConfig(channels=8, channel_multipliers=(1, 2, 2, 2), temporal_downsample=(False, True, True),
                       num_res_blocks=1, latent_channels=4, num_groups=4, kernel_impl="xla")


@pytest.fixture(scope="module")
def tokenizer():
  return jit_init(lambda: CausalVideoTokenizer(TINY, rngs=nnx.Rngs(0)))


@pytest.fixture(scope="module")
def encode(tokenizer):
  graphdef, state = nnx.split(tokenizer)
  return jax.jit(lambda video: nnx.merge(graphdef, state).encode(video))


@pytest.fixture(scope="module")
def decode(tokenizer):
  graphdef, state = nnx.split(tokenizer)
  return jax.jit(lambda latent: nnx.merge(graphdef, state).decode(latent))


def _video(key, frames=9, size=16):
  return jax.random.uniform(jax.random.key(key), (2, frames, size, size, 3), minval=-1, maxval=1)


def test_shapes_match_the_paper_factors(encode, decode):
  video = _video(0)
  latent = encode(video)
  reconstruction = decode(latent)
  assert TINY.latent_shape(9, 16, 16) == (3, 2, 2, 4)  # 1 + 8/4 latent frames, 16/8 pixels.
  assert latent.shape == (2, 3, 2, 2, 4) and reconstruction.shape == video.shape
  assert reconstruction.dtype == jnp.float32
  # Paper config: 17×128×128 -> 5×16×16×8.
  assert TokenizerConfig().latent_shape(17, 128, 128) == (5, 16, 16, 8)


def test_image_latent_equals_first_frame_latent(encode):
  video = _video(1)
  video_latent = encode(video)
  image_latent = encode(video[:, :1])
  assert image_latent.shape == (2, 1, 2, 2, 4)
  np.testing.assert_allclose(image_latent[:, 0], video_latent[:, 0], atol=1e-5)


def test_future_frames_do_not_change_earlier_latents(encode):
  video = _video(2)
  changed = video.at[:, 5:].set(_video(3)[:, 5:])  # Pixel frames 5..8 belong to latent frame 2 only.
  a, b = encode(video), encode(changed)
  np.testing.assert_allclose(a[:, :2], b[:, :2], atol=1e-5)
  assert float(jnp.abs(a[:, 2] - b[:, 2]).max()) > 1e-4


def test_decoder_is_causal_too(decode):
  z = jax.random.normal(jax.random.key(4), (2, 3, 2, 2, 4))
  a, b = decode(z), decode(z.at[:, 2].add(1.0))
  np.testing.assert_allclose(a[:, :5], b[:, :5], atol=1e-5)  # Frames 0..4 read latents 0..1 only.


def test_bad_shapes_are_clear(tokenizer):
  with pytest.raises(ValueError, match="frames must be 1 \\+ a multiple of 4"):
    tokenizer.encode(jnp.zeros((1, 8, 16, 16, 3)))


def test_depth_to_space_inverts_a_reshape():
  x = jnp.arange(1 * 2 * 3 * 3 * 16, dtype=jnp.float32).reshape(1, 2, 3, 3, 16)
  y = depth_to_space(x, 2, 2)
  assert y.shape == (1, 4, 6, 6, 2)
  np.testing.assert_array_equal(y[0, 1, 2, 3], x[0, 0, 1, 1, (1 * 4 + 0 * 2 + 1) * 2:(1 * 4 + 0 * 2 + 1) * 2 + 2])
