"""The one training loop. A paper supplies a `Task`; this file supplies everything else.

Order of work (each a section below): mesh and writers -> data -> abstract state and shardings ->
restore or init -> compile (memory and FLOPs reported before step 1) -> loop with periodic actions
(progress with steps/s and MFU, profiling, eval, checkpoint) -> final save.

Preemption: SIGTERM (and SIGINT) set a flag; the loop finishes the current step, saves a checkpoint,
waits for it to be written and returns cleanly. Rerunning the same command resumes from the workdir.
Reproducibility: the per-step key is fold_in(seed, step) and the data iterator state is checkpointed,
so a killed-and-resumed run is bit-identical to an uninterrupted one (tests/training/test_resume.py).
"""
from __future__ import annotations

import collections
import dataclasses
import json
import logging
import os
import signal
import time
from typing import Any

import jax
import ml_collections
import numpy as np
from clu import parameter_overview, periodic_actions

from zoo import sharding as zsharding
from zoo.training import checkpoints, metrics_io, optimizers, perf
from zoo.training import state as state_lib
from zoo.training.task import DataShard, Task, get_task


# Steps dispatched ahead of the device: enough to overlap host data work with compute, few enough that a
# preemption signal is honoured within a couple of steps.
MAX_STEPS_IN_FLIGHT = 2


class NonFiniteLossError(FloatingPointError):
  """Loss or gradients became NaN/inf."""


@dataclasses.dataclass
class RunResult:
  step: int
  preempted: bool
  last_metrics: dict[str, float]
  eval_metrics: dict[str, float]


class _StopFlag:
  """Records SIGTERM/SIGINT instead of dying mid-step; restores the old handlers afterwards."""

  def __init__(self):
    self.signal_name: str | None = None
    self._old = {}

  def __enter__(self):
    for sig in (signal.SIGTERM, signal.SIGINT):
      try:
        self._old[sig] = signal.signal(sig, self._handle)
      except ValueError:  # Not the main thread (e.g. inside some test runners): no handler then.
        pass
    return self

  def _handle(self, signum, frame):
    del frame
    self.signal_name = signal.Signals(signum).name
    logging.warning("Received %s: will checkpoint after the current step and exit.", self.signal_name)

  def __exit__(self, *exc):
    for sig, handler in self._old.items():
      signal.signal(sig, handler)


def _check_finite(state: state_lib.TrainState, ckpt: checkpoints.Checkpointer) -> None:
  bad = int(jax.device_get(state.first_nonfinite_step))
  if bad >= 0:
    ckpt.wait()
    last = ckpt.latest_step()
    kept = (f"The last good checkpoint (step {last}) in {ckpt.directory} is intact; resume from it with "
            "a lower learning rate or stronger clipping (config.optimizer.grad_clip_norm)."
            if last is not None else "No checkpoint had been written yet.")
    raise NonFiniteLossError(f"Loss or gradients became NaN/inf at step {bad + 1} (update {bad} was not "
                             f"applied). {kept}")


