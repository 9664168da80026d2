"""A JAX/TPU-first model zoo: W.A.L.T, information-bottleneck model reduction, KPE, 4M, Sherpa3D."""
