"""The one sharding layer: meshes, logical-axis rules, global batches, multi-host start.

Models name their array axes logically (`batch`, `embed`, `mlp`, `heads`, `frames`, ...) through Flax NNX
parameter metadata (`nnx.with_partitioning(init, ("embed", "mlp"))`); an experiment's `axis_rules` map
those names onto mesh axes (`data`, `fsdp`, `tensor`, `context`). Nothing here knows about any paper.

Axis types. Meshes are built with `AxisType.Auto` on purpose: the training loop shards through
`jax.jit(in_shardings=..., out_shardings=...)` and logical constraints (GSPMD style), and Pallas kernels
run inside `jax.shard_map`. Explicit axes would turn every sharding constraint into an assertion and
require `out_sharding=` on each contraction of a sharded dimension; nothing in the zoo needs that yet.
"""
from __future__ import annotations

import logging
import math
import os
from typing import Any, Mapping, Sequence

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec as P

MESH_AXES = ("data", "fsdp", "tensor", "context")

# Logical -> mesh axis rules used when an experiment gives none: pure data parallelism plus FSDP on the
# embedding axis. Each rule is (logical_name, mesh_axis | tuple of mesh axes | None).
DEFAULT_AXIS_RULES = (
    ("batch", ("data", "fsdp")),
    ("embed", "fsdp"),
    ("mlp", "tensor"),
    ("heads", "tensor"),
    ("kv", None),
    ("length", "context"),
    ("frames", None),
    ("classes", None),
    ("conv_in", None),
    ("conv_out", "tensor"),
)


class MeshError(ValueError):
  """The requested mesh does not fit the available devices."""


def resolve_mesh_shape(mesh_config: Mapping[str, int], num_devices: int) -> dict[str, int]:
  """Fills one `-1` axis so that the product of axis sizes equals `num_devices`.

  `mesh_config` maps a subset of MESH_AXES to sizes; missing axes get size 1.
  """
  unknown = set(mesh_config) - set(MESH_AXES)
  if unknown:
    raise MeshError(f"Unknown mesh axes {sorted(unknown)}; the zoo's mesh axes are {MESH_AXES}.")
  shape = {axis: int(mesh_config.get(axis, 1)) for axis in MESH_AXES}
  free = [axis for axis, size in shape.items() if size == -1]
  if len(free) > 1:
    raise MeshError(f"Only one mesh axis may be -1, got {free}.")
  fixed = math.prod(size for size in shape.values() if size != -1)
  if free:
    if num_devices % fixed:
      raise MeshError(f"Mesh {dict(mesh_config)}: {num_devices} devices are not divisible by the fixed "
                      f"axes' product {fixed}.")
    shape[free[0]] = num_devices // fixed
  elif fixed != num_devices:
    raise MeshError(f"Mesh {dict(mesh_config)} needs {fixed} devices but {num_devices} are available; "
                    "set one axis to -1 to fill the rest.")
  return shape


def make_mesh(mesh_config: Mapping[str, int], devices: Sequence[Any] | None = None) -> Mesh:
  """Builds a mesh with axes MESH_AXES (Auto axis types; see the module docstring).

  `devices` defaults to all global devices; pass abstract TPU devices from
  `jax.experimental.topologies.get_topology_desc(...)` to compile for a pod from a CPU host.
  """
  devices = list(jax.devices() if devices is None else devices)
  shape = resolve_mesh_shape(dict(mesh_config), len(devices))
  sizes = tuple(shape[axis] for axis in MESH_AXES)
  axis_types = (AxisType.Auto,) * len(MESH_AXES)
  try:
    # jax.make_mesh picks a device order that follows the physical ICI topology on TPUs.
    return jax.make_mesh(sizes, MESH_AXES, axis_types=axis_types, devices=devices)
  except (ValueError, NotImplementedError, AssertionError):
    # Fake CPU devices or irregular device sets: plain row-major order.
    return Mesh(np.asarray(devices).reshape(sizes), MESH_AXES, axis_types=axis_types)


def logical_to_mesh_spec(logical_axes: Sequence[str | None] | None, rules: Sequence[Sequence[Any]],
                         shape: Sequence[int] | None = None, mesh: Mesh | None = None) -> P:
  """Maps logical axis names to a PartitionSpec with the experiment's rules.

  A logical name with no rule, or mapped to None, is replicated. When `shape` and `mesh` are given, a
  dimension whose size the mesh axes do not divide is replicated instead of failing at compile time
  (tiny test models often have such dimensions), and a mesh axis is never used twice in one spec.
  """
  if logical_axes is None:
    return P()
  rule_map = {name: target for name, target in rules}
  used: set[str] = set()
  spec = []
  for dim, name in enumerate(logical_axes):
    target = rule_map.get(name) if name is not None else None
    mesh_axes = () if target is None else ((target,) if isinstance(target, str) else tuple(target))
    mesh_axes = tuple(a for a in mesh_axes if a not in used and (mesh is None or mesh.shape[a] > 1))
    if mesh_axes and shape is not None and mesh is not None:
      if shape[dim] % math.prod(mesh.shape[a] for a in mesh_axes):
        mesh_axes = ()
    used.update(mesh_axes)
    spec.append(None if not mesh_axes else (mesh_axes[0] if len(mesh_axes) == 1 else mesh_axes))
  return P(*spec)


