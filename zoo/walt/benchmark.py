"""W.A.L.T stage-2 benchmark: train-step MFU, DDIM sampling cost and input-pipeline share, side by side.

    python -m tools.benchmark walt                                   # wired by tools/benchmark.py
    python -m tools.benchmark walt --config experiments/walt/video_moving_digits.py:tiny --steps 10
    python -m tools.benchmark walt --config experiments/walt/video_moving_digits.py:tiny \
        --config.optimizer.flatten=False                             # any key, as in tools/train.py
    python -m tools.benchmark walt --config experiments/walt/video_moving_digits.py:tiny \
        --versus optimizer.flatten=False --steps 20                  # A/B of the train step, interleaved
    python -m tools.benchmark walt --config experiments/walt/ucf101_xl.py --train-only \
        --config.batch_size=16                                       # a paper config's step (e.g. on a GPU)
    python -m tools.benchmark walt --config experiments/walt/video_moving_digits.py:tiny --train-only \
        --steps 150 --profile 50                                     # + the step's time by op kind (CPU)

Everything is measured in one run on this machine and reported as ratios:
  * train step (task walt.video_diffusion, built exactly like tools/benchmark.py core_benchmark, on random
    normal latents and random labels, videos only): XLA's FLOP count of the compiled step, steps/s and
    MFU against the f32 matmul peak (1024³) measured in the same run;
  * DDIM sampling (zoo.walt.diffusion_task.sample_normalised_latents, guidance 1, latents only: the
    tokenizer decode is NOT included) of one batch: seconds per video, and the ratio of the whole
    sampling call to `num_steps` forward passes of the same batch (≈ 1 means the sampler adds nothing
    over the denoiser calls);
  * the real grain input pipeline (diffusion_task.train_data over a latent cache encoded by an UNTRAINED
    tokenizer into a temporary directory, `data.max_videos` clips): time per `next(iterator)` as a share
    of the measured train-step time (goal < 5 %).

Models are freshly initialised (no checkpoint); their parameters get small Gaussian noise so adaLN-Zero's
zero-initialised outputs do not make the work trivially zero (it does not change the FLOPs).

What limits MFU (2-core CPU host, f32; measured 2026-11-26 on otherwise idle cores, 1024³ peak 211 GFLOP/s,
`python -m tools.benchmark walt [--config experiments/walt/video_moving_digits.py:tiny --steps 150]`):
  * demo (width 128, 6 layers, 4 heads of 32, batch 32 × 192 tokens): 41.0 % MFU (40.0 % by the hand
    count), 1.36 steps/s: meets the ≥ 30 % goal. The step is matmul work: XLA counts 63.9 GFLOP, the hand
    count (`analytic_step_flops`) 62.4, of which the dense projections (QKV, output, MLP: 24·d² per token
    and layer) are ~93 % and window attention (4·L·d, L = 64 or 48) ~7 %. The weight-gradient
    dot_generals of 5-D [B, t, h, w, d] activations went through transposes on XLA:CPU; on 2-D
    [B·t·h·w, d] tokens the dense stack ran forward+backward 1.8× faster, so every dense layer in
    transformer.py runs on flattened tokens (attention and MLP since 29aef43, the patch embedding and
    final projection since 24ccc53, where the 5-D form had XLA fuse the residual stream's whole backward
    pass into a transposing copy).
  * tiny (width 32, 2 layers, batch 4 × 192 tokens): 16.6 % MFU (14.5 % by the hand count), 6.3 ms per
    step; re-measured the next morning, also on idle cores: 19.1 % (16.6 % by hand), 5.7 ms; separate
    processes of the same step ranged 5.2–6.0 ms. **Below the ≥ 30 % goal** (an earlier "~23 %" here was
    measured against a peak halved by other jobs on the cores). Two ceilings: (1) its own matmuls, timed alone back to back in one program, run at
    40–55 % of the 1024³ rate forward ([768, 32] × [32, 32…128]), 45–69 % for the weight gradients and
    30–34 % for the 16-dim attention scores (so even a step of nothing but its matmuls would sit near
    45 %); (2) the rest of the step is ~2,500 thunk executions (profiled before the changes below), most
    of them tiny elementwise ops (LayerNorm, modulate, gates, softmax, GELU, the diffusion noise's
    threefry loop, AdamW, EMA), each costing microseconds of dispatch and memory traffic, together about
    as long as the matmuls.
    Landed for it: config.optimizer.flatten (one concatenated AdamW update; the tiny config uses it) and
    the flattened patch embedding / final projection: in one process, interleaved, the step went from
    6.64 to 5.92 ms (−7.7 % for the flat optimizer, −3.5 % more for the flattened projections, the
    latter timed against the previous commit's 5-D form patched in); `--versus optimizer.flatten=False`
    reproduces the first (5.82 vs 6.22 ms, −6.4 %, in a second run).
    Timing as the training loop runs steps (dispatch of step n+1 overlapping step n) vs waiting for each
    step changes little on idle cores (5.9 vs 6.2 ms) but much on loaded ones (9.3 vs 12.3 ms with the
    per-leaf optimizer and a training job on the cores), so the benchmark reports both.
    Tried and not landed: gating the optimizer update behind one `lax.cond` instead of a per-leaf `where`
    (1137 → 983 top-level HLO instructions, no timing gain); applying the EMA and the NaN guard on flat
    vectors too (slower than the flat optimizer alone: the split back into parameter leaves costs more than
    the per-leaf ops it removes: 9.4 vs 9.0 ms); disabling YNNPACK fusions
    (`--xla_cpu_experimental_ynn_fusion_type=`: 12.5 vs 9.1 ms). Those three were timed with a training job on
    the cores. On idle cores, one process each: other XLA:CPU flags (concurrency-optimised scheduler 17.9 %,
    `--xla_cpu_multi_thread_eigen=false` 18.9 %, `--xla_cpu_use_fusion_emitters=false` 16.6 %, against
    19.7–20.1 % without; `--xla_cpu_use_multi_output_fusion` and `--xla_cpu_flatten_after_fusion` crash);
    jax's unrolled threefry lowering instead of the rolled CPU loop (6.1–7.3 vs 5.2–6.0 ms per step).
    Tried on 2026-11-26 (fourth session), `--train-only --steps 150`, one process each, idle cores: the
    XLA:CPU library-fusion flags, `XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type=X` with X =
    `dot,eltwise` 12.3 %, `dot,eltwise,reduce` 13.5 %, `individual_dot` 15.0 %, `dot` 12.3 %,
    `individual_dot,reduce` 18.3 %; XNNPACK or oneDNN dots in place of YNNPACK (X empty, plus
    `--xla_cpu_experimental_xnn_fusion_type=individual_dot`, or `--xla_cpu_use_onednn=true
    --xla_cpu_experimental_onednn_fusion_type=individual_dot`) 14.2 / 14.1 %; `JAX_DEFAULT_PRNG_IMPL=rbg`
    / `unsafe_rbg` 19.8 / 19.3 %; against 19.4 % with the defaults. On the demo (`--train-only --steps
    20`), X = `individual_dot` is 2.7x slower (15.0 vs 41.2 %).

Where the step's time goes, by op kind (`--profile 50`, zoo/training/op_profile.py: XLA:CPU's per-op
profiler events summed per kind; 2026-11-26, idle cores, two runs of the tiny config and one of the demo):

| config | MFU | matmul/conv ops | data movement | elementwise | MFU if only the matmuls took time |
|---|---|---|---|---|---|
| tiny (75 matmul, 201 movement, 511 elementwise ops per step) | 20.2–20.3 % | 42–44 % | 10–12 % | 46 % | 46–48 % |
| demo (162 / 940 / 1353 ops) | 38.5 % | 49.5 % | 19.1 % | 31.3 % | 78 % |

(Fusions that contain a dot count as matmul/conv, including the LayerNorm, modulation and bias work that
YNNPACK fuses around the dots, so the matmul share and the last column are upper estimates: in the tiny
step the forward matmul ops (both passes: the self-conditioning estimate and the denoiser) take 26 % of op
time and the backward ones, with the same FLOPs, 18 %: the table's phase columns.)
So for the tiny config to reach 30 % MFU the non-matmul ops would have to lose about 57 % of their time
(from ~0.57 of today's step time to ~0.25), with no single op above 2 % of the step to aim at:
the largest are the relative-bias broadcast into the YNNPACK attention fusion ([12, 2, 64, 64] and
[16, 2, 48, 48], ~1.5 % each), the tanh-GELU forward and backward on [768, 128] (~3 % together) and the
optimizer's copy of the flat first moment (~1 %). And the matmuls themselves, at these shapes, run at
40–55 % of the 1024³ rate (above), which caps the step near the bound in the last column. On the demo,
YNNPACK's graph fusions materialise their broadcast operands (the MLP bias and the tanh-GELU constants as
full [6144, 512] tensors, ~6 ms each, 10 per step). Putting `lax.optimization_barrier` on the MLP's
first projection (`Mlp.__call__` patched to `gelu(optimization_barrier(self.fc1(flat)))`) moved GELU out
of the fusion but did not change the step time (`--train-only --steps 12`, patched and unpatched
processes alternating, two each: 38.4 / 42.5 % against 39.4 / 40.5 %), so it was not landed.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from zoo import paths

DEFAULT_CONFIG = "experiments/walt/video_moving_digits.py:demo"


def load_config(spec: str = DEFAULT_CONFIG, overrides=()):
  """The W.A.L.T experiment config; the tokenizer's config spec is resolved against the repository too."""
  from zoo import config as zconfig
  path, sep, arg = spec.partition(":")
  config = zconfig.load_config(paths.resolve(path) + sep + arg, list(overrides))
  tok_path, sep, tok_arg = config.tokenizer.config.partition(":")
  with config.unlocked():
    config.tokenizer.config = paths.resolve(tok_path) + sep + tok_arg
  return config


