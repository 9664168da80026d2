"""Information-bottleneck model reduction for stochastic dynamical systems (arXiv 2312.06608; issue 8).

  systems      overdamped Langevin systems (four-well, double well, 2-D triple well), Ornstein–Uhlenbeck;
               transition matrices by simulation and by a finite-volume Fokker–Planck generator; spectra
  exact        self-consistent IB on discrete tables, annealed in β; β_c = 1/ρ²; analytic slow-mode solution
  gaussian     Gaussian IB (Chechik et al. 2005) for OU: transitions at β = e^{2 k_i τ}
  variational  Flax NNX variational IB: `VariationalIB`, `variational_ib_loss(model, batch, rng, beta)`
  analysis     `python -m zoo.ib.analysis --out DIR`: figures and results.json
  benchmark    `main(argv)`: jitted JAX IB iterations vs numpy

See zoo/ib/README.md for the paper → code map and the measured claims.
"""
