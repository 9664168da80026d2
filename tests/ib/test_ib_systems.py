"""Transition matrices two ways (simulation vs Fokker–Planck generator), spectra, and OU references."""
import numpy as np
import pytest

from zoo.ib import systems


def _implied_rates(eigenvalues):
  return -np.log(eigenvalues)


@pytest.mark.parametrize(
    "system, num_steps, starts_per_cell, num_modes",
    [
        (systems.double_well(barrier=1.0, sigma=1.0, bins=60), 250, 2000, 2),
        # The authors' four-well at the authors' step counts (99 EM steps of 0.002 per transition).
        (systems.four_well(mu=3.0, sigma=0.3, bins=100), systems.AUTHORS_STEPS_PER_TRANSITION, 1000, 3),
    ],
    ids=["double_well", "four_well"])
def test_simulated_and_generator_transition_matrices_agree_1d(system, num_steps, starts_per_cell, num_modes):
  lag_time = num_steps * systems.AUTHORS_DT
  generator_matrix, stationary = systems.generator_transition_matrix(system, lag_time)
  simulated_matrix = systems.simulated_transition_matrix(system, starts_per_cell, num_steps, seed=1)
  generator_values = systems.transfer_operator_spectrum(generator_matrix, stationary).eigenvalues
  simulated_values = systems.transition_eigenvalues(simulated_matrix)
  modes = slice(1, 1 + num_modes)
  # Implied relaxation rates −log λ_k of the slow modes agree within 5 %.
  np.testing.assert_allclose(_implied_rates(simulated_values[modes]), _implied_rates(generator_values[modes]),
                             rtol=0.05)
  # Row-wise agreement of the matrices themselves, weighted by π (total variation distance).
  total_variation = 0.5 * np.abs(simulated_matrix - generator_matrix).sum(axis=1)
  assert np.sum(stationary * total_variation) < 0.1


def test_simulated_and_generator_transition_matrices_agree_2d_triple_well():
  system = systems.triple_well_2d(sigma=1.1, bins=24)
  num_steps = 50
  generator_matrix, stationary = systems.generator_transition_matrix(system, num_steps * systems.AUTHORS_DT)
  simulated_matrix = systems.simulated_transition_matrix(system, 200, num_steps, seed=1)
  generator_values = systems.transfer_operator_spectrum(generator_matrix, stationary).eigenvalues
  # The reversible (π-symmetrised) estimate: the dynamics are reversible, only sampling noise is not.
  simulated_values = systems.transfer_operator_spectrum(simulated_matrix).eigenvalues
  # Three metastable wells: two slow modes, then a gap.
  assert generator_values[2] > 0.9 > generator_values[3]
  # On a 24 x 24 grid, histogramming uniform starts lowers eigenvalues by a few 1e-3 (the bins cannot
  # represent the eigenfunctions); the generator has converged to 1e-4 here (0.99142 vs 0.99152 at 50 bins).
  np.testing.assert_allclose(simulated_values[1:4], generator_values[1:4], atol=0.008)


def test_generator_is_reversible_with_boltzmann_stationary_distribution():
  system = systems.four_well(mu=3.0, sigma=0.2, bins=100)
  generator, stationary = systems.fokker_planck_generator(system)
  np.testing.assert_allclose(generator.sum(axis=1), 0.0, atol=1e-9)
  np.testing.assert_allclose(stationary @ generator, 0.0, atol=1e-12)
  flux = stationary[:, None] * generator
  np.testing.assert_allclose(flux, flux.T, atol=1e-14)  # detailed balance
  transition, _ = systems.generator_transition_matrix(system, 0.198)
  np.testing.assert_allclose(transition.sum(axis=1), 1.0, atol=1e-12)
  np.testing.assert_allclose(stationary @ transition, stationary, atol=1e-10)
  np.testing.assert_allclose(systems.stationary_distribution(transition), stationary, atol=1e-8)