def _random_batch(config, abstract_batch, seed: int = 0) -> dict[str, np.ndarray]:
  """Random normal latents, random labels in [0, num_classes), all videos (is_image False)."""
  rng = np.random.default_rng(seed)
  latents = abstract_batch["latents"]
  labels = abstract_batch["label"]
  return {"latents": rng.standard_normal(latents.shape).astype(latents.dtype),
          "label": rng.integers(0, config.data.num_classes, labels.shape).astype(labels.dtype),
          "is_image": np.zeros(abstract_batch["is_image"].shape, np.bool_)}


def analytic_step_flops(config) -> float:
  """Matmul FLOPs of one train step counted by hand (cross-check of XLA's count): per token and forward,
  the patch embedding, per layer QKV + output + MLP projections and window attention (QKᵀ and AV,
  4·L·d for windows of L tokens), and the final projection; a train step is 3 forwards' worth (forward +
  backward) plus one more for the self-conditioning estimate. The per-example conditioning MLPs
  (timestep, class, adaLN) and all elementwise work are left out."""
  from zoo.walt import diffusion_task
  tc = diffusion_task.transformer_config(config)
  t, h, w = tc.grid
  tokens = t * h * w
  d, p = tc.width, tc.patch_size
  hidden = int(d * tc.mlp_ratio)
  per_token = 2 * p * p * tc.input_channels * d + 2 * d * p * p * tc.latent_channels
  for layer in range(tc.depth):
    window = int(np.prod(tc.window(layer)))
    per_token += 2 * d * 3 * d + 2 * d * d + 2 * 2 * d * hidden + 4 * window * d
  forwards = 3 + (1 if tc.self_condition else 0)
  return float(forwards * config.batch_size * tokens * per_token)


