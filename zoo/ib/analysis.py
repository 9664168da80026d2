"""Experiments for the IB model-reduction paper: figures (PNG) and a JSON of every number in zoo/ib/README.md.

  python -m zoo.ib.analysis --out /tmp/ib_figures            # the authors' sizes (500 bins), ~10 min on 2 cores
  python -m zoo.ib.analysis --out /tmp/ib_quick --quick      # 100 bins, fewer iterations, ~2 min

Figures: information_curve.png (I(E;H) vs I(V;H), exact IB for 2–6 clusters and the variational IB),
encoders.png (p(h|x) over the four-well potential), when_to_stop.png (I(E;H) vs number of clusters for
σ = 0.1 … 0.4, annotated with the β of each point), critical_beta.png (I(V;H) near β_c = 1/ρ²),
spectra.png (simulated vs generator eigenvalues), variational_latent.png (VIB latent vs φ1),
gaussian_ou.png (Gaussian IB of a 2-D OU process). Numbers go to results.json.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time

import numpy as np

from zoo.ib import exact, gaussian, systems, variational


@dataclasses.dataclass(frozen=True)
class Settings:
  bins: int = systems.AUTHORS_NUM_BINS
  # "When to stop" runs every cluster count from several seeds (the annealing can lock clusters into a
  # poor allocation, README §local optima); 250 bins keep that affordable on 2 CPU cores.
  stop_bins: int = 250
  num_seeds: int = 3
  num_betas: int = 50  # log-spaced on [1, 2400] (authors)
  max_beta: float = 2400.0
  num_iterations: int = 1000  # per β (authors)
  max_clusters: int = 6
  sigmas: tuple = (0.1, 0.2, 0.3, 0.4)
  starts_per_cell: int = 2000  # simulated route
  vib_steps: int = 3000
  vib_pairs: int = 200_000
  vib_betas: tuple = (1.02, 1.1, 1.25, 1.4, 1.6, 2.5, 5.0, 20.0)

  @classmethod
  def quick(cls) -> "Settings":
    return cls(bins=100, stop_bins=100, num_seeds=2, num_betas=20, num_iterations=300, starts_per_cell=500,
               vib_steps=800, vib_pairs=40_000, vib_betas=(1.1, 1.6, 5.0))


def four_well_problem(sigma: float, settings: Settings, simulated: bool = False, seed: int = 0, bins: int | None = None):
  """(IBProblem, Spectrum, system, P) for the authors' four-well at σ, generator route unless `simulated`."""
  system = systems.four_well(mu=3.0, sigma=sigma, bins=bins or settings.bins)
  steps = systems.AUTHORS_STEPS_PER_TRANSITION
  if simulated:
    transition = systems.simulated_transition_matrix(system, settings.starts_per_cell, steps, seed=seed)
    stationary = systems.stationary_distribution(transition)
  else:
    transition, stationary = systems.generator_transition_matrix(system, steps * systems.AUTHORS_DT)
  spectrum = systems.transfer_operator_spectrum(transition, stationary)
  problem = exact.IBProblem.from_markov_chain(transition, stationary, systems.AUTHORS_IB_LAG)
  return problem, spectrum, system, transition


def when_to_stop(problem: exact.IBProblem, settings: Settings, num_seeds: int | None = None) -> dict:
  """I(E;H) and I(V;H) at the largest β for 1 … max_clusters clusters, plus the full annealing curves.

  Each cluster count is annealed from `num_seeds` seeds; the point reported is the seed with the lowest
  final Lagrangian I(V;H) − β I(E;H) (all seeds' I(E;H) are kept in "relevant_bits_all_seeds").
  """
  num_seeds = settings.num_seeds if num_seeds is None else num_seeds
  betas = np.geomspace(1.0, settings.max_beta, settings.num_betas)
  out = {"betas": betas.tolist(), "clusters": [], "relevant_bits": [], "rate_bits": [], "beta_of_point": [],
         "beta_reaching_99pct": [], "relevant_bits_all_seeds": [], "best_seed": [], "curves": {},
         "encoders_at_max_beta": {}}
  for clusters in range(1, settings.max_clusters + 1):
    runs = [exact.anneal(problem, betas, clusters, settings.num_iterations, seed=seed)
            for seed in range(num_seeds if clusters > 1 else 1)]
    lagrangians = [r.rate_bits[-1] - betas[-1] * r.relevant_bits[-1] for r in runs]
    best = int(np.argmin(lagrangians))
    result = runs[best]
    out["relevant_bits_all_seeds"].append([float(r.relevant_bits[-1]) for r in runs])
    out["best_seed"].append(best)
    final = result.relevant_bits[-1]
    reached = np.nonzero(result.relevant_bits >= 0.99 * final)[0]
    out["clusters"].append(clusters)
    out["relevant_bits"].append(float(final))
    out["rate_bits"].append(float(result.rate_bits[-1]))
    out["beta_of_point"].append(float(betas[-1]))
    out["beta_reaching_99pct"].append(float(betas[reached[0]]) if final > 1e-6 else float("nan"))
    out["curves"][clusters] = {"rate_bits": result.rate_bits.tolist(), "relevant_bits": result.relevant_bits.tolist()}
    out["encoders_at_max_beta"][clusters] = result.encoders[-1]
  out["increments_bits"] = np.diff([0.0] + out["relevant_bits"]).tolist()
  out["ceiling_I_VE_bits"] = problem.relevant_information_bits()
  return out


