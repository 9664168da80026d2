"""Exact (tabular) information bottleneck on a Markov chain: self-consistent iterations, annealed in β.

Paper §C1 (/work/shared/papers/4m-kpe-ib.md): compress the present V = X_t into clusters H, minimising
L = I(V;H) − β I(E;H) with E = X_{t+τ}. With p(v) = π and p(e|v) = (P^τ)[v, e] the Blahut–Arimoto-style
fixed point is

    p(h)   = Σ_v p(h|v) p(v)
    p(e|h) = Σ_v p(e|v) p(v|h)
    p(h|v) ∝ p(h) exp(−β KL[p(e|v) ‖ p(e|h)]) ∝ p(h) exp(β Σ_e p(e|v) log p(e|h)).

The authors need `np.longdouble` because exp(β ·) underflows near β ≈ 150; here every exponential is of a
normalised log-probability (log p(h|v) ≤ 0 after a log-sum-exp over h), so float64 suffices at any β.
The whole annealing schedule (warm starts, a small kick after every β) is one jitted `lax.scan`.

Critical β (§C1, derived): linearising the map around the trivial solution p(h|v) = p(h) gives
ε ↦ β 𝒫𝒫† ε on mean-zero perturbations, where 𝒫 f(v) = E[f(E) | V = v]. The largest eigenvalue of 𝒫𝒫† is
the squared maximal correlation ρ² of (V, E) (second singular value of p(v,e)/√(p(v)p(e))), so the trivial
solution is unstable for β > β_c = 1/ρ². For a reversible chain ρ = |λ1|^τ, i.e. β_c = λ1^{−2τ}.
"""
from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

LOG2 = math.log(2.0)
# Smallest probability that we take the log of: keeps 0·log 0 = 0 in the cross-entropy matmul and leaves
# an entry that is exactly zero in p(e|h) but not in p(e|v) at an effectively infinite KL.
_TINY = 1e-300


@dataclasses.dataclass(frozen=True)
class IBProblem:
  """A discrete IB problem: p(v) [V] and the channel p(e|v) [V, E] (rows sum to 1)."""
  p_v: np.ndarray
  p_e_given_v: np.ndarray

  @classmethod
  def from_markov_chain(cls, transition: np.ndarray, stationary: np.ndarray, lag: int) -> "IBProblem":
    """p(v) = π, p(e|v) = P^lag (paper §C1, `load_PV_PE`: lag = L_B + 1 transition steps)."""
    return cls(np.asarray(stationary, np.float64), np.linalg.matrix_power(np.asarray(transition, np.float64), lag))

  @property
  def p_e(self) -> np.ndarray:
    return self.p_v @ self.p_e_given_v

  def relevant_information_bits(self) -> float:
    """I(V;E): the ceiling of I(E;H)."""
    return mutual_information_bits(self.p_v, self.p_e_given_v)


def mutual_information_bits(p_x: np.ndarray, p_y_given_x: np.ndarray) -> float:
  """I(X;Y) in bits from p(x) [X] and p(y|x) [X, Y]."""
  p_x = np.asarray(p_x, np.float64)
  p_y_given_x = np.asarray(p_y_given_x, np.float64)
  p_y = p_x @ p_y_given_x
  joint = p_x[:, None] * p_y_given_x
  positive = joint > 0
  ratio = np.where(positive, p_y_given_x / np.where(p_y[None, :] > 0, p_y[None, :], 1.0), 1.0)
  return float(np.sum(np.where(positive, joint * np.log2(ratio), 0.0)))


def maximal_correlation(p_v: np.ndarray, p_e_given_v: np.ndarray) -> float:
  """Hirschfeld–Gebelein–Rényi maximal correlation ρ of (V, E): the second singular value of
  p(v,e)/√(p(v) p(e)). Valid for any joint table (reversible or not)."""
  p_e = p_v @ p_e_given_v
  support_v, support_e = p_v > 0, p_e > 0
  normalised = (np.sqrt(p_v[support_v])[:, None] * p_e_given_v[np.ix_(support_v, support_e)]
                / np.sqrt(p_e[support_e])[None, :])
  singular = np.linalg.svd(normalised, compute_uv=False)
  return float(singular[1])


def critical_beta(problem: IBProblem) -> float:
  """β_c = 1/ρ², where the trivial solution of the IB loses stability (§C1)."""
  return 1.0 / maximal_correlation(problem.p_v, problem.p_e_given_v) ** 2


