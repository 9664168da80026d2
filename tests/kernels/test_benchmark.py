"""`python -m tools.benchmark kernels` at toy sizes: both tables print, with the candidates this backend has."""
from zoo.kernels import benchmark


def test_kernel_benchmark_prints_both_tables(capsys):
  benchmark.main(["--frames", "1", "2", "--heads", "2", "--head-dim", "8", "--conv-shape", "1", "2", "8",
                  "8", "4", "--conv-out", "4", "--repeats", "1", "--no-torch", "--dtype", "bfloat16"])
  out = capsys.readouterr().out
  attention = out[out.index("Window attention, B=1"):out.index("Causal conv3d")]
  assert "bfloat16, ours = impl 'auto' = xla here" in attention
  header, _, *rows = attention.strip().splitlines()[1:]
  assert header.split("|")[1].split() == ["ours", "plain", "XLA", "full", "attn"]   # no torch, no xla column
  assert [row.split()[:2] for row in rows] == [["1", "fwd"], ["1", "fwd+bwd"], ["2", "fwd"], ["2", "fwd+bwd"]]
  conv = out[out.index("Causal conv3d"):]
  assert "x=[B, T, H, W, C]=[1, 2, 8, 8, 4] -> 4 channels, bfloat16" in conv
  assert [line.split()[0] for line in conv.splitlines()[3:5]] == ["fwd", "fwd+bwd"]
  assert all(float(value) > 0 for value in conv.splitlines()[3].split("|")[1].split()[:2])


def test_a_failing_peer_is_left_out_but_a_failing_ours_is_an_error(capsys):
  def fails():
    raise RuntimeError("cuDNN refused this shape")
  times = benchmark._interleaved_medians({"ours": lambda: None, "torch": fails}, repeats=2)
  assert set(times) == {"ours"} and times["ours"] >= 0
  assert "[torch left out: RuntimeError: cuDNN refused this shape]" in capsys.readouterr().out
  try:
    benchmark._interleaved_medians({"ours": fails}, repeats=1)
  except RuntimeError:
    pass
  else:
    raise AssertionError("a failing 'ours' must not be hidden")


def test_conv_alternatives_table_times_every_rejected_formulation(capsys):
  """`--only conv-alternatives`: ours, lax.conv and each formulation of causal_conv3d/alternatives.py, one
  line each with a positive time (the README's "tried" numbers come from this table)."""
  from zoo.kernels.causal_conv3d import alternatives
  benchmark.main(["--only", "conv-alternatives", "--conv-shape", "1", "4", "8", "8", "4", "--conv-out", "4",
                  "--repeats", "1", "--no-torch"])
  lines = capsys.readouterr().out.split("not used")[1].splitlines()[1:]
  names = ["ours", "lax.conv", *alternatives.ALTERNATIVES]
  assert [line.split("  ")[1].strip() for line in lines] == names
  assert all(float(line.split("ms")[0].split()[-1]) > 0 for line in lines)