def critical_beta_study(problem: exact.IBProblem, spectrum: systems.Spectrum, settings: Settings) -> dict:
  """Theory β_c = 1/ρ² = λ1^{−2τ} against the annealed solver on a fine grid and on the authors' grid."""
  critical = exact.critical_beta(problem)
  fine = critical * np.linspace(0.98, 1.06, 33)
  fine_result = exact.anneal(problem, fine, 2, settings.num_iterations)
  index = np.argmin(np.abs(fine - 1.02 * critical))
  same = exact.hard_assignment(fine_result.encoders[index]) == (spectrum.eigenfunctions[:, 1] > 0)
  agreement = max(np.sum(problem.p_v * same), np.sum(problem.p_v * ~same))
  return {
      "lambda1_one_step": float(spectrum.eigenvalues[1]),
      "rho": float(np.sqrt(1.0 / critical)),
      "beta_c_theory_1_over_rho2": critical,
      "beta_c_lambda1_minus_2tau": float(spectrum.eigenvalues[1] ** (-2 * systems.AUTHORS_IB_LAG)),
      "beta_c_if_exponent_were_tau": float(spectrum.eigenvalues[1] ** (-systems.AUTHORS_IB_LAG)),
      "first_transition_fine_grid": fine_result.first_transition_beta(1e-3),
      "first_transition_fine_grid_over_beta_c": fine_result.first_transition_beta(1e-3) / critical,
      "extrapolated_beta_c": exact.extrapolated_critical_beta(fine_result),
      "sign_phi1_agreement_at_1.02_beta_c": float(agreement),
      "fine_betas": fine.tolist(), "fine_rate_bits": fine_result.rate_bits.tolist(),
      "num_iterations": settings.num_iterations,
  }


def variational_study(sigma: float, problem: exact.IBProblem, spectrum: systems.Spectrum, system, settings: Settings,
                      seed: int = 0) -> dict:
  """1-D-latent VIB on stationary pairs at the IB lag; latent mean vs φ1 and the information-curve points."""
  from flax import nnx

  lag_steps = systems.AUTHORS_IB_LAG * systems.AUTHORS_STEPS_PER_TRANSITION
  paths = variational.simulate_stationary_pairs(system, problem.p_v, settings.vib_pairs, lag_steps, seed=seed)
  pairs = variational.make_training_pairs(paths, lag=1, grid=system.grid)
  num_eval = len(pairs["present"]) // 10
  eval_pairs = {k: v[:num_eval] for k, v in pairs.items()}
  train_pairs = {k: v[num_eval:] for k, v in pairs.items()}
  valid = eval_pairs["future_bin"] >= 0
  future_counts = np.bincount(eval_pairs["future_bin"][valid], minlength=system.grid.num_states)
  future_p = future_counts[future_counts > 0] / valid.sum()
  future_entropy_nats = float(-np.sum(future_p * np.log(future_p)))
  centers = system.grid.centers()
  phi1 = spectrum.eigenfunctions[:, 1]
  out = {"betas": [], "rate_bits": [], "relevant_lower_bound_bits": [], "corr_latent_phi1": [], "latent_means": {},
         "future_entropy_bits": future_entropy_nats / np.log(2.0), "x": centers[:, 0], "phi1": phi1}
  import jax
  for beta in settings.vib_betas:
    model = variational.VariationalIB(1, latent_dim=1, hidden=32, num_future_bins=system.grid.num_states,
                                      input_scale=1.3, rngs=nnx.Rngs(seed))
    variational.train(model, train_pairs, beta, settings.vib_steps, batch_size=512, learning_rate=3e-3, seed=seed)
    eval_batch = {"present": eval_pairs["present"][valid], "future": eval_pairs["future_bin"][valid]}
    _, metrics = variational.variational_ib_loss(model, eval_batch, jax.random.key(1), beta)
    mean = variational.latent_mean(model, centers)[:, 0]
    weights = problem.p_v
    centred = mean - np.sum(weights * mean)
    corr = float(np.sum(weights * centred * phi1) / np.sqrt(np.sum(weights * centred**2) * np.sum(weights * phi1**2)))
    out["betas"].append(beta)
    out["rate_bits"].append(float(metrics["rate_bits"]))
    out["relevant_lower_bound_bits"].append(float((future_entropy_nats - metrics["distortion_nats"]) / np.log(2.0)))
    out["corr_latent_phi1"].append(corr if np.isfinite(corr) else 0.0)
    # A collapsed encoder (posterior = prior) carries no information; its mean's shape is meaningless.
    out.setdefault("collapsed", []).append(bool(metrics["rate_bits"] < 0.01))
    out["latent_means"][beta] = mean
  return out


