"""zoo/training/op_profile.py: XLA:CPU per-op time, grouped into matmul/conv, data movement and elementwise."""
import json
import subprocess
import sys

import pytest

from tests.helpers import REPO_ROOT, subprocess_env

from zoo.training import op_profile

HLO = """\
HloModule jit_step, entry_computation_layout={(f32[8,8]{1,0})->f32[8,8]{1,0}}

%fused_computation (param_0: f32[8,8], param_1: f32[8,8]) -> f32[8,8] {
  %param_0 = f32[8,8]{1,0} parameter(0)
  %param_1 = f32[8,8]{1,0} parameter(1)
  ROOT %dot.1 = f32[8,8]{1,0} dot(%param_0, %param_1), lhs_contracting_dims={1}, rhs_contracting_dims={0}
}

%fused_computation.1 (param_0.1: f32[8,8]) -> f32[8,8] {
  %param_0.1 = f32[8,8]{1,0} parameter(0)
  ROOT %transpose.1 = f32[8,8]{0,1} transpose(%param_0.1), dimensions={1,0}
}

%fused_computation.2 (param_0.2: f32[8,8]) -> f32[8,8] {
  %param_0.2 = f32[8,8]{1,0} parameter(0)
  ROOT %tanh.1 = f32[8,8]{1,0} tanh(%param_0.2)
}

%body (p: (s32[], f32[8,8])) -> (s32[], f32[8,8]) {
  %p = (s32[], f32[8,8]{1,0}) parameter(0)
  %x = f32[8,8]{1,0} get-tuple-element(%p), index=1
  %ynn_fusion = f32[8,8]{1,0} fusion(%x, %x), kind=kCustom, calls=%fused_computation, backend_config={"fusion_config":{"kind":"__ynn_fusion"}}
  %i = s32[] get-tuple-element(%p), index=0
  ROOT %t = (s32[], f32[8,8]{1,0}) tuple(%i, %ynn_fusion)
}

%cond (p.1: (s32[], f32[8,8])) -> pred[] {
  %p.1 = (s32[], f32[8,8]{1,0}) parameter(0)
  ROOT %c = pred[] constant(true)
}

ENTRY %main (x.1: f32[8,8]) -> f32[8,8] {
  %x.1 = f32[8,8]{1,0} parameter(0)
  %copy_fusion = f32[8,8]{0,1} fusion(%x.1), kind=kLoop, calls=%fused_computation.1
  %tanh_fusion = f32[8,8]{1,0} fusion(%copy_fusion), kind=kLoop, calls=%fused_computation.2
  %tuple.1 = (s32[], f32[8,8]{1,0}) tuple(%c.0, %tanh_fusion)
  %while.1 = (s32[], f32[8,8]{1,0}) while(%tuple.1), condition=%cond, body=%body
  %copy.3 = f32[8,8]{0,1} copy(%x.1)
  ROOT %out = f32[8,8]{1,0} get-tuple-element(%while.1), index=1
}
"""


def test_classify_instructions_reads_fusions_through_their_computations():
  """Fusions are classified by what they contain (a dot anywhere: matmul; only layout ops: data movement),
  control flow is kept apart, and instructions inside while bodies are classified too."""
  categories = op_profile.classify_instructions(HLO)
  assert categories["ynn_fusion"] == op_profile.MATMUL
  assert categories["copy_fusion"] == op_profile.MOVEMENT
  assert categories["copy.3"] == op_profile.MOVEMENT
  assert categories["tanh_fusion"] == op_profile.ELEMENTWISE
  assert categories["while.1"] == op_profile.CONTROL
  assert categories["dot.1"] == op_profile.MATMUL        # inside the fused computation
  assert "fused_computation" not in categories            # computations are not instructions