# ----------------------------------------------------------------------------------------------------------
# The self-consistent iteration (JAX).


def ib_update(log_encoder, p_v, p_e_given_v, beta):
  """One self-consistent IB update of log p(h|v) [V, H] (§C1 equations, log domain)."""
  log_p_v = jnp.log(jnp.maximum(p_v, _TINY))
  log_p_h = jax.nn.logsumexp(log_encoder + log_p_v[:, None], axis=0)
  # An emptied cluster has log p(h) = −inf; clamp so that p(v|h) stays finite (it is then ~0 everywhere).
  log_p_h = jnp.maximum(log_p_h, jnp.log(_TINY))
  p_v_given_h = jnp.exp(log_encoder + log_p_v[:, None] - log_p_h[None, :])  # [V, H]
  p_e_given_h = p_v_given_h.T @ p_e_given_v  # [H, E]
  cross_entropy = p_e_given_v @ jnp.log(jnp.maximum(p_e_given_h, _TINY)).T  # [V, H]: Σ_e p(e|v) log p(e|h)
  logits = log_p_h[None, :] + beta * cross_entropy
  return logits - jax.nn.logsumexp(logits, axis=1, keepdims=True)


@functools.partial(jax.jit, static_argnames=("num_iterations",))
def ib_iterations(log_encoder, p_v, p_e_given_v, beta, num_iterations: int):
  """`num_iterations` fixed-point updates at one β (a fixed count, not a tolerance: near a transition the
  departure from the trivial solution grows by a factor βρ² per iteration, so a small per-step change does
  not mean convergence; see README §β_c)."""
  return jax.lax.fori_loop(0, num_iterations, lambda _, q: ib_update(q, p_v, p_e_given_v, beta), log_encoder)


def ib_informations_bits(log_encoder, p_v, p_e_given_v):
  """(I(V;H), I(E;H)) in bits for the encoder log p(h|v) [V, H] (jnp, exact sums over the tables)."""
  encoder = jnp.exp(log_encoder)
  p_h = p_v @ encoder
  log_p_h = jnp.log(jnp.maximum(p_h, _TINY))
  rate = jnp.sum(p_v[:, None] * encoder * (log_encoder - log_p_h[None, :]))
  joint_he = (encoder * p_v[:, None]).T @ p_e_given_v  # [H, E]
  p_e = p_v @ p_e_given_v
  ratio = jnp.log(jnp.maximum(joint_he, _TINY)) - log_p_h[:, None] - jnp.log(jnp.maximum(p_e, _TINY))[None, :]
  relevant = jnp.sum(jnp.where(joint_he > 0, joint_he * ratio, 0.0))
  return rate / LOG2, relevant / LOG2


def _kick(log_encoder, key, size):
  """p(h|v) ← normalise(p(h|v) + size · U(0, 1)): breaks the symmetry of (near-)trivial solutions."""
  encoder = jnp.exp(log_encoder) + size * jax.random.uniform(key, log_encoder.shape, log_encoder.dtype)
  return jnp.log(encoder / encoder.sum(axis=1, keepdims=True))


@functools.partial(jax.jit, static_argnames=("num_iterations",))
def _anneal(log_encoder, p_v, p_e_given_v, betas, key, kick, num_iterations: int):
  def one_beta(carry, beta_and_key):
    beta, step_key = beta_and_key
    log_q = ib_iterations(_kick(carry, step_key, kick), p_v, p_e_given_v, beta, num_iterations)
    rate, relevant = ib_informations_bits(log_q, p_v, p_e_given_v)
    return log_q, (log_q, rate, relevant)

  keys = jax.random.split(key, betas.shape[0])
  _, (encoders, rates, relevants) = jax.lax.scan(one_beta, log_encoder, (betas, keys))
  return encoders, rates, relevants


@dataclasses.dataclass(frozen=True)
class AnnealResult:
  """Per β: encoders p(h|v) [nβ, V, H], I(V;H) and I(E;H) [nβ] in bits."""
  betas: np.ndarray
  encoders: np.ndarray
  rate_bits: np.ndarray
  relevant_bits: np.ndarray

  def first_transition_beta(self, threshold_bits: float = 1e-3) -> float:
    """The first β whose solution carries more than `threshold_bits` of I(V;H) (nan if none)."""
    above = np.nonzero(self.rate_bits > threshold_bits)[0]
    return float(self.betas[above[0]]) if above.size else float("nan")