def compiled_train_step(config, devices=None, warmup: int = 2):
  """The task's train step compiled on a fresh state and a `_random_batch`, run `warmup` times (the first
  call also allocates the donated buffers). Returns (compiled step, state, batch, mesh, last metrics)."""
  from zoo import sharding as zsharding
  from zoo.training import state as state_lib
  from zoo.training.task import get_task

  mesh = zsharding.make_mesh(config.mesh.to_dict(), devices)
  state, step, batch_sh, abstract_batch = state_lib.build_train_step(
      get_task(config.task), config, mesh, [tuple(r) for r in config.axis_rules])
  batch = jax.tree.map(jax.device_put, _random_batch(config, abstract_batch), batch_sh)
  metrics = None
  with jax.set_mesh(mesh):
    compiled = step.lower(state, batch).compile()
    for _ in range(warmup):
      state, metrics = compiled(state, batch)
    jax.block_until_ready(state)
  return compiled, state, batch, mesh, metrics


def train_step_benchmark(config, steps: int = 20, devices=None, rounds: int = 3) -> dict:
  """Compiled train step: {step_gflop (XLA), analytic_gflop, step_seconds, steps_per_sec, matmul_peak_gflops,
  mfu, mfu_analytic (the hand count's matmul FLOPs instead of XLA's), step_latency_seconds, mfu_blocking}.

  Built like tools/benchmark.py core_benchmark. Throughput (`step_seconds`, `steps_per_sec`, `mfu`) is
  timed the way zoo/training/loop.py runs steps: dispatched asynchronously with at most
  loop.MAX_STEPS_IN_FLIGHT outstanding (perf.time_pipelined_steps), so the host's dispatch of one step
  (flattening the state's leaves, ~1 ms at the tiny config) overlaps the previous step's work. Latency
  (`step_latency_seconds`, `mfu_blocking`) waits for each step before dispatching the next. The cores may
  be shared with other processes, so each of `rounds` rounds measures the matmul peak
  (perf.measure_matmul_peak, best of 5), a pipelined block of steps and a blocking block;
  MFU = XLA FLOPs / median step time / median peak.
  """
  from zoo.training import loop, perf

  compiled, state, batch, mesh, metrics = compiled_train_step(config, devices)
  rounds = max(1, min(rounds, steps))
  # The peak of the dtype the model's matmuls run in (bf16 for the paper configs), at the size that
  # reaches this backend's rate.
  peak_dtype = jnp.dtype(config.model.get("dtype", "float32"))
  peak_size = perf.peak_matmul_size()
  peaks, pipelined, latencies = [], [], []
  with jax.set_mesh(mesh):
    for r in range(rounds):
      peaks.append(perf.measure_matmul_peak(peak_size, peak_dtype))
      block = steps // rounds + (r < steps % rounds)
      state, seconds = perf.time_pipelined_steps(compiled, state, batch, block, loop.MAX_STEPS_IN_FLIGHT)
      pipelined.append(seconds)
      for _ in range(block):
        start = time.perf_counter()
        state, metrics = compiled(state, batch)
        jax.block_until_ready(state)
        latencies.append(time.perf_counter() - start)
  seconds = statistics.median(pipelined)
  latency = statistics.median(latencies)
  peak = statistics.median(peaks)
  flops = perf.compiled_flops(compiled) or 0.0
  analytic = analytic_step_flops(config)
  return {"matmul_peak_gflops": peak / 1e9, "peak_matmul": f"{peak_dtype.name} {peak_size}³",
          "step_gflop": flops / 1e9,
          "analytic_gflop": analytic / 1e9, "step_seconds": seconds,
          "steps_per_sec": 1 / seconds, "mfu": flops / seconds / peak, "mfu_analytic": analytic / seconds / peak,
          "step_latency_seconds": latency,
          "mfu_blocking": flops / latency / peak, "loss": float(metrics["loss"]),
          "batch_size": int(config.batch_size), "latent_shape": tuple(batch["latents"].shape[1:])}


