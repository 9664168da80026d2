"""Mesh construction, logical-axis rules and global batches on 8 fake CPU devices."""
import jax
import numpy as np
import pytest
from jax.sharding import AxisType, PartitionSpec as P

from zoo import sharding

RULES = [("batch", ("data", "fsdp")), ("embed", "fsdp"), ("mlp", "tensor"), ("heads", "tensor")]


def test_resolve_fills_minus_one():
  assert sharding.resolve_mesh_shape({"data": -1, "tensor": 2}, 8) == {
      "data": 4, "fsdp": 1, "tensor": 2, "context": 1}


@pytest.mark.parametrize("mesh_config, message", [
    ({"data": 3}, "needs 3 devices"),
    ({"data": -1, "fsdp": -1}, "Only one mesh axis"),
    ({"data": -1, "tensor": 3}, "not divisible"),
    ({"model": 2}, "Unknown mesh axes"),
])
def test_resolve_errors(mesh_config, message):
  with pytest.raises(sharding.MeshError, match=message):
    sharding.resolve_mesh_shape(mesh_config, 8)


def test_make_mesh_axis_types_are_auto():
  mesh = sharding.make_mesh({"data": 2, "fsdp": 2, "tensor": 2})
  assert dict(mesh.shape) == {"data": 2, "fsdp": 2, "tensor": 2, "context": 1}
  assert all(t == AxisType.Auto for t in mesh.axis_types)


def test_logical_rules_and_divisibility_fallback():
  mesh = sharding.make_mesh({"data": 2, "fsdp": 2, "tensor": 2})
  assert sharding.logical_to_mesh_spec(("embed", "mlp"), RULES, (8, 16), mesh) == P("fsdp", "tensor")
  # 3 is not divisible by the tensor axis: replicated rather than a compile error.
  assert sharding.logical_to_mesh_spec(("embed", "mlp"), RULES, (8, 3), mesh) == P("fsdp", None)
  assert sharding.logical_to_mesh_spec(("batch", None), RULES, (8, 3), mesh) == P(("data", "fsdp"), None)
  # A mesh axis is used once per spec.
  assert sharding.logical_to_mesh_spec(("batch", "embed"), RULES, (8, 8), mesh) == P(("data", "fsdp"), None)
  assert sharding.logical_to_mesh_spec(("unknown",), RULES, (8,), mesh) == P(None)


def test_nnx_annotations_become_shardings():
  from flax import nnx
  from zoo.training import state as _  # noqa: F401  (turns eager sharding off)
  mesh = sharding.make_mesh({"data": 2, "fsdp": 2, "tensor": 2})
  model = nnx.eval_shape(lambda: nnx.Linear(8, 16, kernel_init=nnx.with_partitioning(
      nnx.initializers.lecun_normal(), ("embed", "mlp")), rngs=nnx.Rngs(0)))
  params = nnx.state(model, nnx.Param)
  shardings = sharding.logical_shardings(
      jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params.to_pure_dict()),
      nnx.get_partition_spec(params).to_pure_dict(), mesh, RULES)
  assert shardings["kernel"].spec == P("fsdp", "tensor")
  assert shardings["bias"].spec == P()


def test_global_batch_from_process_local():
  mesh = sharding.make_mesh({"data": 4, "fsdp": 2})
  local = {"x": np.arange(16 * 3, dtype=np.float32).reshape(16, 3), "y": np.arange(16)}
  batch = sharding.global_batch_from_process_local(local, mesh, RULES)
  assert batch["x"].shape == (16, 3)
  assert batch["x"].sharding.spec == P(("data", "fsdp"), None)
  assert len(batch["x"].addressable_shards) == 8
  np.testing.assert_array_equal(np.asarray(batch["x"]), local["x"])


def test_batch_size_check_is_clear():
  mesh = sharding.make_mesh({"data": 8})
  with pytest.raises(ValueError, match="divisible by the process count"):
    sharding.check_batch_size(12, mesh, RULES)
  report = sharding.batch_size_report(16, mesh, RULES)
  assert report["per_device_batch_size"] == 2 and report["per_process_batch_size"] == 16