def _log_start(config, mesh, rules, spec, state, compiled, peak_flops, step_flops):
  logging.info("Config:\n%s", config)
  zsharding.log_mesh(mesh)
  for key, value in zsharding.batch_size_report(config.batch_size, mesh, rules).items():
    logging.info("%s: %s", key, value)
  if jax.process_index() == 0:
    logging.info("Parameters:\n%s", parameter_overview.get_parameter_overview(
        jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), state.params), include_stats=False))
  num_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(state.params))
  logging.info("Total parameters: %s", f"{num_params:,}")
  memory = perf.memory_report(compiled)
  if memory:
    logging.info("Compiled train step, per device: arguments %s, outputs %s, temporaries %s, code %s.",
                 *(perf.format_bytes(memory[k]) for k in ("argument_size_in_bytes", "output_size_in_bytes",
                                                          "temp_size_in_bytes",
                                                          "generated_code_size_in_bytes")))
  logging.info("Train step: %s FLOPs; machine f32 matmul peak %.1f GFLOP/s.",
               f"{step_flops:.3g}" if step_flops else "unknown", peak_flops / 1e9)
  return num_params


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       devices: list | None = None) -> RunResult:
  """Trains `config.task` in `workdir`, resuming from the newest readable checkpoint there.

  `devices` defaults to all devices; tests pass a subset to compare meshes of different sizes.
  """
  jax.config.update("jax_threefry_partitionable", True)
  workdir = os.path.abspath(workdir)
  os.makedirs(workdir, exist_ok=True)
  task: Task = get_task(config.task)

  # --- Mesh, writers --------------------------------------------------------------------------------
  mesh = zsharding.make_mesh(config.mesh.to_dict(), devices)
  rules = [tuple(rule) for rule in config.axis_rules]
  zsharding.check_batch_size(config.batch_size, mesh, rules)
  writer, jsonl = metrics_io.make_writers(workdir)
  if jax.process_index() == 0:
    with open(os.path.join(workdir, "config.json"), "w") as f:
      f.write(config.to_json_best_effort(indent=2, sort_keys=True))

  # --- Data ------------------------------------------------------------------------------------------
  shard = DataShard(jax.process_index(), jax.process_count())
  data_iter = iter(task.train_data(config, shard))

  # --- State: restore or init ---------------------------------------------------------------------------
  total_steps = int(config.total_steps)
  tx = optimizers.make_optimizer(config.optimizer, total_steps)
  schedule = optimizers.make_schedule(config.optimizer, total_steps)
  spec, abstract_state, shardings = state_lib.abstract_state_and_shardings(task, config, tx, mesh, rules)
  ckpt = checkpoints.Checkpointer(os.path.join(workdir, "checkpoints"), keep=config.checkpoint.keep,
                                  async_save=config.checkpoint.get("async_save", True))
  restored = ckpt.restore(abstract_state, data_iter)
  if restored is not None:
    step, state = restored
    logging.info("Resumed from %s at step %d.", ckpt.directory, step)
    if jsonl is not None:
      jsonl.truncate_after(step)
  else:
    step = 0
    state = state_lib.materialize_state(task, config, tx, mesh, shardings)
    logging.info("Initialised a fresh train state (seed %d).", config.seed)

  # --- Compile ------------------------------------------------------------------------------------------
  abstract_batch = task.abstract_batch(config)
  batch_shardings = jax.tree.map(
      lambda x: zsharding.batch_sharding(mesh, rules, len(x.shape), x.shape), abstract_batch)
  train_step = state_lib.jit_train_step(
      state_lib.make_train_step(task, spec, config, tx, schedule), shardings, batch_shardings, mesh)
  with jax.set_mesh(mesh):
    compiled = train_step.lower(abstract_state, abstract_batch).compile()
  peak_flops = perf.machine_peak_flops()
  step_flops = perf.compiled_flops(compiled)
  _log_start(config, mesh, rules, spec, state, compiled, peak_flops, step_flops)

  # --- Periodic actions ---------------------------------------------------------------------------------
  log_every = int(config.log_every_steps)
  eval_every = int(config.get("eval_every_steps", 0))
  ckpt_every = int(config.checkpoint.every_steps)
  progress = periodic_actions.ReportProgress(num_train_steps=total_steps, writer=writer,
                                             every_steps=log_every)
  hooks: list[Any] = [progress]
  if int(config.get("profile_every_steps", 0)) > 0 and jax.process_index() == 0:
    hooks.append(periodic_actions.Profile(logdir=workdir, num_profile_steps=3,
                                          every_steps=config.profile_every_steps))
  evaluators = task.evaluators(config)
  eval_metrics: dict[str, float] = {}

  def run_evals(current_step: int) -> dict[str, float]:
    if not evaluators:
      return {}
    model = state_lib.merge_model(spec, state_lib.eval_params(state), state.model_state)
    model.eval()
    results = {}
    with progress.timed("eval"), jax.set_mesh(mesh):
      for name, evaluator in evaluators.items():
        for key, value in evaluator(model, mesh).items():
          results[f"eval/{name}/{key}"] = float(value)
    writer.write_scalars(current_step, results)
    logging.info("Eval at step %d: %s", current_step, json.dumps(results, sort_keys=True))
    return results

  def save(current_step: int, force: bool = False) -> None:
    _check_finite(state, ckpt)  # Never persist a state that follows a NaN step.
    with progress.timed("checkpoint"):
      ckpt.save(current_step, state, data_iter, config, force=force)

  # --- Loop ---------------------------------------------------------------------------------------------
  last_metrics: dict[str, float] = {}
  preempted = False
  if step == 0 and config.get("eval_at_start", False):
    eval_metrics = run_evals(0)
  window_start, window_step = time.perf_counter(), step
  in_flight: collections.deque = collections.deque()
  with _StopFlag() as stop, jax.set_mesh(mesh):
    while step < total_steps:
      with jax.profiler.StepTraceAnnotation("train", step_num=step):
        local_batch = next(data_iter)
        batch = zsharding.global_batch_from_process_local(local_batch, mesh, rules)
        state, metrics = compiled(state, batch)
      # Bound the steps in flight: dispatch is asynchronous, and an unbounded queue would make a SIGTERM
      # (or a NaN check) wait for every queued step before the checkpoint (seen: 50 steps, ~150 s).
      in_flight.append(metrics["loss"])
      if len(in_flight) > MAX_STEPS_IN_FLIGHT:
        in_flight.popleft().block_until_ready()
      step += 1
      for hook in hooks:
        hook(step)
      if step % log_every == 0 or step == total_steps:
        last_metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
        _check_finite(state, ckpt)
        elapsed = time.perf_counter() - window_start
        steps_per_sec = (step - window_step) / max(elapsed, 1e-9)
        if step_flops:
          last_metrics["mfu"] = step_flops * steps_per_sec / peak_flops
        last_metrics["examples_per_sec"] = steps_per_sec * config.batch_size
        writer.write_scalars(step, last_metrics)
        logging.info("step %d/%d: loss %.5f, %.2f steps/s, MFU %.1f%% of the measured matmul peak",
                     step, total_steps, last_metrics["loss"], steps_per_sec,
                     100 * last_metrics.get("mfu", float("nan")))
        window_start, window_step = time.perf_counter(), step
      if eval_every and (step % eval_every == 0 or step == total_steps):
        eval_metrics = run_evals(step)
      if step % ckpt_every == 0 or step == total_steps:
        save(step)
      if stop.signal_name is not None:
        logging.warning("Stopping at step %d after %s; saving a checkpoint.", step, stop.signal_name)
        if step % ckpt_every and step != total_steps:
          save(step, force=True)
        preempted = True
        break
  ckpt.close()
  writer.flush()
  logging.info("Done at step %d. Metrics: %s; checkpoints: %s.", step,
               os.path.join(workdir, metrics_io.METRICS_FILE), ckpt.directory)
  return RunResult(step=step, preempted=preempted, last_metrics=last_metrics, eval_metrics=eval_metrics)