def logical_shardings(abstract_tree: Any, logical_tree: Any, mesh: Mesh,
                      rules: Sequence[Sequence[Any]]) -> Any:
  """NamedShardings for `abstract_tree` (arrays / ShapeDtypeStructs) from a matching tree of logical specs.

  `logical_tree` has the same structure with a PartitionSpec of logical names per leaf (as produced by
  `nnx.get_partition_spec(state).to_pure_dict()`).
  """
  def one(leaf, logical):
    return NamedSharding(mesh, logical_to_mesh_spec(tuple(logical), rules, leaf.shape, mesh))
  return jax.tree.map(one, abstract_tree, logical_tree,
                      is_leaf=lambda x: isinstance(x, P))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh, rules: Sequence[Sequence[Any]], ndim: int,
                   shape: Sequence[int] | None = None) -> NamedSharding:
  """Sharding of a batch array: its leading axis is the logical `batch` axis, the rest replicated."""
  return NamedSharding(mesh, logical_to_mesh_spec(("batch",) + (None,) * (ndim - 1), rules, shape, mesh))


def batch_shard_count(mesh: Mesh, rules: Sequence[Sequence[Any]]) -> int:
  """How many ways the global batch is split across devices by the `batch` rule."""
  spec = logical_to_mesh_spec(("batch",), rules, None, mesh)[0]
  if spec is None:
    return 1
  axes = (spec,) if isinstance(spec, str) else spec
  return math.prod(mesh.shape[a] for a in axes)


def global_batch_from_process_local(local_batch: Any, mesh: Mesh,
                                    rules: Sequence[Sequence[Any]]) -> Any:
  """Assembles per-process numpy batches into global jax.Arrays sharded along `batch`.

  Every process passes its own slice (`global_batch / process_count` examples); the result has the
  global leading dimension. Works unchanged on one process.
  """
  def one(x):
    x = np.asarray(x)
    global_shape = (x.shape[0] * jax.process_count(),) + x.shape[1:]
    sharding = batch_sharding(mesh, rules, x.ndim, global_shape)
    return jax.make_array_from_process_local_data(sharding, x, global_shape)
  return jax.tree.map(one, local_batch)


def check_batch_size(global_batch_size: int, mesh: Mesh, rules: Sequence[Sequence[Any]]) -> None:
  """Raises a clear error unless the global batch splits evenly over processes and batch shards."""
  shards = batch_shard_count(mesh, rules)
  if global_batch_size % jax.process_count() or global_batch_size % shards:
    raise ValueError(
        f"Global batch size {global_batch_size} must be divisible by the process count "
        f"({jax.process_count()}) and by the number of batch shards ({shards}, from the mesh "
        f"{dict(mesh.shape)} and the 'batch' axis rule). Change config.batch_size or config.mesh.")


def batch_size_report(global_batch_size: int, mesh: Mesh, rules) -> dict[str, float]:
  """Global / per-process / per-device batch sizes, logged at start (see maxtext#2628 for why)."""
  return {
      "global_batch_size": global_batch_size,
      "per_process_batch_size": global_batch_size / jax.process_count(),
      "per_device_batch_size": global_batch_size / batch_shard_count(mesh, rules),
      "num_devices": mesh.size,
      "num_processes": jax.process_count(),
  }


def _on_tpu_pod() -> bool:
  # Cloud TPU VMs export the worker list; a single-host TPU needs no distributed init.
  hosts = os.environ.get("TPU_WORKER_HOSTNAMES", "")
  return "," in hosts


def initialize_distributed(coordinator_address: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None,
                           local_device_ids: Sequence[int] | None = None) -> bool:
  """Starts multi-host JAX when asked to (flags or env) or when on a multi-host TPU pod / SLURM job.

  Explicit arguments win; otherwise ZOO_COORDINATOR_ADDRESS, ZOO_NUM_PROCESSES and ZOO_PROCESS_ID are
  read. On TPU pods and under SLURM, `jax.distributed.initialize()` auto-detects everything. Returns
  True when distributed mode was started. CPU processes use gloo collectives.
  """
  coordinator_address = coordinator_address or os.environ.get("ZOO_COORDINATOR_ADDRESS")
  if num_processes is None and os.environ.get("ZOO_NUM_PROCESSES"):
    num_processes = int(os.environ["ZOO_NUM_PROCESSES"])
  if process_id is None and os.environ.get("ZOO_PROCESS_ID"):
    process_id = int(os.environ["ZOO_PROCESS_ID"])
  if jax.distributed.is_initialized():
    return True
  if coordinator_address:
    if num_processes is None or process_id is None:
      raise ValueError("A coordinator address needs num_processes and process_id "
                       "(flags --num_processes/--process_id or env ZOO_NUM_PROCESSES/ZOO_PROCESS_ID).")
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(coordinator_address, num_processes=num_processes,
                               process_id=process_id, local_device_ids=local_device_ids)
    return True
  if _on_tpu_pod() or "SLURM_JOB_ID" in os.environ and int(os.environ.get("SLURM_NTASKS", "1")) > 1:
    jax.distributed.initialize()
    return True
  return False


def describe_mesh(mesh: Mesh) -> str:
  return " ".join(f"{name}={size}" for name, size in mesh.shape.items())


def log_mesh(mesh: Mesh) -> None:
  logging.info("Mesh %s over %d devices (%s), %d process(es).", describe_mesh(mesh), mesh.size,
               mesh.devices.flat[0].platform, jax.process_count())


def kernel_mesh(impl: str):
  """The mesh a kernel call must shard_map over, or None.

  Pallas TPU kernels cannot be auto-partitioned, so inside a jitted step running under
  `jax.set_mesh(mesh)` (as the training loop does) a Pallas call is wrapped in `jax.shard_map` over the
  current (abstract) mesh. XLA paths are left to the partitioner.
  """
  if impl != "pallas":
    return None
  mesh = jax.sharding.get_abstract_mesh()
  return None if mesh.empty or mesh.size == 1 else mesh
