"""Kernel implementation choice shared by every kernel package (maxtext-style dispatch with fallback)."""
from __future__ import annotations

import jax

IMPLS = ("auto", "xla", "pallas")


def resolve_impl(impl: str) -> str:
  """"auto" -> the Pallas TPU kernel on TPU, the XLA path elsewhere (CPU, GPU); others pass through."""
  if impl not in IMPLS:
    raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
  if impl == "auto":
    return "pallas" if jax.default_backend() == "tpu" else "xla"
  return impl