def interleaved_step_times(configs: dict, rounds: int = 10, steps_per_round: int = 1, devices=None) -> dict:
  """Train-step time of several configs measured in one process, round-robin: each round runs
  `steps_per_round` steps of every config, dispatched like the training loop (perf.time_pipelined_steps),
  so load from other processes hits all of them alike. Returns {name: {"step_seconds" (median over
  rounds), "step_gflop" (XLA)}} in the order of `configs`."""
  from zoo.training import loop, perf

  runs = {}
  for name, config in configs.items():
    compiled, state, batch, mesh, _ = compiled_train_step(config, devices, warmup=1)
    runs[name] = {"compiled": compiled, "state": state, "batch": batch, "mesh": mesh, "times": []}
  for _ in range(rounds):
    for run in runs.values():
      with jax.set_mesh(run["mesh"]):
        run["state"], seconds = perf.time_pipelined_steps(run["compiled"], run["state"], run["batch"],
                                                          steps_per_round, loop.MAX_STEPS_IN_FLIGHT)
      run["times"].append(seconds)
  return {name: {"step_seconds": statistics.median(run["times"]),
                 "step_gflop": (perf.compiled_flops(run["compiled"]) or 0.0) / 1e9} for name, run in runs.items()}


def profile_train_step(config, steps: int = 50, devices=None):
  """op_profile.OpBreakdown of the compiled train step over `steps` steps, each waited for (CPU only)."""
  from zoo.training import op_profile
  compiled, state, batch, mesh, _ = compiled_train_step(config, devices)
  holder = {"state": state}

  def run():
    with jax.set_mesh(mesh):
      for _ in range(steps):
        holder["state"], _ = compiled(holder["state"], batch)
        jax.block_until_ready(holder["state"])

  return op_profile.op_time_breakdown(compiled, run, steps)


