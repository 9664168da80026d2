"""Kernels shared by the papers: W.A.L.T window attention and MAGVIT-v2 causal 3D convolution.

Each kernel package holds reference.py (pure jnp, the truth), xla.py (fast CPU/GPU path),
pallas_tpu.py (TPU kernel with custom_vjp backward) and a dispatching __init__.py. See README.md.
"""
