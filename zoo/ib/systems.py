"""Stochastic dynamical systems and their discretised transfer operators.

Paper: "Information bottleneck for (data-driven) model reduction in stochastic dynamical systems"
(arXiv 2312.06608, IB section of /work/shared/papers/4m-kpe-ib.md, §C2). The benchmark there is overdamped
Langevin motion dx = −a ∇U(x) dt + σ dW in the four-well potential U(x; μ), whose lag-τ transition matrix
(Markov chain on bins) feeds the exact IB in `zoo/ib/exact.py`.

Two independent routes to the transition matrix, so each checks the other:

* `simulated_transition_matrix`: jitted Euler–Maruyama from starts spread uniformly over each bin,
  endpoints histogrammed, out-of-box endpoints dropped and rows normalised (the authors' recipe, §C2).
* `generator_transition_matrix`: a finite-volume (Scharfetter–Gummel) discretisation of the Fokker–Planck
  generator on the same cells, exponentiated with `scipy.linalg.expm`. Its stationary distribution is the
  cell-centre Boltzmann weight π_i ∝ exp(−2aU(x_i)/σ²) exactly (the scheme is in detailed balance with it).

`transfer_operator_spectrum` gives eigenvalues and π-orthonormal eigenfunctions; the Ornstein–Uhlenbeck
process has closed-form transitions and spectrum (eigenvalues e^{−n k τ}) and serves as the exact reference.
"""
from __future__ import annotations

import dataclasses
import functools
import math
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import scipy.linalg
import scipy.special

# The authors' four-well settings (§C2): Euler–Maruyama step, steps per transition, IB lag in transitions.
AUTHORS_DT = 0.002
AUTHORS_STEPS_PER_TRANSITION = 99
AUTHORS_IB_LAG = 3
AUTHORS_NUM_BINS = 500


# ----------------------------------------------------------------------------------------------------------
# Potentials. Each maps x [..., d] -> U [...] and is written in jnp so Euler–Maruyama can differentiate it.


def four_well_potential(x, mu: float = 3.0):
  """U(x; μ) = [((μ+1)x − μ)² − 1]² [((μ+1)x + μ)² − 1]² / (μ² − 1)⁴ (issue 8, paper §C2).

  Minima at ±1 and ±(μ−1)/(μ+1) (±0.5 for μ = 3); central barrier U(0) = 1.
  """
  x = x[..., 0]
  left = ((mu + 1.0) * x - mu) ** 2 - 1.0
  right = ((mu + 1.0) * x + mu) ** 2 - 1.0
  return left**2 * right**2 / (mu**2 - 1.0) ** 4


def double_well_potential(x, barrier: float = 1.0, tilt: float = 0.0):
  """U(x) = barrier · (x² − 1)² + tilt · x: wells near ±1, barrier ≈ `barrier` at 0; tilt > 0 deepens the
  left well (an asymmetric case, where the optimal 2-cluster p(h) is not 1/2)."""
  x = x[..., 0]
  return barrier * (x**2 - 1.0) ** 2 + tilt * x


def triple_well_2d_potential(x):
  """Two-dimensional triple well (Metzner, Schütte & Vanden-Eijnden 2006): wells near (±1, 0) and (0, 1.5)."""
  px, py = x[..., 0], x[..., 1]
  return (3.0 * jnp.exp(-px**2 - (py - 1.0 / 3.0) ** 2) - 3.0 * jnp.exp(-px**2 - (py - 5.0 / 3.0) ** 2)
          - 5.0 * jnp.exp(-(px - 1.0) ** 2 - py**2) - 5.0 * jnp.exp(-(px + 1.0) ** 2 - py**2)
          + 0.2 * px**4 + 0.2 * (py - 1.0 / 3.0) ** 4)


# ----------------------------------------------------------------------------------------------------------
# Systems and grids.


