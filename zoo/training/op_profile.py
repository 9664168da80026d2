"""Where a compiled step's time goes on XLA:CPU: time per executed HLO op, grouped by kind of work.

    python -m tools.benchmark walt --config experiments/walt/video_moving_digits.py:tiny --train-only --profile 50

XLA:CPU runs a compiled program as a sequence of "thunks", one per HLO op (fusion, library dot, copy,
...), and each emits a profiler event named after its HLO instruction (jax 0.10's XLA:CPU does so
without any flag). This module traces a few steps with `jax.profiler`, matches the events to the
compiled module's instructions and sums them per category:

  matmul/conv     dot and convolution ops, and fusions that contain one (YNNPACK/oneDNN library
                  fusions included): the work MFU counts. YNNPACK's graph fusions also take in
                  elementwise work around the dot (LayerNorm, modulation, bias), which then counts
                  here too, so this share, and the bound below, are upper estimates;
  data movement   copies, transposes, slices, concatenations, pads, gathers/scatters, and fusions made
                  only of such ops;
  elementwise     every other fusion or op (LayerNorm, softmax, activations, optimizer updates, RNG);
  (control flow)  while/conditional/call: not counted, since the ops they run are timed themselves.

Each category is also split by phase (forward / backward / other, from jax's op_name metadata: "jvp(" and
"transpose(" mark the differentiated function and its backward pass; the optimizer, EMA and RNG are other).

Tracing adds a little to every op (~1 µs here), so the result is the *shares*, not the absolute times.
`matmul_bound_mfu` turns the matmul share into an upper bound: the MFU the step would reach if
everything but its matmuls took no time (assuming wall time scales with op time).

It must run in a process that has not loaded libtpu (AOT compiles for TPU topologies load it): there
`jax.profiler.start_trace` segfaults on this CPU host (jax 0.10.2, libtpu 0.0.52), so
`op_time_breakdown` refuses with an error instead.
"""
from __future__ import annotations

import collections
import dataclasses
import glob
import os
import re
import tempfile
from typing import Callable, NamedTuple

import jax

MATMUL, MOVEMENT, ELEMENTWISE, CONTROL = "matmul/conv", "data movement", "elementwise", "control flow"
CATEGORIES = (MATMUL, MOVEMENT, ELEMENTWISE)
# Which part of a train step an op comes from, read from its op_name metadata: jax names ops of the
# differentiated function "jvp(...)" and those of its backward pass "transpose(...)"; everything else
# (optimizer update, EMA, RNG, metrics) is "other".
FORWARD, BACKWARD, OTHER = "forward", "backward", "other"
PHASES = (FORWARD, BACKWARD, OTHER)
_OP_NAME = re.compile(r'op_name="([^"]*)"')

_MATMUL_OPS = {"dot", "convolution"}
_CONTROL_OPS = {"while", "conditional", "call", "async-start", "async-update", "async-done"}
_MOVEMENT_OPS = {"copy", "transpose", "bitcast", "reshape", "broadcast", "slice", "concatenate", "pad",
                 "dynamic-slice", "dynamic-update-slice", "gather", "scatter", "reverse", "tuple",
                 "get-tuple-element", "parameter", "constant", "iota", "copy-start", "copy-done"}

_COMPUTATION = re.compile(r"^(?:ENTRY\s+)?%([\w.\-]+)\s.*\{\s*$")
_INSTRUCTION = re.compile(r"^\s*(?:ROOT\s+)?%([\w.\-]+)\s*=\s*(.*)$")
_CALLS = re.compile(r"calls=%([\w.\-]+)")


def _opcode(rest: str) -> str:
  """The opcode of an HLO instruction from the text after `=`: the type (possibly a tuple) comes first."""
  i = 0
  if rest.startswith("("):  # tuple type: skip balanced parentheses
    depth = 0
    for i, ch in enumerate(rest):
      depth += ch == "("
      depth -= ch == ")"
      if depth == 0:
        break
    i += 1
  else:
    i = rest.find(" ")
  match = re.match(r"\s*([\w\-]+)\(", rest[i:])
  return match.group(1) if match else ""