def _perturbed_model(config, seed: int = 0, scale: float = 0.02):
  """A freshly initialised LatentDiffusion with N(0, scale²) noise (drawn on the host: no extra compiled
  programs) added to every parameter."""
  from zoo.walt import diffusion_task
  model = diffusion_task.build_model(config, nnx.Rngs(seed))
  rng = np.random.default_rng(seed)
  params = nnx.state(model, nnx.Param)
  nnx.update(model, jax.tree.map(
      lambda x: jnp.asarray(np.asarray(x) + scale * rng.standard_normal(x.shape), x.dtype), params))
  model.eval()
  return model


def sampling_benchmark(config, batch_size: int = 8, num_steps: int = 50, repeats: int = 2) -> dict:
  """DDIM sampling of one batch of latent videos (no tokenizer decode) against `num_steps` forward passes.

  Returns {seconds_per_video, sample_seconds, forward_seconds, sampling_over_forwards}; times are medians.
  """
  from zoo.walt import diffusion_task
  from zoo.walt import model as walt_model
  model = _perturbed_model(config)
  settings = diffusion_task.SamplerSettings(num_steps=num_steps)
  labels = (np.arange(batch_size) % config.data.num_classes).astype(np.int32)
  key = jax.random.key(0)

  def sample():
    return diffusion_task.sample_normalised_latents(model, labels, key, settings, batch_size=batch_size)

  # One forward of the denoiser as the sampler calls it (conditional only: guidance scale 1).
  tc = model.transformer.config
  shape = (batch_size, tc.latent_frames, tc.latent_size, tc.latent_size, tc.latent_channels)
  graphdef, state = nnx.split(model.transformer)

  @jax.jit
  def forward(state, x, t, labels):
    transformer = nnx.merge(graphdef, state)
    condition = walt_model.frame_condition(jnp.zeros_like(x), jnp.zeros(x.shape[:1], jnp.int32))
    return transformer(x, t, labels, self_condition=x if tc.self_condition else None,
                       frame_condition=condition if tc.frame_prediction else None)

  x = jax.random.normal(key, shape)
  t = jnp.full((batch_size,), 500, jnp.int32)
  jlabels = jnp.asarray(labels)
  out = sample()  # Compiles.
  forward(state, x, t, jlabels).block_until_ready()
  sample_times, forward_times = [], []
  for _ in range(repeats):  # Interleaved, so load from other processes hits both alike.
    start = time.perf_counter()
    out = sample()
    sample_times.append(time.perf_counter() - start)
    start = time.perf_counter()
    for _ in range(num_steps):
      y = forward(state, x, t, jlabels)
    y.block_until_ready()
    forward_times.append((time.perf_counter() - start) / num_steps)
  sample_seconds = statistics.median(sample_times)
  forward_seconds = statistics.median(forward_times)
  return {"batch_size": batch_size, "num_steps": num_steps, "sample_seconds": sample_seconds,
          "seconds_per_video": sample_seconds / batch_size, "forward_seconds": forward_seconds,
          "sampling_over_forwards": sample_seconds / (num_steps * forward_seconds),
          "finite": bool(np.isfinite(out).all())}


