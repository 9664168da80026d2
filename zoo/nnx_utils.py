"""Small Flax NNX helpers shared across papers."""
from __future__ import annotations

from typing import Callable, TypeVar

import jax
from flax import nnx

M = TypeVar("M", bound=nnx.Module)


def jit_init(build: Callable[[], M]) -> M:
  """Builds a module with its initialisers compiled into one XLA program.

  Eager construction dispatches every initialiser op separately, which for a conv net of a few dozen
  layers costs tens of seconds on a busy CPU; one jitted program costs one compile.
  """
  graphdef, _ = nnx.split(nnx.eval_shape(build))
  state = jax.jit(lambda: nnx.state(build()))()
  return nnx.merge(graphdef, state)
