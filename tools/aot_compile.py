"""Compile an experiment's real train step for a TPU pod topology from this (CPU) host.

  python -m tools.aot_compile --config experiments/core/digits_classifier.py --topology v5e:4x4
  python -m tools.aot_compile --config experiments/core/digits_classifier.py --topology v5p:4x4x8 \
      --config.batch_size=1024

Uses abstract TPU devices from `jax.experimental.topologies` (needs the `libtpu` package; no TPU, no
network). Builds the config's mesh and shardings on them, compiles the same jitted step tools/train.py
runs, and prints per-device argument/temporary bytes against the chip's HBM, FLOPs per step and XLA's
time estimate. Exit status 1 when the step does not fit, so a config that would OOM fails here, before
anyone pays for a pod.
"""
from __future__ import annotations

import argparse
import json
import math
import sys

from tools import _common

# HBM per chip (bytes). Public Cloud TPU specs.
HBM_BYTES = {
    "v2": 8 * 2**30, "v3": 16 * 2**30, "v4": 32 * 2**30, "v5e": 16 * 2**30, "v5litepod": 16 * 2**30,
    "v5p": 95 * 2**30, "v6e": 32 * 2**30,
}


def chip_hbm_bytes(topology: str) -> int:
  generation = topology.split(":")[0].lower()
  if generation not in HBM_BYTES:
    raise ValueError(f"Unknown TPU generation {generation!r} in {topology!r}; known: {sorted(HBM_BYTES)}.")
  return HBM_BYTES[generation]


def per_device_bytes(abstract_tree) -> int:
  """Bytes one device holds for a tree of sharded ShapeDtypeStructs."""
  total = 0
  for leaf in __import__("jax").tree.leaves(abstract_tree):
    shard_shape = leaf.sharding.shard_shape(leaf.shape) if leaf.sharding is not None else leaf.shape
    total += math.prod(shard_shape) * leaf.dtype.itemsize
  return total


def compile_for_topology(config, topology: str) -> dict:
  """Returns a report dict; raises nothing for "does not fit", which is reported in the dict."""
  import jax
  from jax.experimental import topologies
  from zoo import sharding as zsharding
  from zoo.training import optimizers, perf
  from zoo.training import state as state_lib
  from zoo.training.task import get_task

  # Kernel dispatch "auto" means "Pallas on TPU", but this host's backend is CPU: compile what the pod
  # will run.
  if "kernels" in config:
    with config.unlocked():
      for name, impl in config.kernels.items():
        if impl == "auto":
          config.kernels[name] = "pallas"
  topo = topologies.get_topology_desc(platform="tpu", topology_name=topology)
  devices = list(topo.devices)
  hbm = chip_hbm_bytes(topology)
  task = get_task(config.task)
  mesh = zsharding.make_mesh(config.mesh.to_dict(), devices=devices)
  rules = [tuple(rule) for rule in config.axis_rules]
  report = {"topology": topology, "num_devices": len(devices), "device_kind": devices[0].device_kind,
            "mesh": dict(mesh.shape), "hbm_per_device": hbm,
            "kernels": dict(config.kernels) if "kernels" in config else {}}
  zsharding.check_batch_size(config.batch_size, mesh, rules)
  total_steps = int(config.total_steps)
  tx = optimizers.make_optimizer(config.optimizer, total_steps)
  schedule = optimizers.make_schedule(config.optimizer, total_steps)
  spec, abstract_state, shardings = state_lib.abstract_state_and_shardings(task, config, tx, mesh, rules)
  report["num_params"] = sum(math.prod(x.shape) for x in jax.tree.leaves(abstract_state.params))
  state_bytes = per_device_bytes(abstract_state)
  report["state_bytes_per_device"] = state_bytes
  if state_bytes > hbm:
    report["fits"] = False
    report["reason"] = (f"the train state alone needs {perf.format_bytes(state_bytes)} per device, more "
                        f"than the {perf.format_bytes(hbm)} of HBM of a {topology.split(':')[0]} chip")
    return report
  abstract_batch = task.abstract_batch(config)
  batch_shardings = jax.tree.map(
      lambda x: zsharding.batch_sharding(mesh, rules, len(x.shape), x.shape), abstract_batch)
  abstract_batch = jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                                abstract_batch, batch_shardings)
  step = state_lib.jit_train_step(state_lib.make_train_step(task, spec, config, tx, schedule),
                                  shardings, batch_shardings, mesh)
  try:
    with jax.set_mesh(mesh):
      compiled = step.trace(abstract_state, abstract_batch).lower().compile()
  except Exception as e:  # XLA reports HBM exhaustion at compile time as RESOURCE_EXHAUSTED.
    if "RESOURCE_EXHAUSTED" in str(e) or "Ran out of memory" in str(e):
      report["fits"] = False
      report["reason"] = "the TPU compiler ran out of HBM: " + str(e).splitlines()[0][:400]
      return report
    raise
  memory = perf.memory_report(compiled)
  report.update(memory)
  needed = (memory.get("argument_size_in_bytes", 0) + memory.get("output_size_in_bytes", 0)
            - memory.get("alias_size_in_bytes", 0) + memory.get("temp_size_in_bytes", 0))
  report["peak_bytes_per_device"] = needed
  report["fits"] = needed <= hbm
  if not report["fits"]:
    report["reason"] = (f"arguments + outputs + temporaries need {perf.format_bytes(needed)} per device, "
                        f"more than {perf.format_bytes(hbm)} of HBM")
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else (cost or {})
  report["flops_per_step_per_device"] = float(cost.get("flops", 0.0))
  if float(cost.get("optimal_seconds", -1.0)) > 0:  # Negative means "no estimate" for some programs.
    report["xla_estimated_seconds_per_step"] = float(cost["optimal_seconds"])
  return report


