"""Side-by-side CPU benchmark of the kernels' XLA paths against their peers (issue 4).

    python -m tools.benchmark kernels            # wired by tools/benchmark.py
    python -c "from zoo.kernels import benchmark; benchmark.main([])"

Everything is measured in one run on this machine, so the ratios compare like with like:
  * window attention (our impl="auto" path, i.e. XLA on CPU) vs a plain XLA windowed
    `jax.nn.dot_product_attention`, vs full attention over all tokens (`jax.nn.dot_product_attention`
    on T*H*W tokens, cost quadratic in frames), vs PyTorch `scaled_dot_product_attention` on the same
    windows (when torch is importable, same thread count);
  * causal conv3d (our chunked im2col/GEMM path) vs `lax.conv_general_dilated` and torch `conv3d`
    (same causal padding), plus an f32 matmul for the machine's GEMM peak.
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
from zoo.kernels.window_attention import window_attention
from zoo.kernels.window_attention import reference as attention_reference


def _interleaved_medians(runners, repeats):
  """{name: median seconds}. Runs every candidate once per round, round-robin, after one warm-up
  each: on a machine whose cores are shared, load spikes then hit all candidates alike and the
  ratios stay meaningful even when absolute times drift. A runner blocks until its result is ready
  (jax.block_until_ready for JAX; torch on CPU is synchronous)."""
  for run in runners.values():
    run()
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
  # Idle OpenMP workers of torch otherwise spin for a while after each parallel region and steal the
  # cores from whichever JAX candidate runs next in the round-robin; passive waiting avoids that.
  os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
  try:
    import torch  # optional [bench] extra; never needed by CI
  except ImportError:
    return None
  torch.set_num_threads(os.cpu_count() or 1)   # XLA:CPU uses every core: give torch the same
  return torch


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


def benchmark_window_attention(frames_list, heads, head_dim, window, repeats, torch):
  rows = []
  for frames in frames_list:
    shape = (1, frames, 16, 16, heads, head_dim)
    keys = jax.random.split(jax.random.PRNGKey(0), 4)
    q, k, v = (jax.random.normal(key, shape, jnp.float32) for key in keys[:3])
    table = 0.1 * jax.random.normal(keys[3], (heads, attention_reference.num_relative_offsets(window)))
    bias = attention_reference.gather_relative_bias(table, window)
    seq = window[0] * window[1] * window[2]
    tokens = frames * 256
    window_flops = 4 * tokens * seq * head_dim * heads          # QKᵀ and PV, per forward
    full_flops = 4 * tokens * tokens * head_dim * heads
    candidates = {
        "ours": lambda q, k, v: window_attention(q, k, v, bias, window=window),
        "plain": lambda q, k, v: _plain_windowed_attention(q, k, v, bias, window),
        "full": _full_attention,
    }
    result = {"frames": frames, "window_flops": window_flops, "full_flops": full_flops}
    forward_runners, backward_runners = {}, {}
    for name, fn in candidates.items():
      forward, grad = _fwd_and_grad(fn)
      forward_runners[name] = _jax_runner(forward, q, k, v)
      backward_runners[name] = _jax_runner(grad, q, k, v)
    if torch is not None:
      forward_runners["torch"], backward_runners["torch"] = _torch_window_attention(
          torch, q, k, v, bias, window)
    forward_times = _interleaved_medians(forward_runners, repeats)
    backward_times = _interleaved_medians(backward_runners, repeats)
    for name in ("ours", "plain", "full", "torch"):
      result[name] = (forward_times.get(name), backward_times.get(name))
    rows.append(result)
  return rows


def _torch_runners(torch, forward):
  """(forward-only runner without autograd, forward+backward runner) around a torch `forward()`."""
  def forward_no_grad():
    with torch.no_grad():
      forward()

  def forward_backward():
    (forward() ** 2).sum().backward()

  return forward_no_grad, forward_backward


def _torch_window_attention(torch, q, k, v, bias, window):
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

  tq, tk, tv = (torch.from_numpy(np.array(x)).requires_grad_() for x in (q, k, v))
  tbias = torch.from_numpy(np.array(bias))[None]

  def forward():
    return merge(functional.scaled_dot_product_attention(partition(tq), partition(tk),
                                                         partition(tv), attn_mask=tbias))

  return _torch_runners(torch, forward)


def print_window_attention(rows, heads, head_dim, window):
  print(f"\nWindow attention, B=1, 16x16 latent frames, {heads} heads x {head_dim} dims, "
        f"window {window}, float32 (ms; GFLOP/s of ours counts QKᵀ+PV, fwd+bwd = 3x fwd)")
  header = (f"{'frames':>6} {'pass':>8} | {'ours':>8} {'plain XLA':>9} {'full attn':>9} "
            f"{'torch':>8} | {'plain/ours':>10} {'full/ours':>9} {'torch/ours':>10} | {'ours GF/s':>9}")
  print(header)
  print("-" * len(header))
  for row in rows:
    for index, label in ((0, "fwd"), (1, "fwd+bwd")):
      ours, plain, full, peer = (row[name][index] for name in ("ours", "plain", "full", "torch"))
      flops = row["window_flops"] * (1 if index == 0 else 3)
      print(f"{row['frames']:>6} {label:>8} | {_fmt_ms(ours)} {_fmt_ms(plain):>9} "
            f"{_fmt_ms(full):>9} {_fmt_ms(peer)} | {_fmt_ratio(plain, ours):>10} "
            f"{_fmt_ratio(full, ours):>9} {_fmt_ratio(peer, ours):>10} | {flops / ours / 1e9:9.1f}")


# ---------------------------------------------------------------------------------------------
# Causal conv3d
# ---------------------------------------------------------------------------------------------
def _lax_causal_conv(x, kernel):
  padded = jnp.pad(x, ((0, 0), *causal_padding(kernel.shape[:3]), (0, 0)))
  return lax.conv_general_dilated(padded, kernel, (1, 1, 1), "VALID",
                                  dimension_numbers=("NTHWC", "THWIO", "NTHWC"))


def benchmark_causal_conv(shape, channels_out, kernel_size, repeats, torch):
  b, t, h, w, cin = shape
  x = jax.random.normal(jax.random.PRNGKey(0), shape, jnp.float32)
  kernel = 0.05 * jax.random.normal(jax.random.PRNGKey(1), (*kernel_size, cin, channels_out))
  flops = 2 * b * t * h * w * int(np.prod(kernel_size)) * cin * channels_out
  result = {"flops": flops}
  forward_runners, backward_runners = {}, {}
  for name, fn in (("ours", lambda x, k: causal_conv3d(x, k)), ("lax", _lax_causal_conv)):
    # fn=fn binds this iteration's function (a bare closure would see the loop's last value).
    forward = jax.jit(fn)
    grad = jax.jit(jax.grad(lambda x, k, fn=fn: jnp.sum(fn(x, k) ** 2), argnums=(0, 1)))
    forward_runners[name] = _jax_runner(forward, x, kernel)
    backward_runners[name] = _jax_runner(grad, x, kernel)
  if torch is not None:
    forward_runners["torch"], backward_runners["torch"] = _torch_causal_conv(torch, x, kernel)
  forward_times = _interleaved_medians(forward_runners, repeats)
  backward_times = _interleaved_medians(backward_runners, max(1, repeats // 2))
  for name in ("ours", "lax", "torch"):
    result[name] = (forward_times.get(name), backward_times.get(name))
  # GEMM peak of this machine right now (the 2 cores may be shared): the same K as the conv.
  m, k_dim = 4096, int(np.prod(kernel_size)) * cin
  lhs = jax.random.normal(jax.random.PRNGKey(2), (m, k_dim))
  rhs = jax.random.normal(jax.random.PRNGKey(3), (k_dim, channels_out))
  matmul = jax.jit(jnp.dot)
  result["matmul_gflops"] = 2 * m * k_dim * channels_out / _interleaved_medians(
      {"matmul": _jax_runner(matmul, lhs, rhs)}, repeats)["matmul"] / 1e9
  return result


def _torch_causal_conv(torch, x, kernel):
  """(forward runner, forward+backward runner) for torch conv3d with the same causal padding."""
  functional = torch.nn.functional
  kt, kh, kw = kernel.shape[:3]
  (pt, ph, pw) = causal_padding((kt, kh, kw))
  # torch wants NCDHW / OIDHW; the layout change is done once, outside the timing.
  tx = torch.from_numpy(np.asarray(x).transpose(0, 4, 1, 2, 3).copy()).requires_grad_()
  tk = torch.from_numpy(np.asarray(kernel).transpose(4, 3, 0, 1, 2).copy()).requires_grad_()

  def forward():
    padded = functional.pad(tx, (pw[0], pw[1], ph[0], ph[1], pt[0], pt[1]))
    return functional.conv3d(padded, tk)

  return _torch_runners(torch, forward)


def print_causal_conv(result, shape, channels_out, kernel_size):
  print(f"\nCausal conv3d {kernel_size} x=[B, T, H, W, C]={list(shape)} -> {channels_out} channels, "
        f"float32 (ms and GFLOP/s; fwd+bwd = 3x fwd FLOPs); f32 matmul peak now: "
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
  parser.add_argument("--only", choices=("attention", "conv"), default=None)
  args = parser.parse_args(argv)
  torch = None if args.no_torch else _import_torch()
  print(f"jax {jax.__version__} on {jax.default_backend()} ({os.cpu_count()} CPU cores); torch "
        + ("not importable (pip install torch for the peer columns)" if torch is None
           else f"{torch.__version__} with {torch.get_num_threads()} threads")
        + f"; load average {os.getloadavg()[0]:.1f} (other processes share these cores)")
  if args.only in (None, "attention"):
    for window in ((1, 16, 16),):
      rows = benchmark_window_attention(args.frames, args.heads, args.head_dim, window,
                                        args.repeats, torch)
      print_window_attention(rows, args.heads, args.head_dim, window)
  if args.only in (None, "conv"):
    result = benchmark_causal_conv(tuple(args.conv_shape), args.conv_out, (3, 3, 3), args.repeats,
                                   torch)
    print_causal_conv(result, tuple(args.conv_shape), args.conv_out, (3, 3, 3))