def test_four_well_spectrum_matches_the_authors_stored_matrix():
  """Notes §C2: eigenvalues of the released 500-bin σ = 0.2 matrix are 1, 0.9996, 0.9652, 0.9647, 0.763, 0.722."""
  system = systems.four_well(mu=3.0, sigma=0.2, bins=500)
  transition, stationary = systems.generator_transition_matrix(system, 99 * systems.AUTHORS_DT)
  spectrum = systems.transfer_operator_spectrum(transition, stationary)
  np.testing.assert_allclose(spectrum.eigenvalues, [1.0, 0.9996, 0.9652, 0.9647, 0.763, 0.722], atol=6e-4)
  # π-orthonormal eigenfunctions, φ0 = 1, φ1 odd (left/right pair of wells) with its sign change at 0.
  gram = spectrum.eigenfunctions.T @ (stationary[:, None] * spectrum.eigenfunctions)
  np.testing.assert_allclose(gram, np.eye(gram.shape[0]), atol=1e-8)
  np.testing.assert_allclose(np.abs(spectrum.eigenfunctions[:, 0]), 1.0, atol=1e-8)
  x = system.grid.centers()[:, 0]
  np.testing.assert_array_equal(np.sign(spectrum.eigenfunctions[:, 1]), np.sign(x))


def test_ornstein_uhlenbeck_generator_and_closed_form_match_exact_spectrum():
  rate, lag_time = 1.0, 0.5
  process = systems.OrnsteinUhlenbeck(rates=(rate,), noise=1.0)
  system = process.as_langevin(bins=100)
  generator, _ = systems.fokker_planck_generator(system)
  generator_rates = -np.sort(np.linalg.eigvals(generator).real)[::-1][1:4]
  np.testing.assert_allclose(generator_rates, rate * np.arange(1, 4), rtol=0.01)  # Hermite modes: n·k

  closed_form = process.transition_matrix_1d(system.grid, lag_time)
  exact = np.exp(-rate * lag_time * np.arange(4))
  np.testing.assert_allclose(systems.transition_eigenvalues(closed_form, 4), exact, atol=3e-3)
  generator_matrix, stationary = systems.generator_transition_matrix(system, lag_time)
  total_variation = 0.5 * np.abs(generator_matrix - closed_form).sum(axis=1)
  assert np.sum(stationary * total_variation) < 0.02


def test_ornstein_uhlenbeck_lagged_covariance_matches_simulation():
  process = systems.OrnsteinUhlenbeck(rates=(0.5, 2.0), noise=1.0, rotation_angle=0.4)
  k = process.drift_matrix
  covariance = process.stationary_covariance()
  np.testing.assert_allclose(k @ covariance + covariance @ k.T, np.eye(2), atol=1e-12)
  rng = np.random.default_rng(0)
  x0 = rng.multivariate_normal(np.zeros(2), covariance, size=200_000)
  lag_time = 0.7
  propagator = process.propagator(lag_time)
  noise_cov = covariance - propagator @ covariance @ propagator.T
  x1 = x0 @ propagator.T + rng.multivariate_normal(np.zeros(2), noise_cov, size=x0.shape[0])
  np.testing.assert_allclose(x0.T @ x1 / x0.shape[0], process.lagged_covariance(lag_time), atol=0.01)


def test_euler_maruyama_trajectories_reproduce_ou_autocovariance():
  import jax
  import jax.numpy as jnp

  rate, noise, lag_time = 1.0, 1.0, 0.5
  system = systems.OrnsteinUhlenbeck(rates=(rate,), noise=noise).as_langevin(bins=50)
  variance = noise**2 / (2 * rate)
  x0 = jnp.sqrt(variance) * jax.random.normal(jax.random.key(0), (20_000, 1))
  paths = np.asarray(systems.simulate_trajectories(system, x0, jax.random.key(1), num_records=2,
                                                   steps_per_record=250, dt=lag_time / 250))
  assert paths.shape == (20_000, 3, 1)
  np.testing.assert_array_equal(paths[:, 0], np.asarray(x0))
  # Stationary: Var = σ²/2k at every record; Cov(x_0, x_τ) = Var e^{−kτ}, Cov(x_0, x_2τ) = Var e^{−2kτ}.
  np.testing.assert_allclose(paths[:, :, 0].var(axis=0), variance, rtol=0.05)
  np.testing.assert_allclose(np.mean(paths[:, 0, 0] * paths[:, 1, 0]), variance * np.exp(-rate * lag_time), atol=0.015)
  np.testing.assert_allclose(np.mean(paths[:, 0, 0] * paths[:, 2, 0]), variance * np.exp(-2 * rate * lag_time), atol=0.015)