def restore_for_eval(config: ml_collections.ConfigDict, checkpoint_dir: str, *, step: int | None = None,
                     prefer_ema: bool = True, devices: list | None = None):
  """Builds the model on the current mesh and loads params only (EMA preferred).

  Returns (task, mesh, model, step, which) with which in {"ema_params", "params"}. `checkpoint_dir` may be
  an inference export (zoo/training/export.py); its model is rebuilt from the config stored with it.
  """
  from zoo.training import export
  if export.is_export(checkpoint_dir):
    _, task, mesh, model, restored_step, which = export.restore(checkpoint_dir, devices)
    return task, mesh, model, restored_step, which
  task = get_task(config.task)
  mesh = zsharding.make_mesh(config.mesh.to_dict(), devices)
  rules = [tuple(rule) for rule in config.axis_rules]
  tx = optimizers.make_optimizer(config.optimizer, int(config.total_steps))
  spec, abstract_state, _ = state_lib.abstract_state_and_shardings(task, config, tx, mesh, rules)
  ckpt = checkpoints.Checkpointer(checkpoint_dir, read_only=True)
  result = ckpt.restore_params(abstract_state.params, abstract_state.model_state, prefer_ema=prefer_ema,
                               step=step)
  if result is None:
    raise FileNotFoundError(f"No checkpoint found in {checkpoint_dir}; train first with "
                            "`python -m tools.train --config ... --workdir ...`.")
  restored_step, params, model_state, which = result
  model = state_lib.merge_model(spec, params, model_state)
  model.eval()
  return task, mesh, model, restored_step, which


def restore_trained_model(checkpoint_dir: str, *, step: int | None = None, prefer_ema: bool = True,
                          devices: list | None = None):
  """Restores a model from its checkpoint directory alone, rebuilt from the config saved beside it.

  For models another experiment consumes (W.A.L.T's frozen tokenizer, the frame classifier that scores
  samples): whatever flags trained them, the stored config rebuilds exactly that model.
  `checkpoint_dir` may also hold an inference export (zoo/training/export.py: params.npz + config.json).
  Returns (config, task, mesh, model, step, which).
  """
  from zoo.training import export
  if export.is_export(checkpoint_dir):
    return export.restore(checkpoint_dir, devices)
  if not os.path.isdir(checkpoint_dir):
    raise FileNotFoundError(f"No checkpoint found in {checkpoint_dir} (no such directory).")
  ckpt = checkpoints.Checkpointer(checkpoint_dir, read_only=True)
  if ckpt.latest_step() is None:
    raise FileNotFoundError(f"No checkpoint found in {checkpoint_dir}.")
  config = ckpt.restore_config(step)
  return (config, *restore_for_eval(config, checkpoint_dir, step=step, prefer_ema=prefer_ema, devices=devices))