def format_report(report: dict) -> str:
  from zoo.training.perf import format_bytes
  lines = [f"Topology {report['topology']}: {report['num_devices']} x {report['device_kind']}, "
           f"mesh {report['mesh']}",
           f"  parameters: {report.get('num_params', 0):,}",
           f"  kernels: {report.get('kernels') or 'n/a'}",
           f"  train state per device: {format_bytes(report['state_bytes_per_device'])}"]
  if "argument_size_in_bytes" in report:
    lines += [f"  arguments per device:   {format_bytes(report['argument_size_in_bytes'])}",
              f"  temporaries per device: {format_bytes(report['temp_size_in_bytes'])}",
              f"  peak per device:        {format_bytes(report['peak_bytes_per_device'])} of "
              f"{format_bytes(report['hbm_per_device'])} HBM "
              f"({100 * report['peak_bytes_per_device'] / report['hbm_per_device']:.1f}%)",
              f"  FLOPs per step per device: {report.get('flops_per_step_per_device', 0):.4g}"]
    if "xla_estimated_seconds_per_step" in report:
      lines.append(f"  XLA's estimated step time: {report['xla_estimated_seconds_per_step'] * 1e3:.3f} ms")
  lines.append("  FITS" if report["fits"] else f"  DOES NOT FIT: {report['reason']}")
  return "\n".join(lines)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  _common.add_config_flag(parser)
  parser.add_argument("--topology", required=True, help="e.g. v5e:4x4, v5e:16x16, v5p:4x4x8, v4:2x2x1")
  parser.add_argument("--json", default=None, help="Also write the report as JSON here.")
  args, config = _common.parse(parser, argv)
  _common.setup_logging()
  try:
    report = compile_for_topology(config, args.topology)
  except ValueError as e:
    parser.exit(2, f"error: {e}\n")
  print(format_report(report))
  if args.json:
    with open(args.json, "w") as f:
      json.dump(report, f, indent=2, default=str)
  return 0 if report["fits"] else 1


if __name__ == "__main__":
  sys.exit(main())
