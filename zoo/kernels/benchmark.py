"""Side-by-side benchmark of the kernels' CPU/GPU paths against their peers (issue 4).

    python -m tools.benchmark kernels            # wired by tools/benchmark.py
    python -c "from zoo.kernels import benchmark; benchmark.main([])"
    # on a GPU, bf16, paper-sized conv (what zoo/kernels/README.md's GPU table ran):
    python -m tools.benchmark kernels --dtype bfloat16 --batch 8 --heads 16 --head-dim 72 \
        --conv-shape 1 17 128 128 128 --conv-out 128

Everything is measured in one run on this machine, so the ratios compare like with like:
  * window attention (our impl="auto" path, i.e. XLA on CPU) vs a plain XLA windowed
    `jax.nn.dot_product_attention`, vs full attention over all tokens (`jax.nn.dot_product_attention`
    on T*H*W tokens, cost quadratic in frames), vs PyTorch `scaled_dot_product_attention` on the same
    windows (when torch is importable, same thread count);
  * causal conv3d (our impl="auto" path: the chunked im2col/GEMM on CPU, cuDNN's convolution on GPU)
    vs `lax.conv_general_dilated` and torch `conv3d`
    (same causal padding), plus a matmul for the machine's GEMM peak.
On a GPU, torch runs on the same GPU (synchronised after every call); where our impl="auto" picks
cuDNN's fused attention (16-bit inputs) the einsum XLA path gets a column of its own ("xla").
Forward and forward+backward; times are medians over --repeats rounds in which every candidate
runs once (round-robin, after one warm-up each), so load from other processes hits all alike.
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from zoo.kernels.causal_conv3d import causal_conv3d
from zoo.kernels.causal_conv3d.reference import causal_padding
from zoo.kernels.window_attention import resolve_impl as window_attention_impl
from zoo.kernels.window_attention import window_attention
from zoo.kernels.window_attention import reference as attention_reference


def _interleaved_medians(runners, repeats):
  """{name: median seconds}. Runs every candidate once per round, round-robin, after one warm-up
  each: on a machine whose cores are shared, load spikes then hit all candidates alike and the
  ratios stay meaningful even when absolute times drift. A runner blocks until its result is ready
  (jax.block_until_ready for JAX; torch synchronises itself). A peer that fails its warm-up (e.g.
  cuDNN refusing a shape) is reported and left out; "ours" failing is an error."""
  for name, run in list(runners.items()):
    try:
      run()
    except Exception as e:  # noqa: BLE001 -- a peer's failure is a table entry, not a crash
      if name == "ours":
        raise
      print(f"  [{name} left out: {type(e).__name__}: {str(e).splitlines()[0][:160]}]")
      runners = {key: value for key, value in runners.items() if key != name}
  times = {name: [] for name in runners}
  for _ in range(repeats):
    for name, run in runners.items():
      start = time.perf_counter()
      run()
      times[name].append(time.perf_counter() - start)
  return {name: statistics.median(values) for name, values in times.items()}


def _jax_runner(fn, *args):
  return lambda: jax.block_until_ready(fn(*args))


def _import_torch():
  """(torch module or None, torch device string): torch on the GPU when JAX runs on one."""
  # Idle OpenMP workers of torch otherwise spin for a while after each parallel region and steal the
  # cores from whichever JAX candidate runs next in the round-robin; passive waiting avoids that.
  os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
  try:
    import torch  # optional [bench] extra; never needed by CI
  except ImportError:
    return None, None
  if jax.default_backend() == "gpu":
    if not torch.cuda.is_available():
      return None, None   # a CPU torch beside a GPU JAX would not be a peer
    return torch, "cuda"
  torch.set_num_threads(os.cpu_count() or 1)   # XLA:CPU uses every core: give torch the same
  return torch, "cpu"


def _torch_tensor(torch, device, array, requires_grad=False):
  """A torch copy of a JAX array (bf16 goes through float32: numpy has no bfloat16)."""
  dtype = getattr(torch, jnp.dtype(array.dtype).name)
  tensor = torch.from_numpy(np.array(array, np.float32)).to(device=device, dtype=dtype)
  return tensor.contiguous().requires_grad_(requires_grad)


def _fmt_ms(seconds):
  return "-" if seconds is None else f"{seconds * 1e3:8.1f}"


def _fmt_ratio(numerator, denominator):
  return "-" if numerator is None or denominator is None else f"{numerator / denominator:5.2f}x"


# ---------------------------------------------------------------------------------------------
# Window attention
# ---------------------------------------------------------------------------------------------
def _plain_windowed_attention(q, k, v, bias, window):
  """The straightforward XLA baseline: partition, then jax.nn.dot_product_attention with the bias."""
  b, t, h, w, n, d = q.shape
  qw, kw, vw = (attention_reference.window_partition(x, window).swapaxes(1, 2) for x in (q, k, v))
  out = jax.nn.dot_product_attention(qw, kw, vw, bias=bias[None])          # [G, S, N, D]
  return attention_reference.window_merge(out.swapaxes(1, 2), window, (b, t, h, w))


def _full_attention(q, k, v):
  b, t, h, w, n, d = q.shape
  flat = lambda x: x.reshape(b, t * h * w, n, d)
  return jax.nn.dot_product_attention(flat(q), flat(k), flat(v)).reshape(q.shape)


def _fwd_and_grad(fn):
  forward = jax.jit(fn)
  loss = lambda *args: jnp.sum(fn(*args).astype(jnp.float32) ** 2)
  return forward, jax.jit(jax.grad(loss, argnums=(0, 1, 2)))


ATTENTION_COLUMNS = ("ours", "xla", "plain", "full", "torch")


def benchmark_window_attention(frames_list, heads, head_dim, window, repeats, torch, device=None,
                               dtype=jnp.float32, batch=1):
  rows = []
  for frames in frames_list:
    shape = (batch, frames, 16, 16, heads, head_dim)
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    q, k, v = (jax.random.normal(key, shape, dtype) for key in keys[:3])
    table = 0.1 * jax.random.normal(keys[3], (heads, attention_reference.num_relative_offsets(window)))
    bias = attention_reference.gather_relative_bias(table, window)
    seq = window[0] * window[1] * window[2]
    tokens = batch * frames * 256
    window_flops = 4 * tokens * seq * head_dim * heads          # QKᵀ and PV, per forward
    full_flops = 4 * tokens * (frames * 256) * head_dim * heads
    candidates = {
        "ours": lambda q, k, v: window_attention(q, k, v, bias, window=window),
        "plain": lambda q, k, v: _plain_windowed_attention(q, k, v, bias, window),
        "full": _full_attention,
    }
    if window_attention_impl("auto", dtype, head_dim) != "xla":   # e.g. cuDNN on a GPU
      candidates["xla"] = lambda q, k, v: window_attention(q, k, v, bias, window=window, impl="xla")
    result = {"frames": frames, "window_flops": window_flops, "full_flops": full_flops}
    forward_runners, backward_runners = {}, {}
    for name, fn in candidates.items():
      forward, grad = _fwd_and_grad(fn)
      forward_runners[name] = _jax_runner(forward, q, k, v)
      backward_runners[name] = _jax_runner(grad, q, k, v)
    if torch is not None:
      forward_runners["torch"], backward_runners["torch"] = _torch_window_attention(
          torch, device, q, k, v, bias, window)
    forward_times = _interleaved_medians(forward_runners, repeats)
    backward_times = _interleaved_medians(backward_runners, repeats)
    for name in ATTENTION_COLUMNS:
      result[name] = (forward_times.get(name), backward_times.get(name))
    rows.append(result)
  return rows


def _torch_runners(torch, forward):
  """(forward-only runner without autograd, forward+backward runner) around a torch `forward()`.

  Both block until the GPU is done (torch on CPU is synchronous already)."""
  synchronize = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)

  def forward_no_grad():
    with torch.no_grad():
      forward()
    synchronize()

  def forward_backward():
    (forward().float() ** 2).sum().backward()
    synchronize()

  return forward_no_grad, forward_backward


def _torch_window_attention(torch, device, q, k, v, bias, window):
  """(forward runner, forward+backward runner) for torch SDPA on the same windows."""
  functional = torch.nn.functional
  b, t, h, w, n, d = q.shape
  wt, wh, ww = window

  def partition(x):   # same [G, N, S, D] layout as ours, built with permute + contiguous
    x = x.reshape(b, t // wt, wt, h // wh, wh, w // ww, ww, n, d)
    return x.permute(0, 1, 3, 5, 7, 2, 4, 6, 8).reshape(-1, n, wt * wh * ww, d)

  def merge(x):
    x = x.reshape(b, t // wt, h // wh, w // ww, n, wt, wh, ww, d)
    return x.permute(0, 1, 5, 2, 6, 3, 7, 4, 8).reshape(b, t, h, w, n, d)

  tq, tk, tv = (_torch_tensor(torch, device, x, requires_grad=True) for x in (q, k, v))
  tbias = _torch_tensor(torch, device, bias.astype(q.dtype))[None]

  def forward():
    return merge(functional.scaled_dot_product_attention(partition(tq), partition(tk),
                                                         partition(tv), attn_mask=tbias))

  return _torch_runners(torch, forward)


_ATTENTION_LABELS = {"ours": "ours", "xla": "ours xla", "plain": "plain XLA", "full": "full attn",
                     "torch": "torch"}


def print_window_attention(rows, heads, head_dim, window, dtype=jnp.float32, batch=1):
  """One line per (frames, pass): times of every candidate measured, then each one's time / ours."""
  columns = [name for name in ATTENTION_COLUMNS
             if any(row[name][0] is not None for row in rows)]
  peers = [name for name in columns if name != "ours"]
  print(f"\nWindow attention, B={batch}, 16x16 latent frames, {heads} heads x {head_dim} dims, "
        f"window {window}, {jnp.dtype(dtype).name}, ours = impl 'auto' = "
        f"{window_attention_impl('auto', dtype, head_dim)} here (ms; GFLOP/s of ours counts QKᵀ+PV, "
        f"fwd+bwd = 3x fwd)")
  header = (f"{'frames':>6} {'pass':>8} | " + " ".join(f"{_ATTENTION_LABELS[n]:>9}" for n in columns)
            + " | " + " ".join(f"{n + '/ours':>10}" for n in peers) + f" | {'ours GF/s':>9}")
  print(header)
  print("-" * len(header))
  for row in rows:
    for index, label in ((0, "fwd"), (1, "fwd+bwd")):
      times = {name: row[name][index] for name in columns}
      flops = row["window_flops"] * (1 if index == 0 else 3)
      print(f"{row['frames']:>6} {label:>8} | " + " ".join(f"{_fmt_ms(times[n]):>9}" for n in columns)
            + " | " + " ".join(f"{_fmt_ratio(times[n], times['ours']):>10}" for n in peers)
            + f" | {flops / times['ours'] / 1e9:9.1f}")


