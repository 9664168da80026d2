"""Variational IB: shapes/dtypes, the KL term, training pairs, and that training lowers the loss."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from zoo.ib import systems, variational


def test_kl_to_standard_normal_closed_form():
  mean = jnp.array([[1.0, 0.0], [0.0, 0.0]])
  log_std = jnp.array([[0.0, 0.0], [jnp.log(2.0), 0.0]])
  # KL(N(1,1)||N(0,1)) = 1/2; KL(N(0,4)||N(0,1)) = (4 − 1 − log 4)/2.
  np.testing.assert_allclose(variational.gaussian_kl_to_standard_normal(mean, log_std),
                             [0.5, (4.0 - 1.0 - np.log(4.0)) / 2.0], rtol=1e-6)


@pytest.mark.parametrize("decoder", ["categorical", "gaussian"])
def test_loss_shapes_and_dtypes(decoder):
  model = variational.VariationalIB(state_dim=2, latent_dim=3, hidden=16, decoder=decoder, num_future_bins=10,
                                    rngs=nnx.Rngs(0))
  present = jnp.ones((5, 2), jnp.float32)
  future = jnp.arange(5, dtype=jnp.int32) if decoder == "categorical" else jnp.zeros((5, 2), jnp.float32)
  mean, log_std = model.encode(present)
  assert mean.shape == log_std.shape == (5, 3) and mean.dtype == jnp.float32
  loss, metrics = variational.variational_ib_loss(model, {"present": present, "future": future},
                                                  jax.random.key(0), 2.0)
  assert loss.shape == () and loss.dtype == jnp.float32
  assert set(metrics) >= {"loss", "rate_nats", "rate_bits", "distortion_nats"}
  assert float(metrics["rate_nats"]) >= 0
  # loss = distortion + rate / β
  assert float(loss) == pytest.approx(float(metrics["distortion_nats"] + metrics["rate_nats"] / 2.0), rel=1e-6)
  grads = nnx.grad(lambda m: variational.variational_ib_loss(m, {"present": present, "future": future},
                                                             jax.random.key(0), 2.0)[0])(model)
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))


def test_make_training_pairs():
  trajectories = np.array([[[-0.9], [-0.3], [0.2], [0.7], [1.2]], [[0.1], [0.2], [0.3], [0.4], [0.45]]])
  grid = systems.Grid((-1.0,), (1.0,), (4,))  # edges −1, −0.5, 0, 0.5, 1
  pairs = variational.make_training_pairs(trajectories, lag=1, grid=grid)
  assert pairs["present"].shape == pairs["future"].shape == (8, 1)
  assert pairs["present"].dtype == pairs["future"].dtype == np.float32
  np.testing.assert_allclose(pairs["present"][:4, 0], [-0.9, -0.3, 0.2, 0.7])
  np.testing.assert_allclose(pairs["future"][4:, 0], [0.2, 0.3, 0.4, 0.45])
  np.testing.assert_array_equal(pairs["future_bin"], [1, 2, 3, -1, 2, 2, 2, 2])  # 1.2 left the box: −1
  assert pairs["future_bin"].dtype == np.int32
  assert variational.make_training_pairs(trajectories, lag=3)["present"].shape == (4, 1)


def test_training_lowers_the_loss_on_four_well_pairs():
  system = systems.four_well(sigma=0.3, bins=50)
  _, stationary = systems.fokker_planck_generator(system)
  paths = variational.simulate_stationary_pairs(system, stationary, 10_000, lag_steps=297, seed=0)
  pairs = variational.make_training_pairs(paths, lag=1, grid=system.grid)
  model = variational.VariationalIB(state_dim=1, latent_dim=1, hidden=16, num_future_bins=50, input_scale=1.3,
                                    rngs=nnx.Rngs(0))
  history = variational.train(model, pairs, beta=5.0, num_steps=150, batch_size=128, learning_rate=1e-2)
  first = np.mean([h["loss"] for h in history[:20]])
  last = np.mean([h["loss"] for h in history[-20:]])
  # Uniform guessing over 50 bins is log 50 = 3.91 nats; the entropy of the future bins is lower and
  # knowing the present lowers it further.
  assert last < first - 0.5
  assert np.isfinite(last)