def gaussian_ou_study() -> dict:
  process = systems.OrnsteinUhlenbeck(rates=(0.5, 2.0), noise=1.0, rotation_angle=0.4)
  lag_time = 0.7
  problem = gaussian.GaussianIB.from_ornstein_uhlenbeck(process, lag_time)
  betas = np.geomspace(1.0, 100.0, 200)
  informations = np.array([problem.informations_bits(problem.projection(b)) for b in betas])
  return {"rates": list(process.rates), "lag_time": lag_time, "critical_betas": problem.critical_betas().tolist(),
          "theory_exp_2k_tau": np.exp(2 * np.sort(process.rates) * lag_time).tolist(),
          "betas": betas.tolist(), "rate_bits": informations[:, 0].tolist(), "relevant_bits": informations[:, 1].tolist()}


# ----------------------------------------------------------------------------------------------------------
# Figures.


def _figures(out_dir: str, results: dict, encoder_data: dict, vib: dict, settings: Settings) -> list[str]:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  paths = []
  colors = plt.cm.viridis(np.linspace(0, 0.9, len(settings.sigmas)))

  # Information curve (σ = 0.2).
  stop = results["when_to_stop"]["0.2"]
  fig, ax = plt.subplots(figsize=(6, 4.5))
  for clusters in range(2, settings.max_clusters + 1):
    curve = stop["curves"][clusters]
    ax.plot(curve["rate_bits"], curve["relevant_bits"], ".-", ms=3, label=f"exact IB, {clusters} clusters")
  ax.axhline(stop["ceiling_I_VE_bits"], color="k", ls=":", label="I(V;E)")
  if vib is not None:
    ax.plot(vib["rate_bits"], vib["relevant_lower_bound_bits"], "k^--", label="variational IB (1-D latent; bounds)")
  ax.set_xlabel("I(present; H) [bits]")
  ax.set_ylabel("I(future; H) [bits]")
  ax.set_title(f"Four-well μ=3, σ=0.2, {settings.stop_bins} bins, lag 3 steps")
  ax.legend(fontsize=7)
  paths.append(_save(fig, out_dir, "information_curve.png"))

  # Encoders over the potential.
  x = encoder_data["x"]
  fig, axes = plt.subplots(1, len(encoder_data["panels"]), figsize=(4.2 * len(encoder_data["panels"]), 3.6), sharey=True)
  for ax, (title, panel_x, encoder) in zip(axes, encoder_data["panels"]):
    for h in range(encoder.shape[1]):
      ax.plot(panel_x, encoder[:, h], lw=1.5)
    twin = ax.twinx()
    twin.plot(panel_x, np.asarray(systems.four_well_potential(panel_x[:, None])), "k", lw=0.8, alpha=0.6)
    twin.set_ylim(0, 2.5)
    twin.set_yticks([])
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("x")
  axes[0].set_ylabel("p(h | x)  (black: U(x))")
  paths.append(_save(fig, out_dir, "encoders.png"))

  # When to stop.
  fig, (ax, ax_inc) = plt.subplots(1, 2, figsize=(10, 4))
  for color, sigma in zip(colors, settings.sigmas):
    stop = results["when_to_stop"][str(sigma)]
    ax.plot(stop["clusters"], stop["relevant_bits"], "o-", color=color, label=f"σ={sigma}")
    ax_inc.plot(stop["clusters"], stop["increments_bits"], "o-", color=color, label=f"σ={sigma}")
    for c, value, beta in zip(stop["clusters"][1:], stop["relevant_bits"][1:], stop["beta_reaching_99pct"][1:]):
      ax.annotate(f"{beta:.3g}", (c, value), fontsize=6, textcoords="offset points", xytext=(3, -9), color=color)
  ax.set_xlabel("number of clusters")
  ax.set_ylabel(f"I(future; H) [bits] at β = {settings.max_beta:g}")
  ax.set_title("labels: smallest β reaching 99 % of the point", fontsize=8)
  ax.legend()
  ax_inc.set_xlabel("number of clusters")
  ax_inc.set_ylabel("ΔI(future; H) [bits]")
  ax_inc.axhline(0, color="k", lw=0.5)
  paths.append(_save(fig, out_dir, "when_to_stop.png"))

  # Critical β.
  fig, ax = plt.subplots(figsize=(6, 4))
  for color, sigma in zip(colors, settings.sigmas):
    study = results["critical_beta"][str(sigma)]
    betas = np.asarray(study["fine_betas"]) / study["beta_c_theory_1_over_rho2"]
    ax.plot(betas, study["fine_rate_bits"], ".-", color=color, label=f"σ={sigma}, β_c={study['beta_c_theory_1_over_rho2']:.6g}")
  ax.axvline(1.0, color="k", ls=":")
  ax.set_xlabel("β / β_c   (β_c = 1/ρ²)")
  ax.set_ylabel("I(present; H) [bits], 2 clusters")
  ax.legend(fontsize=7)
  paths.append(_save(fig, out_dir, "critical_beta.png"))

  # Spectra.
  spectra = results["spectra"]
  fig, ax = plt.subplots(figsize=(5, 4))
  k = np.arange(len(spectra["generator"]))
  ax.plot(k, spectra["generator"], "o", label="finite-volume generator + expm")
  ax.plot(k, spectra["simulated"], "x", label=f"Euler–Maruyama, {settings.starts_per_cell}/bin")
  ax.set_xlabel("k")
  ax.set_ylabel("λ_k (one transition step)")
  ax.set_title("four-well σ=0.2")
  ax.legend()
  paths.append(_save(fig, out_dir, "spectra.png"))

  if vib is not None:
    fig, ax = plt.subplots(figsize=(6, 4))
    x, phi1 = vib["x"], vib["phi1"]
    ax.plot(x, phi1 / np.max(np.abs(phi1)), "k", lw=2, label="φ1 (scaled)")
    for beta, corr, collapsed in zip(vib["betas"], vib["corr_latent_phi1"], vib["collapsed"]):
      if collapsed:
        continue
      mean = vib["latent_means"][beta]
      scale = np.max(np.abs(mean)) or 1.0
      ax.plot(x, mean / scale, lw=1, label=f"β={beta}: corr={corr:+.3f}")
    ax.set_xlabel("x")
    ax.set_ylabel("VIB latent mean (scaled)")
    ax.legend(fontsize=7)
    paths.append(_save(fig, out_dir, "variational_latent.png"))

  ou = results["gaussian_ou"]
  fig, ax = plt.subplots(figsize=(5, 4))
  ax.plot(ou["betas"], ou["rate_bits"], label="I(T;X)")
  ax.plot(ou["betas"], ou["relevant_bits"], label="I(T;Y)")
  for beta in ou["critical_betas"]:
    ax.axvline(beta, color="k", ls=":")
  ax.set_xscale("log")
  ax.set_xlabel("β")
  ax.set_ylabel("bits")
  ax.set_title(f"Gaussian IB, OU rates {ou['rates']}, τ={ou['lag_time']}", fontsize=9)
  ax.legend()
  paths.append(_save(fig, out_dir, "gaussian_ou.png"))
  return paths