# ---------------------------------------------------------------------------------------------
# Causal conv3d
# ---------------------------------------------------------------------------------------------
def _lax_causal_conv(x, kernel):
  padded = jnp.pad(x, ((0, 0), *causal_padding(kernel.shape[:3]), (0, 0)))
  return lax.conv_general_dilated(padded, kernel, (1, 1, 1), "VALID",
                                  dimension_numbers=("NTHWC", "THWIO", "NTHWC"))


def _conv_inputs(shape, channels_out, kernel_size, dtype):
  """(x, kernel, forward FLOPs) of the conv benchmarks: the same inputs in every table."""
  x = jax.random.normal(jax.random.PRNGKey(0), shape, dtype)
  kernel = (0.05 * jax.random.normal(jax.random.PRNGKey(1), (*kernel_size, shape[-1], channels_out))
            ).astype(dtype)
  return x, kernel, 2 * int(np.prod(shape)) * int(np.prod(kernel_size)) * channels_out


def benchmark_causal_conv(shape, channels_out, kernel_size, repeats, torch, device=None,
                          dtype=jnp.float32):
  cin = shape[-1]
  x, kernel, flops = _conv_inputs(shape, channels_out, kernel_size, dtype)
  result = {"flops": flops}
  forward_runners, backward_runners = {}, {}
  for name, fn in (("ours", lambda x, k: causal_conv3d(x, k)), ("lax", _lax_causal_conv)):
    # fn=fn binds this iteration's function (a bare closure would see the loop's last value).
    forward = jax.jit(fn)
    grad = jax.jit(jax.grad(lambda x, k, fn=fn: jnp.sum(fn(x, k).astype(jnp.float32) ** 2),
                            argnums=(0, 1)))
    forward_runners[name] = _jax_runner(forward, x, kernel)
    backward_runners[name] = _jax_runner(grad, x, kernel)
  if torch is not None:
    forward_runners["torch"], backward_runners["torch"] = _torch_causal_conv(torch, device, x,
                                                                            kernel)
  forward_times = _interleaved_medians(forward_runners, repeats)
  backward_times = _interleaved_medians(backward_runners, max(1, repeats // 2))
  for name in ("ours", "lax", "torch"):
    result[name] = (forward_times.get(name), backward_times.get(name))
  # GEMM peak of this machine right now (the 2 cores may be shared): the same K as the conv.
  m, k_dim = 4096, int(np.prod(kernel_size)) * cin
  lhs = jax.random.normal(jax.random.PRNGKey(2), (m, k_dim), dtype)
  rhs = jax.random.normal(jax.random.PRNGKey(3), (k_dim, channels_out), dtype)
  matmul = jax.jit(jnp.dot)
  result["matmul_gflops"] = 2 * m * k_dim * channels_out / _interleaved_medians(
      {"matmul": _jax_runner(matmul, lhs, rhs)}, repeats)["matmul"] / 1e9
  return result


def _torch_causal_conv(torch, device, x, kernel):
  """(forward runner, forward+backward runner) for torch conv3d with the same causal padding."""
  functional = torch.nn.functional
  kt, kh, kw = kernel.shape[:3]
  (pt, ph, pw) = causal_padding((kt, kh, kw))
  # torch wants NCDHW / OIDHW; the layout change is done once, outside the timing.
  tx = _torch_tensor(torch, device, x.transpose(0, 4, 1, 2, 3), requires_grad=True)
  tk = _torch_tensor(torch, device, kernel.transpose(4, 3, 0, 1, 2), requires_grad=True)

  def forward():
    padded = functional.pad(tx, (pw[0], pw[1], ph[0], ph[1], pt[0], pt[1]))
    return functional.conv3d(padded, tk)

  return _torch_runners(torch, forward)


def print_causal_conv(result, shape, channels_out, kernel_size, dtype=jnp.float32):
  print(f"\nCausal conv3d {kernel_size} x=[B, T, H, W, C]={list(shape)} -> {channels_out} channels, "
        f"{jnp.dtype(dtype).name} (ms and GFLOP/s; fwd+bwd = 3x fwd FLOPs); matmul [4096, K] x "
        f"[K, Cout] peak now: "
        f"{result['matmul_gflops']:.0f} GFLOP/s")
  header = (f"{'pass':>8} | {'ours':>8} {'lax.conv':>8} {'torch':>8} | {'lax/ours':>8} "
            f"{'torch/ours':>10} | {'ours':>6} {'lax':>6} {'torch':>6} GFLOP/s")
  print(header)
  print("-" * len(header))
  for index, label in ((0, "fwd"), (1, "fwd+bwd")):
    ours, lax_time, peer = (result[name][index] for name in ("ours", "lax", "torch"))
    flops = result["flops"] * (1 if index == 0 else 3)
    rate = lambda s: "     -" if s is None else f"{flops / s / 1e9:6.1f}"
    print(f"{label:>8} | {_fmt_ms(ours)} {_fmt_ms(lax_time)} {_fmt_ms(peer)} | "
          f"{_fmt_ratio(lax_time, ours):>8} {_fmt_ratio(peer, ours):>10} | "
          f"{rate(ours)} {rate(lax_time)} {rate(peer)}")


def benchmark_conv_alternatives(shape, channels_out, kernel_size, repeats, torch, device=None,
                                dtype=jnp.float32):
  """Forward times {name: seconds} of the chosen path ("ours"), the formulations measured and not used
  (causal_conv3d/alternatives.py), `lax.conv` and torch, interleaved; and the conv's FLOPs."""
  from zoo.kernels.causal_conv3d import alternatives
  x, kernel, flops = _conv_inputs(shape, channels_out, kernel_size, dtype)
  runners = {"ours": _jax_runner(jax.jit(causal_conv3d), x, kernel),
             "lax.conv": _jax_runner(jax.jit(_lax_causal_conv), x, kernel)}
  for name, fn in alternatives.ALTERNATIVES.items():
    runners[name] = _jax_runner(jax.jit(fn), x, kernel)
  if torch is not None:
    runners["torch"] = _torch_causal_conv(torch, device, x, kernel)[0]
  return _interleaved_medians(runners, repeats), flops


def print_conv_alternatives(times, flops, shape, channels_out):
  print(f"\nCausal conv3d forward, x={list(shape)} -> {channels_out}: the chosen path against the "
        f"formulations measured and not used (zoo/kernels/causal_conv3d/alternatives.py); XLA_FLAGS="
        f"{os.environ.get('XLA_FLAGS', '')!r}")
  for name, seconds in times.items():
    peer = _fmt_ratio(times.get("torch"), seconds) if "torch" in times else "-"
    print(f"  {name:<20} {_fmt_ms(seconds)} ms {flops / seconds / 1e9:7.1f} GFLOP/s  torch/this {peer}")


def main(argv: list[str]) -> None:
  parser = argparse.ArgumentParser(prog="benchmark kernels", description=__doc__.splitlines()[0])
  parser.add_argument("--repeats", type=int, default=7)
  parser.add_argument("--frames", type=int, nargs="+", default=[5, 9, 17])
  parser.add_argument("--heads", type=int, default=4)
  parser.add_argument("--head-dim", type=int, default=64)
  parser.add_argument("--conv-shape", type=int, nargs=5, default=[1, 17, 64, 64, 64],
                      metavar=("B", "T", "H", "W", "C"))
  parser.add_argument("--conv-out", type=int, default=64)
  parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch peers")
  parser.add_argument("--only", choices=("attention", "conv", "conv-alternatives"), default=None,
                      help="conv-alternatives: the conv formulations measured and not used (forward)")
  parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
  parser.add_argument("--batch", type=int, default=1, help="window attention batch size")
  args = parser.parse_args(argv)
  dtype = jnp.dtype(args.dtype)
  torch, device = (None, None) if args.no_torch else _import_torch()
  where = (f"{jax.devices()[0].device_kind}" if jax.default_backend() != "cpu"
           else f"{os.cpu_count()} CPU cores")
  print(f"jax {jax.__version__} on {jax.default_backend()} ({where}); torch "
        + ("not importable or not on this device (pip install torch for the peer columns)"
           if torch is None else
           f"{torch.__version__} on {device}"
           + (f" with {torch.get_num_threads()} threads" if device == "cpu" else ""))
        + f"; load average {os.getloadavg()[0]:.1f} (other processes share these cores)")
  if args.only in (None, "attention"):
    for window in ((1, 16, 16),):
      rows = benchmark_window_attention(args.frames, args.heads, args.head_dim, window,
                                        args.repeats, torch, device, dtype, args.batch)
      print_window_attention(rows, args.heads, args.head_dim, window, dtype, args.batch)
  if args.only in (None, "conv"):
    result = benchmark_causal_conv(tuple(args.conv_shape), args.conv_out, (3, 3, 3), args.repeats,
                                   torch, device, dtype)
    print_causal_conv(result, tuple(args.conv_shape), args.conv_out, (3, 3, 3), dtype)
  if args.only == "conv-alternatives":
    times, flops = benchmark_conv_alternatives(tuple(args.conv_shape), args.conv_out, (3, 3, 3),
                                               args.repeats, torch, device, dtype)
    print_conv_alternatives(times, flops, tuple(args.conv_shape), args.conv_out)