def anneal(problem: IBProblem, betas, num_clusters: int, num_iterations: int = 1000, seed: int = 0,
           init_noise: float = 0.01, kick: float = 1e-4) -> AnnealResult:
  """Anneal β through `betas` (ascending), warm-starting each β from the previous solution (§C1).

  Start: p(h|v) = normalise(1/H + init_noise · U(0,1)); after every β a `kick` of the same form.
  The authors' defaults: 1000 iterations, noise 0.01, kick 1e-4, β log-spaced on [1, 2400].
  """
  with jax.enable_x64(True):
    key = jax.random.key(seed)
    init_key, anneal_key = jax.random.split(key)
    p_v = jnp.asarray(problem.p_v, jnp.float64)
    p_e_given_v = jnp.asarray(problem.p_e_given_v, jnp.float64)
    num_states = p_v.shape[0]
    encoder = 1.0 / num_clusters + init_noise * jax.random.uniform(init_key, (num_states, num_clusters),
                                                                   jnp.float64)
    log_encoder = jnp.log(encoder / encoder.sum(axis=1, keepdims=True))
    betas = jnp.asarray(betas, jnp.float64)
    encoders, rates, relevants = _anneal(log_encoder, p_v, p_e_given_v, betas, anneal_key,
                                         jnp.asarray(kick, jnp.float64), num_iterations)
    return AnnealResult(np.asarray(betas), np.exp(np.asarray(encoders)), np.asarray(rates),
                        np.asarray(relevants))


def extrapolated_critical_beta(result: AnnealResult, num_points: int = 3, min_rate_bits: float = 1e-3) -> float:
  """β where I(V;H) extrapolates to zero from the first `num_points` solutions above the transition.

  At a continuous (pitchfork) transition the perturbation amplitude ε² grows ∝ (β − β_c), and
  I(V;H) ∝ ε², so I(V;H) is linear in β just above β_c. Fitting that line removes the critical slowing
  down that makes a fixed iteration budget leave the trivial solution late (README §β_c). Meaningless
  for a first-order (jump) transition; nan if fewer than two points are above `min_rate_bits`.
  """
  above = np.nonzero(result.rate_bits > min_rate_bits)[0][:num_points]
  if above.size < 2:
    return float("nan")
  slope, intercept = np.polyfit(result.betas[above], result.rate_bits[above], 1)
  return float(-intercept / slope)


def hard_assignment(encoder: np.ndarray) -> np.ndarray:
  """argmax_h p(h|v) [V]."""
  return np.argmax(encoder, axis=-1)


# ----------------------------------------------------------------------------------------------------------
# Analytic high-compression solution (§C1, `calc_analytic`, derived).


def analytic_high_compression_encoder(stationary: np.ndarray, slowest_eigenfunction: np.ndarray,
                                      correlation: float, beta: float, num_clusters: int = 2,
                                      num_iterations: int = 5000, seed: int = 0) -> np.ndarray:
  """Encoder [V, H] of the IB restricted to the slowest mode: p(h|v) ∝ p(h) exp(β ρ² φ1(v) φ̄_h).

  Derivation: for a reversible chain p(e|v) = π(e) Σ_k λ_k^τ φ_k(v) φ_k(e) (φ π-orthonormal), so near
  the trivial solution p(e|h) ≈ π(e)(1 + λ1^τ φ1(e) φ̄_h) with φ̄_h = E[φ1(V) | H = h]; to first order
  Σ_e p(e|v) log p(e|h) = const(v) + λ1^{2τ} φ1(v) φ̄_h. With ρ = λ1^τ the self-consistency is a fixed point
  in the H numbers φ̄_h, which loses its trivial solution at β ρ² = 1, the same β_c as the full IB.
  """
  rng = np.random.default_rng(seed)
  encoder = 1.0 / num_clusters + 0.01 * rng.random((len(stationary), num_clusters))
  encoder /= encoder.sum(axis=1, keepdims=True)
  for _ in range(num_iterations):
    p_h = stationary @ encoder
    cluster_means = (stationary[:, None] * encoder * slowest_eigenfunction[:, None]).sum(axis=0) / p_h
    logits = np.log(p_h)[None, :] + beta * correlation**2 * slowest_eigenfunction[:, None] * cluster_means[None, :]
    logits -= logits.max(axis=1, keepdims=True)
    encoder = np.exp(logits)
    encoder /= encoder.sum(axis=1, keepdims=True)
  return encoder