@dataclasses.dataclass(frozen=True)
class Grid:
  """A regular box of cells; states are cells, flattened in C order. `bins` is the number per axis."""
  lower: tuple[float, ...]
  upper: tuple[float, ...]
  bins: tuple[int, ...]

  @property
  def dim(self) -> int:
    return len(self.bins)

  @property
  def num_states(self) -> int:
    return int(np.prod(self.bins))

  @property
  def widths(self) -> np.ndarray:
    return (np.asarray(self.upper) - np.asarray(self.lower)) / np.asarray(self.bins)

  def axis_centers(self, axis: int) -> np.ndarray:
    return self.lower[axis] + (np.arange(self.bins[axis]) + 0.5) * self.widths[axis]

  def centers(self) -> np.ndarray:
    """Cell centres [num_states, d], C order (last axis fastest)."""
    mesh = np.meshgrid(*[self.axis_centers(a) for a in range(self.dim)], indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=-1)

  def state_index(self, x):
    """Flat cell index [N] of points x [N, d] (jnp), and a mask of points inside the box."""
    lower = jnp.asarray(self.lower, x.dtype)
    widths = jnp.asarray(self.widths, x.dtype)
    cell = jnp.floor((x - lower) / widths).astype(jnp.int32)
    inside = jnp.all((cell >= 0) & (cell < jnp.asarray(self.bins)), axis=-1)
    cell = jnp.clip(cell, 0, jnp.asarray(self.bins) - 1)
    flat = jnp.zeros(x.shape[:-1], jnp.int32)
    for axis in range(self.dim):
      flat = flat * self.bins[axis] + cell[..., axis]
    return flat, inside


@dataclasses.dataclass(frozen=True)
class LangevinSystem:
  """Overdamped Langevin dynamics dx = −drift_scale · ∇U(x) dt + noise · dW on a box.

  The stationary density is ∝ exp(−2 drift_scale U / noise²): the potential in units of the noise
  temperature is `reduced_potential`.
  """
  name: str
  potential: Callable
  drift_scale: float
  noise: float
  grid: Grid

  def drift(self, x):
    """−a ∇U(x) for x [..., d]."""
    grad = jax.grad(lambda y: jnp.sum(self.potential(y)))(x)
    return -self.drift_scale * grad

  def reduced_potential(self, x) -> np.ndarray:
    """2aU(x)/σ²: the Boltzmann exponent (dimensionless)."""
    with jax.enable_x64(True):  # float32 would cap the Boltzmann weights' precision at the barrier tops
      potential = np.asarray(self.potential(jnp.asarray(x, jnp.float64)), np.float64)
    return 2.0 * self.drift_scale * potential / self.noise**2

  def with_grid(self, bins: Sequence[int] | int) -> "LangevinSystem":
    bins = (bins,) * self.grid.dim if isinstance(bins, int) else tuple(bins)
    return dataclasses.replace(self, grid=Grid(self.grid.lower, self.grid.upper, bins))


def four_well(mu: float = 3.0, sigma: float = 0.2, bins: int = AUTHORS_NUM_BINS) -> LangevinSystem:
  """The authors' benchmark (§C2): dx = −0.1 U′(x; μ) dt + σ dW, 500 bins on [−1.3, 1.3]."""
  return LangevinSystem(f"four_well(mu={mu},sigma={sigma})", functools.partial(four_well_potential, mu=mu),
                        0.1, sigma, Grid((-1.3,), (1.3,), (bins,)))


def double_well(barrier: float = 1.0, sigma: float = 1.0, bins: int = 100, tilt: float = 0.0) -> LangevinSystem:
  """dx = −U′(x) dt + σ dW with U = barrier (x² − 1)² + tilt x on [−2, 2]."""
  return LangevinSystem(f"double_well(barrier={barrier},sigma={sigma},tilt={tilt})",
                        functools.partial(double_well_potential, barrier=barrier, tilt=tilt), 1.0, sigma,
                        Grid((-2.0,), (2.0,), (bins,)))


def triple_well_2d(sigma: float = 1.1, bins: int = 40) -> LangevinSystem:
  """dx = −∇V dt + σ dW in the 2-D triple well on [−2, 2] × [−1.5, 2.5]."""
  return LangevinSystem(f"triple_well_2d(sigma={sigma})", triple_well_2d_potential, 1.0, sigma,
                        Grid((-2.0, -1.5), (2.0, 2.5), (bins, bins)))


# ----------------------------------------------------------------------------------------------------------
# Route (a): Euler–Maruyama simulation, histogrammed.


