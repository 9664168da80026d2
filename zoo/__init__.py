"""A JAX/TPU-first model zoo: W.A.L.T, information-bottleneck model reduction, KPE, 4M, Sherpa3D."""
from flax import nnx as _nnx

# Parameters carry logical axis names as metadata only; the training loop turns them into shardings
# (zoo/training/state.py: abstract init -> rules -> jitted init with out_shardings). Flax's eager
# sharding would instead require a mesh at construction time.
_nnx.use_eager_sharding(False)
