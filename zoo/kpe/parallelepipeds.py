"""The parallelepiped study: why a crop needs its position (paper Fig. 3 per the authors' README; `parallelepipeds/`).

Random parallelepipeds (square base of side 0.2, third edge of random length and direction) are translated to
a random off-axis position at depth 1 and projected by a pinhole with f = 192 and principal point 0. An MLP
maps the 8 projected 2D corners to the 8 3D corners, either *absolute* or *root-relative* (minus their mean).
Two inputs:

  * "centred":  2D corners minus their mean – the position in the image is discarded, as in a crop seen alone
                (the paper's baseline);
  * "absolute": 2D corners as they are – the position is kept (the KPE analogue).

Under perspective the same centred 2D shape is produced by different 3D shapes at different positions, so the
centred model cannot even fit its training data; the gap shrinks as the field of view (perspective) shrinks.

Protocol, following the authors' code: fresh batches of 32 from a seeded stream, inputs ÷ 1e4, MLP
16-64-128-128-128-128-24 (ReLU), MSE loss, AdamW (weight decay 0.01) at lr 1e-2 (absolute) / 1e-3 (relative),
÷10 after 2500 of 5000 steps; the metric is the mean Euclidean corner error. "Train error" is the mean over the
last training batches (the stream never repeats, so it is the error on data the model is fitting); validation
is a fixed set of 128. Pitfall kept from the authors' code: the translation is U(±tan(FOV)) per axis, so "FOV"
is the largest off-axis angle per axis, not the full field of view.

  python -m zoo.kpe.parallelepipeds --out /tmp/kpe_ppd          # PNG figure + JSON table
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

BASE_SIDE = 0.2
FOCAL_LENGTH = 192.0
INPUT_SCALE = 1e4
MLP_WIDTHS = (16, 64, 128, 128, 128, 128, 24)
# Unit-cube corners: base at z' = 0 (square, centred on the translation), top at z' = 1 along the third edge.
_UNIT_CORNERS = np.array([[x, y, z] for z in (0.0, 1.0) for (x, y) in ((-.5, -.5), (.5, -.5), (.5, .5), (-.5, .5))],
                         dtype=np.float32)                                                          # [8, 3]


def sample_parallelepipeds(key: jax.Array, batch_size: int, max_off_axis_deg: float | jax.Array) -> jax.Array:
  """[B, 8, 3] camera-frame corners of random parallelepipeds.

  Third edge r·(cos θ sin φ, sin θ sin φ, cos φ), r ~ U(1e-4, 1.2), θ ~ U(−π, π), φ ~ U(0, π/2); translation
  (tx, ty) ~ U(±tan FOV), tz = 1.
  """
  k_r, k_theta, k_phi, k_t = jax.random.split(key, 4)
  r = jax.random.uniform(k_r, (batch_size,), minval=1e-4, maxval=1.2)
  theta = jax.random.uniform(k_theta, (batch_size,), minval=-jnp.pi, maxval=jnp.pi)
  phi = jax.random.uniform(k_phi, (batch_size,), minval=0.0, maxval=jnp.pi / 2 - 1e-4)
  third_edge = r[:, None] * jnp.stack([jnp.cos(theta) * jnp.sin(phi), jnp.sin(theta) * jnp.sin(phi), jnp.cos(phi)],
                                      axis=-1)                                                    # [B, 3]
  xy_range = jnp.tan(jnp.deg2rad(max_off_axis_deg))
  txy = jax.random.uniform(k_t, (batch_size, 2), minval=-xy_range, maxval=xy_range)
  translation = jnp.concatenate([txy, jnp.ones((batch_size, 1))], axis=-1)                        # [B, 3]
  corners = jnp.asarray(_UNIT_CORNERS)
  edges_x = jnp.array([BASE_SIDE, 0.0, 0.0])
  edges_y = jnp.array([0.0, BASE_SIDE, 0.0])
  return (corners[None, :, 0:1] * edges_x + corners[None, :, 1:2] * edges_y
          + corners[None, :, 2:3] * third_edge[:, None, :] + translation[:, None, :])


def project(corners_3d: jax.Array, focal_length: float = FOCAL_LENGTH) -> jax.Array:
  """[..., 3] → [..., 2] pinhole projection with principal point 0."""
  return focal_length * corners_3d[..., :2] / corners_3d[..., 2:3]


def network_inputs(corners_2d: jax.Array, centred: bool | jax.Array) -> jax.Array:
  """[B, 8, 2] → [B, 16]: scaled 2D corners, minus their mean when `centred` (position discarded)."""
  x = corners_2d / INPUT_SCALE
  x = x - jnp.asarray(centred, x.dtype) * x.mean(axis=1, keepdims=True)
  return x.reshape(x.shape[0], -1)


def targets(corners_3d: jax.Array, root_relative: bool | jax.Array) -> jax.Array:
  """[B, 8, 3] absolute corners, or corners minus their mean when `root_relative`."""
  return corners_3d - jnp.asarray(root_relative, corners_3d.dtype) * corners_3d.mean(axis=1, keepdims=True)


def init_mlp(key: jax.Array) -> list[tuple[jax.Array, jax.Array]]:
  """PyTorch-default-style init (U(±1/√fan_in)) for the 16-64-128⁴-24 MLP."""
  params = []
  for key_i, (fan_in, fan_out) in zip(jax.random.split(key, len(MLP_WIDTHS) - 1), zip(MLP_WIDTHS, MLP_WIDTHS[1:])):
    k_w, k_b = jax.random.split(key_i)
    bound = 1.0 / np.sqrt(fan_in)
    params.append((jax.random.uniform(k_w, (fan_in, fan_out), minval=-bound, maxval=bound),
                   jax.random.uniform(k_b, (fan_out,), minval=-bound, maxval=bound)))
  return params


def apply_mlp(params, x: jax.Array) -> jax.Array:
  for i, (w, b) in enumerate(params):
    x = x @ w + b
    if i < len(params) - 1:
      x = jax.nn.relu(x)
  return x


def mean_corner_error(predicted: jax.Array, target: jax.Array) -> jax.Array:
  """Mean Euclidean distance over corners and batch: [B, 24] vs [B, 8, 3] → scalar."""
  return jnp.linalg.norm(predicted.reshape(target.shape) - target, axis=-1).mean()


@dataclasses.dataclass(frozen=True)
class RunSpec:
  """One training run; runs are batched with vmap, so every field is a number."""
  max_off_axis_deg: float
  centred: bool
  root_relative: bool
  seed: int

  @property
  def learning_rate(self) -> float:
    return 1e-3 if self.root_relative else 1e-2      # the authors' README settings


@functools.partial(jax.jit, static_argnames=("num_steps", "batch_size", "num_val", "log_every"))
def _train_runs(fov, centred, root_relative, lr, seed, *, num_steps: int, batch_size: int, num_val: int,
                log_every: int):
  """vmapped over runs: each argument is [R]. Returns train/val error curves [R, num_steps // log_every]."""
  transform = optax.chain(optax.scale_by_adam(), optax.add_decayed_weights(0.01))   # AdamW, torch default wd

  def one_run(fov, centred, root_relative, lr, seed):
    params = init_mlp(jax.random.fold_in(jax.random.key(seed), 1))
    opt_state = transform.init(params)
    val_corners = sample_parallelepipeds(jax.random.key(12345), num_val, fov)
    val_x, val_y = network_inputs(project(val_corners), centred), targets(val_corners, root_relative)
    data_key = jax.random.fold_in(jax.random.key(seed), 0)

    def loss_fn(params, x, y):
      out = apply_mlp(params, x)
      return jnp.mean((out - y.reshape(y.shape[0], -1)) ** 2), mean_corner_error(out, y)

    def step(carry, index):
      params, opt_state = carry
      corners = sample_parallelepipeds(jax.random.fold_in(data_key, index), batch_size, fov)
      x, y = network_inputs(project(corners), centred), targets(corners, root_relative)
      (_, error), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, x, y)
      updates, opt_state = transform.update(grads, opt_state, params)
      step_lr = jnp.where(index < num_steps // 2, lr, lr / 10)
      params = jax.tree.map(lambda p, u: p - step_lr * u, params, updates)
      return (params, opt_state), error

    def chunk(carry, chunk_index):
      carry, errors = jax.lax.scan(step, carry, chunk_index * log_every + jnp.arange(log_every))
      val_error = mean_corner_error(apply_mlp(carry[0], val_x), val_y)
      return carry, (errors.mean(), val_error)

    _, (train_curve, val_curve) = jax.lax.scan(chunk, (params, opt_state), jnp.arange(num_steps // log_every))
    return train_curve, val_curve

  return jax.vmap(one_run)(fov, centred, root_relative, lr, seed)


def train_runs(specs: list[RunSpec], num_steps: int = 5000, batch_size: int = 32, num_val: int = 128,
               log_every: int = 100) -> dict[str, np.ndarray]:
  """Trains every run in `specs` in one vmapped scan. Returns curves [R, num_steps // log_every] and steps."""
  as_array = lambda name, dtype: jnp.asarray([getattr(s, name) for s in specs], dtype)
  train_curve, val_curve = _train_runs(
      as_array("max_off_axis_deg", jnp.float32), as_array("centred", jnp.float32),
      as_array("root_relative", jnp.float32), as_array("learning_rate", jnp.float32), as_array("seed", jnp.int32),
      num_steps=num_steps, batch_size=batch_size, num_val=num_val, log_every=log_every)
  steps = (np.arange(num_steps // log_every) + 1) * log_every
  return dict(train=np.asarray(train_curve), val=np.asarray(val_curve), steps=steps)


def summarise(specs: list[RunSpec], curves: dict[str, np.ndarray], final_chunks: int = 5) -> list[dict]:
  """Table rows per (FOV, output, input): mean ± std over seeds of the final train error (mean of the last
  `final_chunks` logging chunks) and of the final validation error."""
  rows = {}
  for spec, train, val in zip(specs, curves["train"], curves["val"]):
    key = (spec.max_off_axis_deg, "root-relative" if spec.root_relative else "absolute",
           "centred" if spec.centred else "absolute")
    rows.setdefault(key, dict(train=[], val=[]))
    rows[key]["train"].append(float(train[-final_chunks:].mean()))
    rows[key]["val"].append(float(val[-1]))
  table = []
  for (fov, output, inputs), errors in sorted(rows.items(), key=lambda kv: (-kv[0][0], kv[0][1], kv[0][2])):
    table.append(dict(fov_deg=fov, output=output, input=inputs, seeds=len(errors["train"]),
                      train_mean=float(np.mean(errors["train"])), train_std=float(np.std(errors["train"])),
                      val_mean=float(np.mean(errors["val"])), val_std=float(np.std(errors["val"])),
                      train_per_seed=errors["train"], val_per_seed=errors["val"]))
  return table


def plot(specs: list[RunSpec], curves: dict[str, np.ndarray], fovs: list[float], path: str) -> None:
  """Fig. 3-style curves: rows = output type, columns = FOV; centred vs absolute input, train (solid) / val (dashed)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(2, len(fovs), figsize=(4 * len(fovs), 6.5), squeeze=False)
  colours = {False: "tab:blue", True: "tab:red"}
  for row, root_relative in enumerate((False, True)):
    for col, fov in enumerate(fovs):
      ax = axes[row, col]
      for centred in (False, True):
        idx = [i for i, s in enumerate(specs) if s.max_off_axis_deg == fov and s.root_relative == root_relative
               and s.centred == centred]
        label = "centred input (no position)" if centred else "absolute input (position, KPE-like)"
        for name, style in (("train", "-"), ("val", "--")):
          values = curves[name][idx]
          ax.plot(curves["steps"], values.mean(0), style, color=colours[centred],
                  label=f"{label}, {name}" if col == 0 and row == 0 else None)
          ax.fill_between(curves["steps"], values.min(0), values.max(0), color=colours[centred], alpha=0.15)
      ax.set_yscale("log")
      ax.set_title(f"{'root-relative' if root_relative else 'absolute'} 3D, FOV {fov:g}°")
      ax.set_xlabel("step")
      ax.set_ylabel("mean corner error")
  fig.legend(loc="lower center", ncol=2, fontsize=8)
  fig.tight_layout(rect=(0, 0.07, 1, 1))
  fig.savefig(path, dpi=80)
  plt.close(fig)


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", required=True, help="directory for parallelepipeds.png / parallelepipeds.json")
  parser.add_argument("--fovs", type=float, nargs="+", default=[70.0, 35.0, 10.0])
  parser.add_argument("--seeds", type=int, default=3)
  parser.add_argument("--steps", type=int, default=5000)
  parser.add_argument("--no-plot", action="store_true")
  args = parser.parse_args(argv)
  os.makedirs(args.out, exist_ok=True)
  specs = [RunSpec(fov, centred, root_relative, seed) for fov in args.fovs for root_relative in (False, True)
           for centred in (False, True) for seed in range(args.seeds)]
  start = time.time()
  curves = train_runs(specs, num_steps=args.steps)
  table = summarise(specs, curves)
  result = dict(command="python -m zoo.kpe.parallelepipeds " + " ".join(argv or []), steps=args.steps,
                seconds=round(time.time() - start, 1), table=table,
                curves=dict(steps=curves["steps"].tolist(), runs=[dict(dataclasses.asdict(s), train=t.tolist(),
                                                                         val=v.tolist())
                                                                    for s, t, v in zip(specs, curves["train"],
                                                                                       curves["val"])]))
  with open(os.path.join(args.out, "parallelepipeds.json"), "w") as f:
    json.dump(result, f, indent=1)
  if not args.no_plot:
    plot(specs, curves, args.fovs, os.path.join(args.out, "parallelepipeds.png"))
  print(f"{'FOV':>5} {'output':>13} {'input':>9} | train mean ± std | val mean ± std   ({result['seconds']} s)")
  for row in table:
    print(f"{row['fov_deg']:5g} {row['output']:>13} {row['input']:>9} | "
          f"{row['train_mean']:.4f} ± {row['train_std']:.4f} | {row['val_mean']:.4f} ± {row['val_std']:.4f}")


if __name__ == "__main__":
  import sys
  main(sys.argv[1:])