@functools.partial(jax.jit, static_argnames=("system", "num_steps"))
def euler_maruyama(system: LangevinSystem, x0, key, num_steps: int, dt: float):
  """Endpoints [N, d] after `num_steps` Euler–Maruyama steps of size dt from x0 [N, d]."""
  noise_scale = system.noise * jnp.sqrt(dt)

  def step(i, x):
    kick = jax.random.normal(jax.random.fold_in(key, i), x.shape, x.dtype)
    return x + system.drift(x) * dt + noise_scale * kick

  return jax.lax.fori_loop(0, num_steps, step, x0)


@functools.partial(jax.jit, static_argnames=("system", "num_records", "steps_per_record"))
def simulate_trajectories(system: LangevinSystem, x0, key, num_records: int, steps_per_record: int,
                          dt: float):
  """Trajectories [N, num_records + 1, d] recorded every `steps_per_record` steps, starting at x0 [N, d]."""
  def record(x, record_key):
    x = euler_maruyama(system, x, record_key, steps_per_record, dt)
    return x, x

  _, path = jax.lax.scan(record, x0, jax.random.split(key, num_records))
  return jnp.concatenate([x0[None], path], axis=0).transpose(1, 0, 2)


def uniform_starts_in_cells(grid: Grid, starts_per_cell: int, key, cells=None):
  """Starts spread uniformly inside each cell: [num_cells * starts_per_cell, d] and their cell ids."""
  centers = jnp.asarray(grid.centers(), jnp.float32)
  cells = jnp.arange(grid.num_states) if cells is None else cells
  offsets = jax.random.uniform(key, (cells.shape[0], starts_per_cell, grid.dim), minval=-0.5, maxval=0.5)
  x0 = centers[cells][:, None, :] + offsets * jnp.asarray(grid.widths, jnp.float32)
  return x0.reshape(-1, grid.dim), jnp.repeat(cells, starts_per_cell)


