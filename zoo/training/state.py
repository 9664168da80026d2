"""Train state, abstract init with shardings, and the jitted train step (the one jit recipe).

Recipe (DESIGN.md, "Sharding"): abstract init with `nnx.eval_shape` -> logical axis names from the NNX
parameter metadata -> NamedShardings from the experiment's rules -> `jax.jit(init, out_shardings=...)` so
parameters are born sharded -> train step jitted with in/out shardings and the state donated.

Parameters live in the state as plain nested dicts (`nnx.to_pure_dict(state)`), which keeps orbax
checkpoints free of Flax classes; the step re-merges them with the model's graph definition.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable

import flax
import jax
import jax.numpy as jnp
import ml_collections
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from zoo import sharding as zsharding
from zoo.training import optimizers
from zoo.training.task import Task



@flax.struct.dataclass
class TrainState:
  step: jax.Array                 # int32 scalar: number of updates applied.
  params: Any                     # nested dict of nnx.Param values.
  model_state: Any                # nested dict of non-parameter variables (e.g. BatchNorm statistics).
  opt_state: Any
  ema_params: Any                 # exponential moving average of params, or None when disabled.
  first_nonfinite_step: jax.Array # int32 scalar: first step whose loss/grads were NaN/inf, -1 if none.


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """Everything static about the model: its graph and the logical axis names of its variables."""
  graphdef: Any
  abstract_params: Any
  abstract_model_state: Any
  logical_params: Any
  logical_model_state: Any


def _split(model: nnx.Module):
  if nnx.state(model, nnx.RngState):
    raise ValueError(
        "The model stores nnx.Rngs (e.g. Dropout(rngs=...)); the loop passes a fresh per-step key to the "
        "task's loss instead, which keeps training reproducible across restarts. Build the model without "
        "stored Rngs and pass `rngs=` at call time.")
  graphdef, params, model_state = nnx.split(model, nnx.Param, ...)
  return graphdef, params, model_state


def model_spec(task: Task, config: ml_collections.ConfigDict) -> ModelSpec:
  """Builds the model abstractly (no FLOPs, no memory) and records its variables' logical axes."""
  abstract_model = nnx.eval_shape(lambda: task.build_model(config, nnx.Rngs(config.seed)))
  graphdef, params, model_state = _split(abstract_model)
  return ModelSpec(
      graphdef=graphdef,
      abstract_params=jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), nnx.to_pure_dict(params)),
      abstract_model_state=jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype),
                                        nnx.to_pure_dict(model_state)),
      logical_params=nnx.to_pure_dict(nnx.get_partition_spec(params)),
      logical_model_state=nnx.to_pure_dict(nnx.get_partition_spec(model_state)),
  )


def merge_model(spec: ModelSpec, params: Any, model_state: Any) -> nnx.Module:
  return nnx.merge(spec.graphdef, params, model_state)


def _init_state(task: Task, config, tx: optax.GradientTransformation) -> TrainState:
  model = task.build_model(config, nnx.Rngs(config.seed))
  _, params, model_state = _split(model)
  params = nnx.to_pure_dict(params)
  use_ema = float(config.get("ema_decay", 0.0)) > 0
  return TrainState(
      step=jnp.zeros((), jnp.int32),
      params=params,
      model_state=nnx.to_pure_dict(model_state),
      opt_state=tx.init(params),
      ema_params=jax.tree.map(jnp.copy, params) if use_ema else None,
      first_nonfinite_step=jnp.full((), -1, jnp.int32),
  )