def input_pipeline_benchmark(config, step_seconds: float, batches: int = 50, warmup: int = 5,
                             max_videos: int = 64, cache_dir: str | None = None) -> dict:
  """Time per batch of the real grain loader (diffusion_task.train_data) as a share of `step_seconds`.

  The latent cache is encoded by an untrained tokenizer (fine for timing; its latents mean nothing) into
  `cache_dir` (a temporary directory when None). `next()` is called back to back, so the loader's
  prefetch threads cannot hide behind a train step: the mean is its production cost per batch.
  Returns {batch_seconds, step_seconds, percent_of_step, setup_seconds (cache encoding, not timed)}.
  """
  from zoo.training.task import DataShard
  from zoo.walt import diffusion_task
  with tempfile.TemporaryDirectory(prefix="walt_bench_latents_") as tmp:
    config = config.copy_and_resolve_references()
    with config.unlocked():
      config.tokenizer.workdir = ""
      config.tokenizer.allow_untrained = True
      config.data.latent_cache_dir = cache_dir or tmp
      config.data.max_videos = max_videos
    start = time.perf_counter()
    iterator = iter(diffusion_task.train_data(config, DataShard(0, 1)))
    for _ in range(warmup):
      next(iterator)
    setup_seconds = time.perf_counter() - start
    times = []
    for _ in range(batches):
      start = time.perf_counter()
      batch = next(iterator)
      times.append(time.perf_counter() - start)
  batch_seconds = sum(times) / len(times)  # Mean: with prefetching, single next() calls are bursty.
  return {"batch_seconds": batch_seconds, "step_seconds": step_seconds,
          "percent_of_step": 100 * batch_seconds / step_seconds, "batches": batches,
          "setup_seconds": setup_seconds, "batch_shape": tuple(batch["latents"].shape)}


def run(config, steps: int = 20, sample_batch: int = 8, sample_steps: int = 50, sample_repeats: int = 2,
        pipeline_batches: int = 50, max_videos: int = 64, devices=None) -> dict:
  """All three measurements on one config: {"train": ..., "sampling": ..., "pipeline": ...}."""
  train = train_step_benchmark(config, steps, devices=devices)
  sampling = sampling_benchmark(config, sample_batch, sample_steps, sample_repeats)
  pipeline = input_pipeline_benchmark(config, train["step_seconds"], pipeline_batches, max_videos=max_videos)
  return {"train": train, "sampling": sampling, "pipeline": pipeline}


def format_train(tr: dict) -> str:
  """The train-step line of the table."""
  return (f"{tr['step_gflop']:.2f} GFLOP/step (XLA; {tr['analytic_gflop']:.2f} counted by hand), "
          f"{tr['steps_per_sec']:.2f} steps/s, MFU {100 * tr['mfu']:.1f}% of the measured peak "
          f"({tr['matmul_peak_gflops']:.1f} GFLOP/s {tr['peak_matmul']} matmul; {100 * tr['mfu_analytic']:.1f}% by "
          f"the hand count) as the training loop dispatches steps; waiting for each step: "
          f"{1e3 * tr['step_latency_seconds']:.1f} ms, MFU {100 * tr['mfu_blocking']:.1f}%; batch "
          f"{tr['batch_size']} × latents {tr['latent_shape']}"
          + ("" if jax.default_backend() == "cpu" else
             " (on a GPU read the hand count: XLA's count of a W.A.L.T-XL step on an H200 was 1/40 of it)"))


def _header(name: str) -> str:
  return (f"W.A.L.T {name} on {jax.default_backend()} ({len(jax.devices())} device(s), {os.cpu_count()} CPU "
          f"cores, load average {os.getloadavg()[0]:.1f}: other processes share these cores)")