def libtpu_loaded() -> bool:
  """Whether libtpu is mapped into this process (Linux /proc; False where that cannot be read)."""
  try:
    with open("/proc/self/maps") as maps:
      return "libtpu" in maps.read()
  except OSError:
    return False


class _Instruction(NamedTuple):
  name: str
  opcode: str
  called: str | None   # the computation a fusion calls
  phase: str           # FORWARD | BACKWARD | OTHER, from the op_name metadata


def _parse(hlo_text: str) -> dict[str, list[_Instruction]]:
  """{computation name: its instructions} of a compiled module's text (`compiled.as_text()`)."""
  computations: dict[str, list[_Instruction]] = collections.defaultdict(list)
  current = None
  for line in hlo_text.splitlines():
    header = _COMPUTATION.match(line)  # instructions are indented, computation headers are not
    if header:
      current = header.group(1)
      continue
    inst = _INSTRUCTION.match(line)
    if inst and current is not None:
      rest = inst.group(2)
      called = _CALLS.search(rest)
      op_name = _OP_NAME.search(rest)
      op_name = op_name.group(1) if op_name else ""
      phase = BACKWARD if "transpose(" in op_name else FORWARD if "jvp(" in op_name else OTHER
      computations[current].append(
          _Instruction(inst.group(1), _opcode(rest), called and called.group(1), phase))
  return computations


def instruction_phases(hlo_text: str) -> dict[str, str]:
  """{instruction name: FORWARD | BACKWARD | OTHER} from the op_name metadata of a compiled module's text."""
  return _phases(_parse(hlo_text))


def _phases(computations: dict[str, list[_Instruction]]) -> dict[str, str]:
  return {inst.name: inst.phase for instructions in computations.values() for inst in instructions}


def classify_instructions(hlo_text: str) -> dict[str, str]:
  """{instruction name: category} for every instruction of a compiled module's text (`compiled.as_text()`)."""
  return _categories(_parse(hlo_text))


def _categories(computations: dict[str, list[_Instruction]]) -> dict[str, str]:
  memo: dict[str, set[str]] = {}

  def ops_in(computation: str) -> set[str]:  # opcodes of a computation, through nested fusions
    if computation not in memo:
      memo[computation] = set()
      ops = set()
      for _, opcode, called, _ in computations.get(computation, ()):
        ops.add(opcode)
        if opcode == "fusion" and called:
          ops |= ops_in(called)
      memo[computation] = ops
    return memo[computation]

  categories = {}
  for instructions in computations.values():
    for name, opcode, called, _ in instructions:
      ops = ops_in(called) if opcode == "fusion" and called else {opcode}
      if opcode in _CONTROL_OPS:
        categories[name] = CONTROL
      elif ops & _MATMUL_OPS:
        categories[name] = MATMUL
      elif ops - {"fusion"} <= _MOVEMENT_OPS:
        categories[name] = MOVEMENT
      else:
        categories[name] = ELEMENTWISE
  return categories


@dataclasses.dataclass
class OpBreakdown:
  """Op time of one step: `phase_seconds` per (category, phase), `ops` per category, `top`
  [(name, category, seconds)]; all per step."""
  steps: int
  phase_seconds: dict[tuple[str, str], float]
  ops: dict[str, float]
  top: list[tuple[str, str, float]]

  @property
  def seconds(self) -> dict[str, float]:
    """Seconds per category (its phases summed)."""
    return {c: sum(self.phase_seconds.get((c, p), 0.0) for p in PHASES) for c in CATEGORIES}

  @property
  def total_seconds(self) -> float:
    return sum(self.seconds.values())

  def share(self, category: str) -> float:
    return self.seconds.get(category, 0.0) / self.total_seconds if self.total_seconds else 0.0

  def matmul_bound_mfu(self, mfu: float) -> float:
    """The MFU if everything but the matmul/conv ops took no time: measured MFU / matmul share."""
    share = self.share(MATMUL)
    return mfu / share if share else float("inf")