# Tracing runs in a fresh process: a pytest worker may have loaded libtpu (the TPU AOT tests do), after
# which jax.profiler.start_trace segfaults on a CPU host; op_time_breakdown refuses there (checked last).
SCRIPT = """
import json
import jax, jax.numpy as jnp
from zoo.training import op_profile

def step(a, b):  # 4 matmuls per call (3 inside a while loop), tanh and a scale-and-shift
  x = jax.lax.fori_loop(0, 3, lambda i, x: jnp.tanh(x @ b), a)
  return (x.T * 2.0 + 1.0).T @ b

a, b = jnp.ones((256, 256)) * 0.01, jnp.ones((256, 256)) * 0.01
compiled = jax.jit(step).lower(a, b).compile()
compiled(a, b).block_until_ready()
steps = 4
def run():
  for _ in range(steps):
    compiled(a, b).block_until_ready()
bd = op_profile.op_time_breakdown(compiled, run, steps)
result = {"seconds": bd.seconds, "ops": bd.ops, "shares": [bd.share(c) for c in op_profile.CATEGORIES],
          "bound": bd.matmul_bound_mfu(0.1), "top_categories": [c for _, c, _ in bd.top],
          "phase_shares": {p: [bd.phase_seconds[(c, p)] / bd.total_seconds for c in op_profile.CATEGORIES]
                           for p in op_profile.PHASES},
          "table": op_profile.format_breakdown(bd, mfu=0.1)}

def error(fn):
  try:
    fn()
  except RuntimeError as e:
    return str(e)
  return None

# A run() that never executes the program: a clear error, not an empty table.
result["no_events"] = error(lambda: op_profile.op_time_breakdown(
    compiled, lambda: jnp.ones(3).block_until_ready(), 1))
# After loading libtpu (as the TPU AOT compiles do), tracing would crash the process: refused instead.
from jax.experimental import topologies
topologies.get_topology_desc(platform="tpu", topology_name="v5e:2x2")
result["libtpu_loaded"] = op_profile.libtpu_loaded()
result["after_libtpu"] = error(lambda: op_profile.op_time_breakdown(compiled, run, steps))
print(json.dumps(result))
"""


@pytest.fixture(scope="module")
def traced():
  out = subprocess.run([sys.executable, "-c", SCRIPT], env=subprocess_env(1), cwd=REPO_ROOT,
                       capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-3000:]
  return json.loads(out.stdout.strip().splitlines()[-1])


def test_breakdown_counts_each_executed_op_once_per_step(traced):
  """Traced over 4 calls: 4 matmuls per step (3 of them inside the while loop), elementwise work apart,
  per-category shares that add up, and the matmul-only MFU bound = MFU / matmul share."""
  assert traced["ops"][op_profile.MATMUL] == pytest.approx(4.0)
  assert traced["ops"][op_profile.ELEMENTWISE] >= 1.0       # tanh, possibly fused with the scale and shift
  assert traced["seconds"][op_profile.MATMUL] > 0
  assert sum(traced["shares"]) == pytest.approx(1.0)
  assert traced["bound"] == pytest.approx(0.1 / traced["shares"][0])
  assert op_profile.CONTROL not in traced["top_categories"]
  assert "matmul/conv" in traced["table"] and "with all other ops free" in traced["table"]
  # No differentiation in this program: every op's time is phase "other", and the phases add up.
  assert sum(traced["phase_shares"][op_profile.OTHER]) == pytest.approx(1.0)
  assert sum(traced["phase_shares"][op_profile.FORWARD]) == 0


def test_a_trace_without_the_programs_ops_is_a_clear_error(traced):
  """run() that never executes the program: an error that says what to check, not an empty table."""
  assert traced["no_events"] and "no per-op events of this program" in traced["no_events"]


def test_refuses_to_trace_once_libtpu_is_loaded(traced):
  """jax.profiler.start_trace segfaults in a CPU process that loaded libtpu: refused with the fix."""
  assert traced["libtpu_loaded"] is True
  assert traced["after_libtpu"] and "Profile in a fresh process" in traced["after_libtpu"]


def test_phases_come_from_op_name_metadata():
  """jvp(...) ops are the forward pass, transpose(...) ops the backward pass, the rest is "other"."""
  text = """\
ENTRY %main (p: f32[4]) -> f32[4] {
  %p = f32[4]{0} parameter(0)
  %a = f32[4]{0} tanh(%p), metadata={op_name="jit(step)/jvp(loss)/tanh" stack_frame_id=1}
  %b = f32[4]{0} multiply(%a, %a), metadata={op_name="jit(step)/transpose(jvp(loss))/mul"}
  ROOT %c = f32[4]{0} add(%b, %p), metadata={op_name="jit(step)/add"}
}
"""
  phases = op_profile.instruction_phases(text)
  assert phases == {"p": op_profile.OTHER, "a": op_profile.FORWARD, "b": op_profile.BACKWARD,
                    "c": op_profile.OTHER}
