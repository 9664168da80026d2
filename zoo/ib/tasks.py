"""Task `ib.variational`: the neural (variational) IB trained with the zoo's common loop.

Data: (present, future-bin) pairs of the four-well Langevin system at the IB lag, drawn from stationary
starts (variational.simulate_stationary_pairs) with the stationary law of the Fokker–Planck generator.
Evaluator: |corr(μ(x), φ₁(x))| under π between the encoder mean and the slowest non-trivial transfer-
operator eigenfunction (issue claim: > 0.95 at high compression), plus the rate in bits.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from data_pipelines import grain_pipeline
from zoo.ib import systems, variational
from zoo.training.task import DataShard, Task, register


def _system(config) -> systems.LangevinSystem:
  return systems.four_well(mu=config.system.mu, sigma=config.system.sigma, bins=config.system.bins)


@functools.lru_cache(maxsize=4)
def _problem(mu: float, sigma: float, bins: int, lag_transitions: int):
  """(system, lag time, stationary π, slowest eigenfunction φ₁ on the grid), cached per setting."""
  system = systems.four_well(mu=mu, sigma=sigma, bins=bins)
  lag_time = lag_transitions * systems.AUTHORS_STEPS_PER_TRANSITION * systems.AUTHORS_DT
  transition, stationary = systems.generator_transition_matrix(system, lag_time)
  spectrum = systems.transfer_operator_spectrum(transition, stationary, num=2)
  return system, stationary, spectrum.eigenfunctions[:, 1]


def _problem_for(config):
  s = config.system
  return _problem(float(s.mu), float(s.sigma), int(s.bins), int(s.lag_transitions))


@functools.lru_cache(maxsize=4)
def _pairs(mu, sigma, bins, lag_transitions, num_pairs, seed):
  system, stationary, _ = _problem(mu, sigma, bins, lag_transitions)
  lag_steps = lag_transitions * systems.AUTHORS_STEPS_PER_TRANSITION
  paths = variational.simulate_stationary_pairs(system, stationary, num_pairs, lag_steps, seed=seed)
  pairs = variational.make_training_pairs(paths, lag=1, grid=system.grid)
  keep = pairs["future_bin"] >= 0
  return pairs["present"][keep], pairs["future_bin"][keep]


def build_model(config, rngs: nnx.Rngs) -> variational.VariationalIB:
  m = config.model
  return variational.VariationalIB(state_dim=1, latent_dim=m.latent_dim, hidden=m.hidden,
                                   num_layers=m.num_layers, decoder="categorical",
                                   num_future_bins=config.system.bins, input_shift=0.0, input_scale=1.3,
                                   rngs=rngs)


def loss_fn(model, batch, rng, step):
  del step
  return variational.variational_ib_loss(model, {"present": batch["present"], "future": batch["future"]},
                                         rng, model.beta)


def _build(config, rngs):
  model = build_model(config, rngs)
  model.beta = float(config.beta)  # A static attribute: the trade-off β of this experiment.
  return model


def train_data(config, shard: DataShard):
  s = config.system
  present, future = _pairs(float(s.mu), float(s.sigma), int(s.bins), int(s.lag_transitions),
                           int(config.data.num_pairs), int(config.seed))
  records = [{"present": present[i], "future": np.int32(future[i])} for i in range(len(present))]
  return grain_pipeline.make_loader(records, global_batch_size=config.batch_size, shard=shard,
                                    seed=config.seed)


def abstract_batch(config):
  return {"present": jax.ShapeDtypeStruct((config.batch_size, 1), jnp.float32),
          "future": jax.ShapeDtypeStruct((config.batch_size,), jnp.int32)}


class EigenfunctionEvaluator:
  """π-weighted |correlation| of the encoder mean with the slowest eigenfunction, on the grid centres."""

  def __init__(self, config):
    system, stationary, slowest = _problem_for(config)
    self.centres = np.asarray(system.grid.centers(), np.float32).reshape(-1, 1)
    self.stationary = stationary
    self.slowest = slowest

  def __call__(self, model, mesh):
    del mesh
    graphdef, state = nnx.split(model)
    mean, _ = jax.jit(lambda s, x: nnx.merge(graphdef, s).encode(x))(state, jnp.asarray(self.centres))
    mu = np.asarray(mean, np.float64)[:, 0]
    w = self.stationary
    a = mu - np.sum(w * mu)
    b = self.slowest - np.sum(w * self.slowest)
    corr = np.sum(w * a * b) / np.sqrt(np.sum(w * a * a) * np.sum(w * b * b) + 1e-300)
    return {"abs_corr_slowest_eigenfunction": float(abs(corr))}


def evaluators(config):
  return {"eigenfunction": EigenfunctionEvaluator(config)} if "eigenfunction" in config.evals else {}


TASK = register(Task(name="ib.variational", build_model=_build, loss_fn=loss_fn, train_data=train_data,
                     abstract_batch=abstract_batch, evaluators=evaluators))