def op_time_breakdown(compiled, run: Callable[[], None], steps: int, top: int = 10) -> OpBreakdown:
  """Traces `run()` (which must execute `compiled` `steps` times and wait for it) and sums the XLA:CPU op
  events of `compiled` per category."""
  if jax.default_backend() != "cpu":
    raise RuntimeError(f"per-op breakdown reads XLA:CPU's op events; this backend is {jax.default_backend()}. "
                       "On GPU/TPU use jax.profiler.trace and open the trace in TensorBoard or Perfetto.")
  if libtpu_loaded():
    raise RuntimeError(
        "this CPU process has loaded libtpu (e.g. it compiled for a TPU topology: tools/aot_compile, "
        "zoo.kernels.tpu_aot), and jax.profiler.start_trace then crashes the process (segfault, jax 0.10.2 "
        "+ libtpu 0.0.52). Profile in a fresh process, e.g. `python -m tools.benchmark walt --profile N`.")
  computations = _parse(compiled.as_text())
  categories = _categories(computations)
  phases = _phases(computations)
  totals, counts = collections.Counter(), collections.Counter()
  with tempfile.TemporaryDirectory(prefix="zoo_op_profile_") as trace_dir:
    jax.profiler.start_trace(trace_dir)
    try:
      run()
    finally:
      jax.profiler.stop_trace()
    files = glob.glob(os.path.join(trace_dir, "**", "*.xplane.pb"), recursive=True)
    if not files:
      raise RuntimeError(f"jax.profiler wrote no trace under {trace_dir}")
    data = jax.profiler.ProfileData.from_file(files[0])
    for plane in data.planes:
      for line in plane.lines:
        for event in line.events:
          if event.name in categories:
            totals[event.name] += event.duration_ns * 1e-9
            counts[event.name] += 1
  if not totals:
    raise RuntimeError(
        "the trace holds no per-op events of this program: check that run() executes it, and if it does, "
        "this jax's XLA:CPU may need XLA_FLAGS=--xla_cpu_enable_xprof_traceme=true set before jax starts.")
  ops, phase_seconds = collections.Counter(), collections.Counter()
  for name, total in totals.items():
    category = categories[name]
    if category != CONTROL:
      ops[category] += counts[name] / steps
      phase_seconds[(category, phases[name])] += total / steps
  ranked = sorted(((n, categories[n], t / steps) for n, t in totals.items() if categories[n] != CONTROL),
                  key=lambda item: -item[2])
  return OpBreakdown(steps, {(c, p): phase_seconds[(c, p)] for c in CATEGORIES for p in PHASES},
                     {c: ops[c] for c in CATEGORIES}, ranked[:top])


def format_breakdown(breakdown: OpBreakdown, mfu: float | None = None) -> str:
  """A small table: per category µs/step, share and ops/step; the largest ops; the matmul-only bound."""
  lines = [f"XLA:CPU op time per step, traced over {breakdown.steps} steps (summed over threads; tracing adds "
           "~1 µs per op, so read the shares):",
           f"    {'category':<14} {'µs/step':>9} {'share':>7} {'ops/step':>9} | share by phase: "
           + " ".join(f"{phase:>8}" for phase in PHASES)]
  total = breakdown.total_seconds or 1.0
  for category in CATEGORIES:
    lines.append(f"    {category:<14} {1e6 * breakdown.seconds[category]:9.1f} "
                 f"{100 * breakdown.share(category):6.1f}% {breakdown.ops[category]:9.1f} | {'':15}"
                 + " ".join(f"{100 * breakdown.phase_seconds.get((category, p), 0.0) / total:7.1f}%"
                            for p in PHASES))
  lines.append("  largest ops: " + ", ".join(f"{name} ({category}) {1e6 * seconds:.0f} µs"
                                             for name, category, seconds in breakdown.top))
  if mfu is not None:
    lines.append(f"  matmul/conv ops are {100 * breakdown.share(MATMUL):.1f}% of op time: with all other ops "
                 f"free this step's MFU would be at most {100 * breakdown.matmul_bound_mfu(mfu):.1f}% "
                 f"(measured {100 * mfu:.1f}%)")
  return "\n".join(lines)