def format_table(result: dict, name: str) -> str:
  tr, sa, pi = result["train"], result["sampling"], result["pipeline"]
  train = format_train(tr)
  sampling = (f"{sa['seconds_per_video']:.3f} s/video (batch {sa['batch_size']}, latents only, no tokenizer "
              f"decode); sampling / ({sa['num_steps']} × one batch forward) = {sa['sampling_over_forwards']:.2f}")
  pipeline = (f"{1e3 * pi['batch_seconds']:.2f} ms/batch of {pi['batch_shape']} = "
              f"{pi['percent_of_step']:.2f}% of the train step (goal < 5%)")
  rows = [("train step", train), (f"DDIM-{sa['num_steps']} sampling", sampling), ("input pipeline", pipeline)]
  width = max(len(r[0]) for r in rows)
  lines = [_header(name)]
  lines += [f"  {label:<{width}}  {text}" for label, text in rows]
  return "\n".join(lines)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="benchmark walt", description=__doc__.splitlines()[0])
  parser.add_argument("--config", default=DEFAULT_CONFIG,
                      help="experiment spec (file.py:args); override keys with --config.key=value")
  parser.add_argument("--steps", type=int, default=20, help="timed train steps")
  parser.add_argument("--sample-batch", type=int, default=8, help="videos per DDIM batch")
  parser.add_argument("--sample-steps", type=int, default=50, help="DDIM steps")
  parser.add_argument("--sample-repeats", type=int, default=2)
  parser.add_argument("--pipeline-batches", type=int, default=50)
  parser.add_argument("--max-videos", type=int, default=64, help="clips encoded into the temporary latent cache")
  parser.add_argument("--versus", default="",
                      help="key=value[,key=value]: instead of the full benchmark, time the train step of the "
                           "config against the config with these overrides, interleaved in one process")
  parser.add_argument("--rounds", type=int, default=30, help="interleaved rounds for --versus")
  parser.add_argument("--profile", type=int, default=0, metavar="STEPS",
                      help="also trace STEPS train steps and break the step's time down by XLA:CPU op kind "
                           "(matmul/conv, data movement, elementwise; zoo/training/op_profile.py); CPU only")
  parser.add_argument("--train-only", action="store_true",
                      help="only the train step (no sampling, no input pipeline): needs no tokenizer or data, "
                           "so it also runs the paper configs, e.g. experiments/walt/ucf101_xl.py on a GPU")
  from tools import _common
  from zoo import config as zconfig
  from zoo.training import op_profile
  args, config = _common.parse(parser, argv, load=load_config)
  if args.profile and args.versus:
    parser.exit(2, "error: --profile breaks down the train step of a plain or --train-only run; "
                   "drop it or --versus.\n")
  if args.profile and jax.default_backend() != "cpu":
    parser.exit(2, f"error: --profile breaks the step down by XLA:CPU op; this backend is "
                   f"{jax.default_backend()}. Use jax.profiler.trace and TensorBoard or Perfetto there.\n")
  if args.versus:
    other = config.copy_and_resolve_references()
    try:
      zconfig.apply_overrides(other, args.versus.split(","))
    except zconfig.ConfigError as e:
      parser.exit(2, f"error: {e}\n")
    times = interleaved_step_times({"config": config, "versus": other}, rounds=args.rounds,
                                   steps_per_round=args.steps)
    a, b = times["config"]["step_seconds"], times["versus"]["step_seconds"]
    print(f"{args.config}: {1e3 * a:.2f} ms/step; with {args.versus}: {1e3 * b:.2f} ms/step; "
          f"ratio {a / b:.3f} (medians of {args.rounds} interleaved rounds of {args.steps} steps, one process)")
    return 0
  if args.train_only:
    print(_header(args.config.rpartition("/")[2]))
    train = train_step_benchmark(config, args.steps)
    print(f"  train step  {format_train(train)}")
  else:
    result = run(config, args.steps, args.sample_batch, args.sample_steps, args.sample_repeats,
                 args.pipeline_batches, args.max_videos)
    print(format_table(result, args.config.rpartition("/")[2]))
    train = result["train"]
  if args.profile:
    print(op_profile.format_breakdown(profile_train_step(config, args.profile), train["mfu"]))
  return 0