def simulated_transition_matrix(system: LangevinSystem, starts_per_cell: int, num_steps: int,
                                dt: float = AUTHORS_DT, seed: int = 0,
                                max_trajectories_per_chunk: int = 1 << 19) -> np.ndarray:
  """Route (a): row-stochastic [n, n] matrix of cell-to-cell transitions after `num_steps` EM steps.

  Starts are uniform within the start cell (equivalent to the authors' uniform starts on the box, binned,
  but stratified). Endpoints that leave the box are dropped before rows are normalised (§C2).
  """
  grid = system.grid
  n = grid.num_states
  counts = np.zeros(n * n, np.float64)
  cells_per_chunk = max(1, max_trajectories_per_chunk // starts_per_cell)
  key = jax.random.key(seed)
  for chunk_start in range(0, n, cells_per_chunk):
    cells = jnp.arange(chunk_start, min(n, chunk_start + cells_per_chunk))
    key, start_key, path_key = jax.random.split(key, 3)
    x0, start_cell = uniform_starts_in_cells(grid, starts_per_cell, start_key, cells)
    x1 = euler_maruyama(system, x0, path_key, num_steps, dt)
    end_cell, inside = grid.state_index(x1)
    counts += np.asarray(_pair_counts(start_cell * n + end_cell, inside, n * n), np.float64)
  counts = counts.reshape(n, n)
  return counts / np.maximum(counts.sum(axis=1, keepdims=True), 1.0)


@functools.partial(jax.jit, static_argnames=("length",))
def _pair_counts(pair_index, weight, length: int):
  return jnp.bincount(pair_index, weights=weight.astype(jnp.float32), length=length)


# ----------------------------------------------------------------------------------------------------------
# Route (b): finite-volume Fokker–Planck generator and its matrix exponential.


def _bernoulli(z: np.ndarray) -> np.ndarray:
  """B(z) = z / (e^z − 1), the Scharfetter–Gummel weight; B(0) = 1, stable for large |z|."""
  z = np.asarray(z, np.float64)
  small = np.abs(z) < 1e-8
  safe = np.where(small, 1.0, z)
  return np.where(small, 1.0 - z / 2.0, safe / np.expm1(safe))


def fokker_planck_generator(system: LangevinSystem) -> tuple[np.ndarray, np.ndarray]:
  """Finite-volume rate matrix Q [n, n] (rows sum to 0; dp/dt = p Q) and its stationary π [n].

  Fokker–Planck: ∂p/∂t = ∇·[D (∇p + p ∇u)], D = σ²/2, u = 2aU/σ². The Scharfetter–Gummel flux between
  neighbouring cells i → j along an axis of width h gives the rate (D/h²) B(u_j − u_i), which satisfies
  detailed balance with π_i ∝ exp(−u_i), so the discrete chain is reversible like the continuum one, and
  is exact for a linear potential between neighbouring centres. Faces on the box boundary carry no flux
  (reflecting walls); the simulated route drops out-of-box endpoints instead, which agrees wherever π is
  negligible at the walls.
  """
  grid = system.grid
  u = system.reduced_potential(grid.centers())
  diffusion = system.noise**2 / 2.0
  n = grid.num_states
  rates = np.zeros((n, n))
  index = np.arange(n).reshape(grid.bins)
  for axis in range(grid.dim):
    source = np.take(index, np.arange(grid.bins[axis] - 1), axis=axis).ravel()
    target = np.take(index, np.arange(1, grid.bins[axis]), axis=axis).ravel()
    scale = diffusion / grid.widths[axis] ** 2
    rates[source, target] = scale * _bernoulli(u[target] - u[source])
    rates[target, source] = scale * _bernoulli(u[source] - u[target])
  generator = rates - np.diag(rates.sum(axis=1))
  log_weight = -(u - u.min())
  stationary = np.exp(log_weight)
  return generator, stationary / stationary.sum()


def generator_transition_matrix(system: LangevinSystem, lag_time: float) -> tuple[np.ndarray, np.ndarray]:
  """Route (b): P = expm(Q · lag_time) [n, n] (row-stochastic) and stationary π [n]."""
  generator, stationary = fokker_planck_generator(system)
  transition = scipy.linalg.expm(generator * lag_time)
  # expm of a stiff generator can leave roundoff-sized negative entries; they are not probabilities.
  transition = np.clip(transition, 0.0, None)
  return transition / transition.sum(axis=1, keepdims=True), stationary


# ----------------------------------------------------------------------------------------------------------
# Spectral analysis of a transition matrix.


def stationary_distribution(transition: np.ndarray) -> np.ndarray:
  """π with π P = π, Σ π = 1, from one linear solve (one balance equation swapped for the normalisation)."""
  n = transition.shape[0]
  system = transition.T - np.eye(n)
  system[-1, :] = 1.0
  rhs = np.zeros(n)
  rhs[-1] = 1.0
  stationary = np.clip(np.linalg.solve(system, rhs), 0.0, None)
  return stationary / stationary.sum()


@dataclasses.dataclass(frozen=True)
class Spectrum:
  """Eigenvalues [k] (descending) and right eigenfunctions [n, k], π-orthonormal: Σ π φ_i φ_j = δ_ij."""
  eigenvalues: np.ndarray
  eigenfunctions: np.ndarray
  stationary: np.ndarray


def transfer_operator_spectrum(transition: np.ndarray, stationary: np.ndarray | None = None,
                               num: int = 6) -> Spectrum:
  """Leading eigenpairs of the transfer operator f ↦ P f (the conditional expectation E[f(X_τ) | X_0]).

  A reversible P is symmetric in the π-weighted inner product, so we diagonalise the symmetrised matrix
  Π^{1/2} (P + P̃)/2 Π^{−1/2} (P̃ = time reversal; equals P for a reversible chain, and averages out the
  sampling asymmetry of a simulated one). Eigenfunction signs are fixed so that φ_k is positive at the
  right end of the state space, which makes plots and comparisons stable.
  """
  stationary = stationary_distribution(transition) if stationary is None else stationary
  sqrt_pi = np.sqrt(stationary)
  reversed_transition = (transition.T * stationary[None, :]) / np.maximum(stationary[:, None], 1e-300)
  symmetric = 0.5 * (transition + reversed_transition)
  symmetric = sqrt_pi[:, None] * symmetric / np.maximum(sqrt_pi[None, :], 1e-300)
  symmetric = 0.5 * (symmetric + symmetric.T)
  values, vectors = np.linalg.eigh(symmetric)
  order = np.argsort(values)[::-1][:num]
  values, vectors = values[order], vectors[:, order]
  with np.errstate(divide="ignore", invalid="ignore"):
    functions = np.where(sqrt_pi[:, None] > 1e-150, vectors / sqrt_pi[:, None], 0.0)
  # Where π is tiny (the walls of a steep potential) u/√π amplifies roundoff in u; there, use the
  # eigen-relation φ = P φ / λ instead, which only needs φ where P's rows put their mass.
  negligible = stationary < 1e-12 * stationary.max()
  if negligible.any():
    functions = np.where(negligible[:, None], (transition @ functions) / values[None, :], functions)
  # Fix each sign by the π-weighted mean over the right half of the states.
  right_half = np.arange(len(stationary)) >= len(stationary) // 2
  signs = np.sign(np.sum((stationary * right_half)[:, None] * functions, axis=0))
  functions = functions * np.where(signs == 0, 1.0, signs)
  return Spectrum(values, functions, stationary)


def transition_eigenvalues(transition: np.ndarray, num: int = 6) -> np.ndarray:
  """The `num` eigenvalues of P of largest real part (no symmetrisation; P need not be reversible)."""
  values = scipy.linalg.eigvals(transition)
  return np.sort(values.real)[::-1][:num]


# ----------------------------------------------------------------------------------------------------------
# Ornstein–Uhlenbeck: closed-form transitions.


@dataclasses.dataclass(frozen=True)
class OrnsteinUhlenbeck:
  """dx = −K x dt + σ dW in d dimensions with drift matrix K = R diag(rates) Rᵀ (R a rotation).

  Transitions are Gaussian: x_τ | x_0 ~ N(e^{−Kτ} x_0, Σ − e^{−Kτ} Σ e^{−Kᵀτ}), Σ solving
  KΣ + ΣKᵀ = σ² I. For symmetric K the transfer-operator eigenvalues are e^{−(n·k) τ} (Hermite modes).
  """
  rates: tuple[float, ...]
  noise: float = 1.0
  rotation_angle: float = 0.0

  @property
  def drift_matrix(self) -> np.ndarray:
    rotation = _rotation(len(self.rates), self.rotation_angle)
    return rotation @ np.diag(self.rates) @ rotation.T

  def stationary_covariance(self) -> np.ndarray:
    k = self.drift_matrix
    return scipy.linalg.solve_continuous_lyapunov(k, self.noise**2 * np.eye(len(self.rates)))

  def propagator(self, lag_time: float) -> np.ndarray:
    return scipy.linalg.expm(-self.drift_matrix * lag_time)

  def lagged_covariance(self, lag_time: float) -> np.ndarray:
    """Cov(x_0, x_τ) = Σ e^{−Kᵀτ} under the stationary law."""
    return self.stationary_covariance() @ self.propagator(lag_time).T

  def as_langevin(self, bins: int = 100, num_std: float = 5.0) -> LangevinSystem:
    """1-D OU as a Langevin system (U = k x²/2, a = 1), for the finite-volume route."""
    if len(self.rates) != 1:
      raise ValueError("as_langevin is one-dimensional")
    k = self.rates[0]
    half = num_std * self.noise / math.sqrt(2.0 * k)
    return LangevinSystem(f"ou(k={k},sigma={self.noise})", lambda x: 0.5 * k * x[..., 0] ** 2, 1.0, self.noise,
                          Grid((-half,), (half,), (bins,)))

  def transition_matrix_1d(self, grid: Grid, lag_time: float, quadrature: int = 16) -> np.ndarray:
    """Closed-form bin-to-bin P [n, n] for 1-D OU: start uniform in the cell (midpoint quadrature),
    end-cell probabilities from the Gaussian CDF; renormalised over the box like the simulated route."""
    k = self.rates[0]
    decay = math.exp(-k * lag_time)
    std = self.noise * math.sqrt((1.0 - decay**2) / (2.0 * k))
    edges = grid.lower[0] + np.arange(grid.bins[0] + 1) * grid.widths[0]
    fractions = (np.arange(quadrature) + 0.5) / quadrature - 0.5
    starts = grid.axis_centers(0)[:, None] + fractions[None, :] * grid.widths[0]  # [n, q]
    cdf = scipy.special.ndtr((edges[None, None, :] - decay * starts[..., None]) / std)  # [n, q, n+1]
    transition = np.diff(cdf, axis=-1).mean(axis=1)
    return transition / transition.sum(axis=1, keepdims=True)


def _rotation(dim: int, angle: float) -> np.ndarray:
  if dim == 1:
    return np.eye(1)
  rotation = np.eye(dim)
  c, s = math.cos(angle), math.sin(angle)
  rotation[:2, :2] = [[c, -s], [s, c]]
  return rotation