def _save(fig, out_dir, name):
  path = os.path.join(out_dir, name)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  import matplotlib.pyplot as plt
  plt.close(fig)
  return path


def _jsonable(value):
  if isinstance(value, dict):
    return {str(k): _jsonable(v) for k, v in value.items()
            if k not in ("encoders_at_max_beta", "latent_means", "x", "phi1")}
  if isinstance(value, (list, tuple)):
    return [_jsonable(v) for v in value]
  if isinstance(value, np.ndarray):
    return value.tolist()
  if isinstance(value, (np.floating, np.integer)):
    return value.item()
  return value


def main(argv: list[str] | None = None) -> dict:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--out", required=True, help="directory for the PNGs and results.json")
  parser.add_argument("--quick", action="store_true", help="100 bins and fewer iterations (minutes)")
  parser.add_argument("--skip-variational", action="store_true")
  args = parser.parse_args(argv)
  settings = Settings.quick() if args.quick else Settings()
  os.makedirs(args.out, exist_ok=True)
  start = time.time()
  results = {"settings": dataclasses.asdict(settings), "when_to_stop": {}, "critical_beta": {}}

  problems = {}
  for sigma in settings.sigmas:
    problem, spectrum, system, _ = four_well_problem(sigma, settings)
    problems[sigma] = (problem, spectrum, system)
    results["critical_beta"][str(sigma)] = critical_beta_study(problem, spectrum, settings)
    results["critical_beta"][str(sigma)]["eigenvalues"] = spectrum.eigenvalues.tolist()
    stop_problem = four_well_problem(sigma, settings, bins=settings.stop_bins)[0]
    results["when_to_stop"][str(sigma)] = when_to_stop(stop_problem, settings)
    curve = results["when_to_stop"][str(sigma)]["curves"][2]["rate_bits"]
    above = np.nonzero(np.asarray(curve) > 1e-3)[0]
    results["critical_beta"][str(sigma)]["first_transition_authors_grid"] = (
        float(results["when_to_stop"][str(sigma)]["betas"][above[0]]) if above.size else float("nan"))
    print(f"[{time.time() - start:6.0f}s] σ={sigma}: I(E;H) by clusters "
          f"{np.round(results['when_to_stop'][str(sigma)]['relevant_bits'], 3).tolist()}, "
          f"β_c={results['critical_beta'][str(sigma)]['beta_c_theory_1_over_rho2']:.6g}", flush=True)

  # Route (a) against route (b) at σ = 0.2, and the IB on the simulated matrix.
  sim_problem, sim_spectrum, _, sim_transition = four_well_problem(0.2, settings, simulated=True)
  gen_problem, gen_spectrum, system = problems[0.2]
  results["spectra"] = {
      "generator": gen_spectrum.eigenvalues.tolist(),
      "simulated": systems.transition_eigenvalues(sim_transition).tolist(),
      "simulated_reversibilised": sim_spectrum.eigenvalues.tolist(),
  }
  sim_rho = exact.maximal_correlation(sim_problem.p_v, sim_problem.p_e_given_v)
  results["simulated_route_sigma_0.2"] = {
      "rho_svd": sim_rho, "beta_c_svd": 1.0 / sim_rho**2,
      "beta_c_from_lambda1": float(systems.transition_eigenvalues(sim_transition)[1] ** (-2 * systems.AUTHORS_IB_LAG)),
      "when_to_stop_relevant_bits_single_seed": when_to_stop(sim_problem, settings, num_seeds=1)["relevant_bits"],
  }
  print(f"[{time.time() - start:6.0f}s] simulated route done", flush=True)

  results["gaussian_ou"] = gaussian_ou_study()

  vib = None
  if not args.skip_variational:
    # Same bins as the exact "when to stop" curves, so the two information curves share their future variable.
    vib_problem, vib_spectrum, vib_system, _ = four_well_problem(0.2, settings, bins=settings.stop_bins)
    vib = variational_study(0.2, vib_problem, vib_spectrum, vib_system, settings)
    results["variational_sigma_0.2"] = vib
    print(f"[{time.time() - start:6.0f}s] variational: corr {np.round(vib['corr_latent_phi1'], 4).tolist()} "
          f"rates {np.round(vib['rate_bits'], 3).tolist()}", flush=True)

  # Encoders: 2 clusters just above β_c, then 4 and 6 clusters at the largest β.
  critical = results["critical_beta"]["0.2"]["beta_c_theory_1_over_rho2"]
  two = exact.anneal(gen_problem, critical * np.linspace(0.98, 1.02, 9), 2, settings.num_iterations).encoders[-1]
  stop = results["when_to_stop"]["0.2"]
  x = system.grid.centers()[:, 0]
  x_stop = systems.four_well(bins=settings.stop_bins).grid.centers()[:, 0]
  encoder_data = {
      "x": x, "phi1": gen_spectrum.eigenfunctions[:, 1],
      "panels": [(f"2 clusters, β = 1.02 β_c = {1.02 * critical:.4g} ({settings.bins} bins)", x, two),
                 (f"4 clusters, β = {settings.max_beta:g} ({settings.stop_bins} bins)", x_stop,
                  stop["encoders_at_max_beta"][4]),
                 (f"6 clusters, β = {settings.max_beta:g} ({settings.stop_bins} bins)", x_stop,
                  stop["encoders_at_max_beta"][6])],
  }
  results["figures"] = _figures(args.out, results, encoder_data, vib, settings)
  results["runtime_s"] = time.time() - start
  with open(os.path.join(args.out, "results.json"), "w") as f:
    json.dump(_jsonable(results), f, indent=1)
  print(f"[{time.time() - start:6.0f}s] wrote {len(results['figures'])} figures and results.json to {args.out}")
  return results


if __name__ == "__main__":
  main()