def state_shardings(spec: ModelSpec, abstract_state: TrainState, tx: optax.GradientTransformation,
                    mesh: Mesh, rules, flat_optimizer: bool = False) -> TrainState:
  """NamedShardings for every leaf of the train state.

  Parameters and EMA follow their logical names; optimizer leaves shaped like their parameter follow the
  parameter (Adam moments); other optimizer leaves (factored Adafactor statistics, counts) are replicated.
  With `flat_optimizer` (config.optimizer.flatten) every optimizer leaf is replicated, which needs
  replicated parameters.
  """
  repl = NamedSharding(mesh, P())
  param_sh = zsharding.logical_shardings(spec.abstract_params, spec.logical_params, mesh, rules)
  model_state_sh = zsharding.logical_shardings(spec.abstract_model_state, spec.logical_model_state,
                                               mesh, rules)
  if flat_optimizer:
    sharded = [jax.tree_util.keystr(path) for path, sh in jax.tree_util.tree_leaves_with_path(param_sh)
               if not sh.is_fully_replicated]
    if sharded:
      raise ValueError(
          f"config.optimizer.flatten=True needs replicated parameters, but the mesh {dict(mesh.shape)} and "
          f"axis rules shard {len(sharded)} of them (e.g. {sharded[0]}): the flat update would all-gather "
          "them every step. Set --config.optimizer.flatten=False for sharded (FSDP/tensor) runs.")
    opt_sh = jax.tree.map(lambda _: repl, abstract_state.opt_state)
  else:
    def opt_leaf(leaf, sharding, param):
      if hasattr(leaf, "shape") and tuple(leaf.shape) == tuple(param.shape):
        return sharding
      return repl

    opt_sh = optax.tree_map_params(
        tx, opt_leaf, abstract_state.opt_state, param_sh, spec.abstract_params,
        transform_non_params=lambda _: repl,
        is_leaf=lambda x: isinstance(x, jax.ShapeDtypeStruct))
  return TrainState(
      step=repl, params=param_sh, model_state=model_state_sh, opt_state=opt_sh,
      ema_params=None if abstract_state.ema_params is None else param_sh,
      first_nonfinite_step=repl)


def materialize_state(task: Task, config, tx, mesh: Mesh, shardings: TrainState) -> TrainState:
  """Runs the initialisers under jit so every array is born with its sharding (no host round trip)."""
  with jax.set_mesh(mesh):
    return jax.jit(lambda: _init_state(task, config, tx), out_shardings=shardings)()


def init_state(task: Task, config, tx, mesh: Mesh, rules) -> tuple[ModelSpec, TrainState, TrainState]:
  """Returns (model spec, initialised sharded state, its shardings)."""
  spec, _, shardings = abstract_state_and_shardings(task, config, tx, mesh, rules)
  return spec, materialize_state(task, config, tx, mesh, shardings), shardings


def abstract_state_and_shardings(task: Task, config, tx, mesh: Mesh, rules):
  """Like init_state but allocates nothing (for restore targets and AOT compilation)."""
  # Built with no ambient mesh: the variables' out_sharding names are *logical* axes, which a mesh set by
  # the caller (e.g. an evaluator restoring a second model, W.A.L.T's tokenizer) would read as mesh axes.
  with jax.set_mesh(None):
    spec = model_spec(task, config)
    abstract_state = jax.eval_shape(lambda: _init_state(task, config, tx))
  shardings = state_shardings(spec, abstract_state, tx, mesh, rules,
                              flat_optimizer=optimizers.is_flattened(config.optimizer))
  abstract_state = jax.tree.map(
      lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s), abstract_state, shardings)
  return spec, abstract_state, shardings


def _global_norm(tree) -> jax.Array:
  return optax.tree.norm(jax.tree.map(lambda x: x.astype(jnp.float32), tree))


