"""Ahead-of-time TPU compilation from a CPU host, for tests and the README's VMEM numbers.

With libtpu installed, `jax.experimental.topologies` yields abstract TPU devices; jit(...).trace(...)
.lower().compile() on a mesh of them runs the real Mosaic compiler, so bad block shapes, unsupported
primitives and VMEM overflows fail here instead of on the first TPU run.
"""
from __future__ import annotations

import json
import re

import jax
import numpy as np
from jax.sharding import AxisType, Mesh


def topology_mesh(topology: str = "v5e:2x2", axis_shape=(2, 1, 2),
                  axis_names=("data", "fsdp", "tensor")) -> Mesh:
  """A mesh of abstract TPU devices (Auto axes, so jit in/out shardings drive the partitioning)."""
  from jax.experimental import topologies  # imported lazily: needs libtpu, only for AOT work
  devices = topologies.get_topology_desc(platform="tpu", topology_name=topology).devices
  return Mesh(np.array(devices).reshape(axis_shape), axis_names,
              axis_types=(AxisType.Auto,) * len(axis_names))


def compile_for_tpu(fn, args, in_shardings, out_shardings):
  """Runs Mosaic/XLA TPU compilation for `fn` on ShapeDtypeStruct `args`; returns the Compiled."""
  return jax.jit(fn, in_shardings=in_shardings, out_shardings=out_shardings).trace(*args).lower() \
      .compile()


_CUSTOM_CALL = re.compile(r"%([\w.\-]+) = .*custom_call_target=\"tpu_custom_call\"")
_SCOPED = re.compile(r'"used_scoped_memory_configs":\[(.*?)\]')


def pallas_scoped_vmem_bytes(compiled) -> dict[str, int]:
  """{kernel instruction name: scoped VMEM bytes the TPU compiler reserved for it}.

  Read from the `used_scoped_memory_configs` of each tpu_custom_call in the compiled HLO; memory
  space 1 is VMEM. This is the number that must stay under the scoped VMEM limit (16 MiB default on
  v5e, raised with vmem_limit_bytes).
  """
  result = {}
  for line in compiled.as_text().splitlines():
    match = _CUSTOM_CALL.search(line)
    if not match:
      continue
    scoped = _SCOPED.search(line)
    total = 0
    if scoped:
      for config in json.loads("[" + scoped.group(1) + "]"):
        if config.get("memory_space") == "1":
          total += int(config["size"])
    result[match.group(1)] = total
  return result
