"""Benchmark: jitted JAX IB iterations (`zoo.ib.exact.ib_iterations`) against a straightforward numpy
implementation of the same log-domain update, float64 both, on four-well problems of 100 and 500 states.

  python -c "from zoo.ib import benchmark; benchmark.main([])"      # wired as `tools/benchmark.py ib`

Prints per-size wall time per iteration for both, the numpy/JAX ratio, and the max |Δ log p(h|v)| between
the two results (they must agree: same algorithm, same inputs).
"""
from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from zoo.ib import exact, systems


def _logsumexp(x: np.ndarray, axis: int, keepdims: bool = False) -> np.ndarray:
  peak = np.max(x, axis=axis, keepdims=True)
  out = peak + np.log(np.sum(np.exp(x - peak), axis=axis, keepdims=True))
  return out if keepdims else np.squeeze(out, axis=axis)


def numpy_ib_update(log_encoder: np.ndarray, p_v: np.ndarray, p_e_given_v: np.ndarray, beta: float) -> np.ndarray:
  """The update of `exact.ib_update`, written directly in numpy (the benchmark's reference).

  Written the obvious way, with one fairness fix: `p_e_given_v @ X.T` with a thin transposed X hits a slow
  OpenBLAS path here (~25x slower at 500 states), so the transpose is made contiguous first.
  """
  tiny = 1e-300
  log_p_v = np.log(np.maximum(p_v, tiny))
  log_p_h = np.maximum(_logsumexp(log_encoder + log_p_v[:, None], axis=0), np.log(tiny))
  p_v_given_h = np.exp(log_encoder + log_p_v[:, None] - log_p_h[None, :])
  p_e_given_h = p_v_given_h.T @ p_e_given_v
  cross_entropy = p_e_given_v @ np.ascontiguousarray(np.log(np.maximum(p_e_given_h, tiny)).T)
  logits = log_p_h[None, :] + beta * cross_entropy
  return logits - _logsumexp(logits, axis=1, keepdims=True)


def numpy_ib_iterations(log_encoder, p_v, p_e_given_v, beta, num_iterations):
  for _ in range(num_iterations):
    log_encoder = numpy_ib_update(log_encoder, p_v, p_e_given_v, beta)
  return log_encoder


def _problem(num_states: int, sigma: float = 0.2) -> exact.IBProblem:
  system = systems.four_well(sigma=sigma, bins=num_states)
  transition, stationary = systems.generator_transition_matrix(
      system, systems.AUTHORS_STEPS_PER_TRANSITION * systems.AUTHORS_DT)
  return exact.IBProblem.from_markov_chain(transition, stationary, systems.AUTHORS_IB_LAG)


def run(num_states: int, num_clusters: int, num_iterations: int, beta: float, repeats: int) -> dict:
  problem = _problem(num_states)
  rng = np.random.default_rng(0)
  encoder = 1.0 / num_clusters + 0.01 * rng.random((num_states, num_clusters))
  log_encoder = np.log(encoder / encoder.sum(axis=1, keepdims=True))

  numpy_times = []
  for _ in range(repeats):
    start = time.perf_counter()
    numpy_result = numpy_ib_iterations(log_encoder, problem.p_v, problem.p_e_given_v, beta, num_iterations)
    numpy_times.append(time.perf_counter() - start)

  with jax.enable_x64(True):
    args = (jnp.asarray(log_encoder), jnp.asarray(problem.p_v), jnp.asarray(problem.p_e_given_v), jnp.float64(beta))
    start = time.perf_counter()
    exact.ib_iterations(*args, num_iterations).block_until_ready()  # includes compilation
    compile_and_run = time.perf_counter() - start
    jax_times = []
    for _ in range(repeats):
      start = time.perf_counter()
      jax_result = exact.ib_iterations(*args, num_iterations).block_until_ready()
      jax_times.append(time.perf_counter() - start)
    jax_result = np.asarray(jax_result)

  finite = np.isfinite(numpy_result) & np.isfinite(jax_result)
  return {
      "states": num_states, "clusters": num_clusters, "iterations": num_iterations, "beta": beta,
      "numpy_s": min(numpy_times), "jax_s": min(jax_times), "jax_first_call_s": compile_and_run,
      "ratio": min(numpy_times) / min(jax_times),
      "max_abs_diff": float(np.max(np.abs(np.exp(numpy_result[finite]) - np.exp(jax_result[finite])))),
  }


def main(argv: list[str]) -> None:
  parser = argparse.ArgumentParser(prog="benchmark ib", description=__doc__.splitlines()[0])
  parser.add_argument("--states", type=int, nargs="+", default=[100, 500])
  parser.add_argument("--clusters", type=int, default=4)
  parser.add_argument("--iterations", type=int, default=1000)
  parser.add_argument("--beta", type=float, default=20.0)
  parser.add_argument("--repeats", type=int, default=3)
  args = parser.parse_args(argv)
  print(f"device: {jax.devices()[0].platform}; {args.iterations} IB iterations, {args.clusters} clusters, "
        f"beta={args.beta}, float64, best of {args.repeats}")
  print(f"{'states':>6} {'numpy s':>9} {'jax s':>9} {'jax 1st s':>9} {'ratio':>7} {'max|Δp(h|v)|':>13}")
  for num_states in args.states:
    r = run(num_states, args.clusters, args.iterations, args.beta, args.repeats)
    print(f"{r['states']:>6} {r['numpy_s']:>9.3f} {r['jax_s']:>9.3f} {r['jax_first_call_s']:>9.3f} "
          f"{r['ratio']:>6.2f}x {r['max_abs_diff']:>13.2e}")


if __name__ == "__main__":
  import sys
  main(sys.argv[1:])