def make_train_step(task: Task, spec: ModelSpec, config, tx: optax.GradientTransformation,
                    schedule: Callable[[jax.Array], jax.Array]) -> Callable:
  """The pure train step (state, batch) -> (state, metrics); jitted by the caller."""
  seed_key = jax.random.key(config.seed)
  ema_decay = float(config.get("ema_decay", 0.0))

  def train_step(state: TrainState, batch) -> tuple[TrainState, dict[str, jax.Array]]:
    # The step's randomness depends only on (seed, step): a resumed run replays it exactly.
    rng = jax.random.fold_in(seed_key, state.step)

    def loss_of(params):
      model = merge_model(spec, params, state.model_state)
      model.train()
      loss, metrics = task.loss_fn(model, batch, rng, state.step)
      new_model_state = nnx.to_pure_dict(nnx.state(model, nnx.Not(nnx.Param)))
      return loss, (metrics, new_model_state)

    (loss, (metrics, new_model_state)), grads = jax.value_and_grad(loss_of, has_aux=True)(state.params)
    grad_norm = _global_norm(grads)
    updates, new_opt_state = tx.update(grads, state.opt_state, state.params)
    new_params = optax.apply_updates(state.params, updates)
    new_ema = state.ema_params
    if new_ema is not None:
      # Warm-up (TF's ExponentialMovingAverage num_updates): decay min(d, (1 + n) / (10 + n)). Without it
      # a short run's EMA keeps d^n of the initial weights: 22% after 1500 steps at d = 0.999, which made a
      # 1500-step W.A.L.T demo's EMA sample worse than its raw parameters (frame FD 2801 vs 1341).
      updates_so_far = state.step.astype(jnp.float32)
      decay = jnp.minimum(ema_decay, (1.0 + updates_so_far) / (10.0 + updates_so_far))
      new_ema = jax.tree.map(lambda e, p: decay * e + (1.0 - decay) * p, new_ema, new_params)

    # A NaN/inf step is not applied: the state stays the last good one (so what gets checkpointed is
    # intact) and the offending step is recorded; the host raises at its next check.
    finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm)
    keep = lambda new, old: jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)
    first_bad = jnp.where(finite | (state.first_nonfinite_step >= 0), state.first_nonfinite_step,
                          state.step)
    new_state = TrainState(
        step=state.step + 1,
        params=keep(new_params, state.params),
        model_state=keep(new_model_state, state.model_state),
        opt_state=keep(new_opt_state, state.opt_state),
        ema_params=None if new_ema is None else keep(new_ema, state.ema_params),
        first_nonfinite_step=first_bad,
    )
    out_metrics = {
        "loss": loss.astype(jnp.float32),
        "grad_norm": grad_norm,
        "param_norm": _global_norm(state.params),
        "learning_rate": jnp.asarray(schedule(state.step), jnp.float32),
    }
    out_metrics.update({k: jnp.asarray(v, jnp.float32) for k, v in metrics.items()})
    return new_state, out_metrics

  return train_step


def jit_train_step(train_step: Callable, shardings: TrainState, batch_shardings: Any, mesh: Mesh):
  repl = NamedSharding(mesh, P())
  return jax.jit(train_step, in_shardings=(shardings, batch_shardings),
                 out_shardings=(shardings, repl), donate_argnums=(0,))


def eval_params(state: TrainState) -> Any:
  """EMA parameters when the run keeps them (they evaluate better for diffusion models), else params."""
  return state.params if state.ema_params is None else state.ema_params


def build_train_step(task: Task, config, mesh: Mesh, rules):
  """A freshly initialised state and its jitted train step, for benchmarks and compile checks.

  Returns (state, train_step, batch_shardings, abstract_batch): the same recipe tools/train.py runs.
  """
  tx = optimizers.make_optimizer(config.optimizer, int(config.total_steps))
  schedule = optimizers.make_schedule(config.optimizer, int(config.total_steps))
  spec, state, shardings = init_state(task, config, tx, mesh, rules)
  abstract_batch = task.abstract_batch(config)
  batch_shardings = jax.tree.map(
      lambda x: zsharding.batch_sharding(mesh, rules, len(x.shape), x.shape), abstract_batch)
  step = jit_train_step(make_train_step(task, spec, config, tx, schedule), shardings, batch_shardings, mesh)
  return state, step, batch_shardings, abstract_batch
