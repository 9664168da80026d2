"""Gaussian information bottleneck (Chechik, Globerson, Tishby & Weiss 2005) for the Ornstein–Uhlenbeck process.

Paper §C1 (cross-check, /work/shared/papers/4m-kpe-ib.md): for jointly Gaussian present X and future Y the
optimal compression is linear, T = A X + ξ with ξ ~ N(0, I). With v_iᵀ the left eigenvectors of
Σ_{x|y} Σ_x⁻¹ (eigenvalues λ_1 ≤ λ_2 ≤ …), the i-th direction switches on at β_i = 1/(1 − λ_i) and

    A = [α_1 v_1ᵀ; α_2 v_2ᵀ; …],   α_i = √((β(1 − λ_i) − 1) / (λ_i v_iᵀ Σ_x v_i))   (0 below β_i).

For OU dx = −Kx dt + σ dW with symmetric K (rates k_i) Σ_{x|y} Σ_x⁻¹ = I − e^{−2Kτ}, so β_i = e^{2 k_i τ}:
the slowest mode is kept first, and transitions come in the order of the rates.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import scipy.linalg

from zoo.ib import systems


@dataclasses.dataclass(frozen=True)
class GaussianIB:
  """Covariances of the present X and future Y: Σ_x [d, d], Σ_xy = Cov(X, Y) [d, d], Σ_y [d, d]."""
  cov_x: np.ndarray
  cov_xy: np.ndarray
  cov_y: np.ndarray

  @classmethod
  def from_ornstein_uhlenbeck(cls, process: systems.OrnsteinUhlenbeck, lag_time: float) -> "GaussianIB":
    stationary = process.stationary_covariance()
    return cls(stationary, process.lagged_covariance(lag_time), stationary)

  @property
  def cov_x_given_y(self) -> np.ndarray:
    return self.cov_x - self.cov_xy @ np.linalg.solve(self.cov_y, self.cov_xy.T)

  def eigen(self) -> tuple[np.ndarray, np.ndarray]:
    """Ascending eigenvalues λ_i [d] and left eigenvectors v_i as rows [d, d] of Σ_{x|y} Σ_x⁻¹."""
    matrix = self.cov_x_given_y @ np.linalg.inv(self.cov_x)
    values, left = scipy.linalg.eig(matrix, left=True, right=False)
    order = np.argsort(values.real)
    return values.real[order], left[:, order].real.T

  def critical_betas(self) -> np.ndarray:
    """β_i = 1/(1 − λ_i), ascending."""
    values, _ = self.eigen()
    return 1.0 / (1.0 - values)

  def projection(self, beta: float) -> np.ndarray:
    """The optimal A(β) [d, d]; rows of directions that are not yet switched on are zero."""
    values, vectors = self.eigen()
    norms = np.einsum("id,de,ie->i", vectors, self.cov_x, vectors)
    scale_sq = (beta * (1.0 - values) - 1.0) / (values * norms)
    return np.sqrt(np.clip(scale_sq, 0.0, None))[:, None] * vectors

  def informations_bits(self, projection: np.ndarray) -> tuple[float, float]:
    """(I(T;X), I(T;Y)) in bits for T = A X + ξ, from the Gaussian entropies."""
    eye = np.eye(projection.shape[0])
    _, logdet_t = np.linalg.slogdet(projection @ self.cov_x @ projection.T + eye)
    _, logdet_t_given_y = np.linalg.slogdet(projection @ self.cov_x_given_y @ projection.T + eye)
    return 0.5 * logdet_t / np.log(2.0), 0.5 * (logdet_t - logdet_t_given_y) / np.log(2.0)

  def lagrangian(self, projection: np.ndarray, beta: float) -> float:
    rate, relevant = self.informations_bits(projection)
    return rate - beta * relevant
