"""Gaussian IB for Ornstein–Uhlenbeck: transitions at β = e^{2 k_i τ}, in the order of the rates."""
import numpy as np
import pytest

from zoo.ib import exact, gaussian, systems


def test_ou_gaussian_ib_transitions_in_order_of_rates():
  rates, lag_time = (2.0, 0.5, 1.0), 0.7  # deliberately not sorted
  process = systems.OrnsteinUhlenbeck(rates=rates, noise=1.3, rotation_angle=0.4)
  problem = gaussian.GaussianIB.from_ornstein_uhlenbeck(process, lag_time)
  np.testing.assert_allclose(problem.critical_betas(), np.exp(2 * np.sort(rates) * lag_time), rtol=1e-10)
  # The first direction switched on is the slowest eigenvector of the drift matrix.
  _, directions = problem.eigen()
  values, vectors = np.linalg.eigh(process.drift_matrix)
  slowest = vectors[:, np.argmin(values)]
  first = directions[0] / np.linalg.norm(directions[0])
  assert abs(first @ slowest) == pytest.approx(1.0, abs=1e-10)
  # Between consecutive critical βs exactly that many directions are active.
  critical = problem.critical_betas()
  for active, beta in enumerate([0.9 * critical[0], *(np.sqrt(critical[i] * critical[i + 1]) for i in range(2)),
                                 2 * critical[-1]]):
    assert np.count_nonzero(np.linalg.norm(problem.projection(beta), axis=1) > 0) == active


def test_gaussian_ib_projection_is_optimal():
  process = systems.OrnsteinUhlenbeck(rates=(0.5, 2.0), noise=1.0, rotation_angle=0.4)
  problem = gaussian.GaussianIB.from_ornstein_uhlenbeck(process, 0.7)
  rng = np.random.default_rng(0)
  for beta in (1.5, 5.0, 30.0):  # below, between, above the two transitions (2.01, 16.4)
    projection = problem.projection(beta)
    best = problem.lagrangian(projection, beta)
    perturbed = [problem.lagrangian(projection + 1e-2 * rng.normal(size=(2, 2)), beta) for _ in range(200)]
    assert min(perturbed) >= best - 1e-12
    rate, relevant = problem.informations_bits(projection)
    assert 0 <= relevant <= rate + 1e-12  # data processing


def test_exact_ib_on_discretised_ou_has_the_gaussian_critical_beta():
  """1-D OU on a grid: the exact discrete IB's β_c = 1/ρ² is e^{2kτ} (the OU maximal correlation e^{−kτ})."""
  rate, lag_time = 1.0, 0.5
  process = systems.OrnsteinUhlenbeck(rates=(rate,), noise=1.0)
  transition, stationary = systems.generator_transition_matrix(process.as_langevin(bins=100), lag_time)
  problem = exact.IBProblem.from_markov_chain(transition, stationary, lag=1)
  assert exact.critical_beta(problem) == pytest.approx(np.exp(2 * rate * lag_time), rel=0.005)
