"""Small-scale W.A.L.T ablations on CPU (Table 3's switches), the same steps and batch for every arm.

  python -m zoo.walt.ablation --workdir /tmp/walt_ablation \
      --tokenizer_workdir demo_assets/walt/tokenizer --classifier_workdir demo_assets/walt/frame_classifier

Budget: by default each arm trains the demo's 4000 steps (~55 min per arm on 2 CPU cores). Fewer steps say
little: the demo baseline's frame accuracy (guidance 3, chance 0.10) was 0.15 after 1000 steps and 0.53
after 4000 (zoo/walt/README.md).

Arms (experiments/walt/video_moving_digits.py:demo arguments): `baseline` (zero terminal SNR, p_sc = 0.9,
window attention), `no_zero_snr`, `no_self_cond` (p_sc = 0), `full_attention` (every layer attends over
the whole 3×8×8 latent grid). Each arm trains from scratch on the same cached latents with the same seed,
then the generation evaluator scores 100 class-conditional samples (DDIM-50) with the frame classifier.
Reported per arm: frame accuracy, frame Fréchet distance, final training loss, train steps/s (from each
arm's training log: arms train one after another, so other load on the machine can differ between them).
`ablation.json` in the workdir accumulates rows across invocations (`--arms a` then `--arms b` gives both;
rerunning an arm replaces its row).

Speed alone, like for like: `python -m zoo.walt.ablation --workdir W --speed` compiles every arm's train
step (random latents, no tokenizer needed) and times them round-robin in one process (`speed.json`):
milliseconds per step, XLA's FLOPs per step and the ratio to the baseline's time.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

ARMS = {
    "baseline": "",
    "no_zero_snr": ",zero_snr=false",
    "no_self_cond": ",self_cond=false",
    "full_attention": ",full_attention=true",
}
PAPER_UCF_FVD = {"baseline": "60.7 (zero SNR) / 61.4 (p_sc 0.9)", "no_zero_snr": "91.0",
                 "no_self_cond": "109.9", "full_attention": "59.9 (Table 3b; 59.6 with 5×8×8 windows)"}


def run_arm(name: str, args) -> dict:
  from zoo import config as zconfig
  from zoo.training import loop, metrics_io
  config = zconfig.load_config(f"experiments/walt/video_moving_digits.py:{args.base},steps={args.steps}{ARMS[name]}", [
      f"tokenizer.workdir={args.tokenizer_workdir}",
      f"evals.generation.classifier_workdir={args.classifier_workdir}",
      f"data.latent_cache_dir={os.path.join(args.workdir, 'latent_cache')}",
      f"evals.generation.num_videos={args.num_videos}", f"evals.generation.num_steps={args.sample_steps}",
      "checkpoint.async_save=False"])
  workdir = os.path.join(args.workdir, name)
  result = loop.train_and_evaluate(config, workdir)
  metrics = metrics_io.read_metrics(workdir)
  train = [m for m in metrics if "steps_per_sec" in m or "loss" in m]
  speeds = [m["steps_per_sec"] for m in metrics if "steps_per_sec" in m]
  speeds = speeds[1:] or speeds  # Drop the interval that includes compilation when there are others.
  evals = result.eval_metrics
  return {"arm": name, "frame_accuracy": evals.get("eval/generation/frame_accuracy"),
          "frame_fd": evals.get("eval/generation/frame_fd"),
          "final_loss": train[-1].get("loss") if train else None,
          "steps_per_sec": sum(speeds) / len(speeds) if speeds else None}


def _arm_config(name: str, args):
  from zoo.walt import benchmark
  return benchmark.load_config(f"experiments/walt/video_moving_digits.py:{args.base}{ARMS[name]}")


def speed_rows(arms: list[str], args, rounds: int = 10) -> list[dict]:
  """Train-step time of each arm, measured round-robin in this process (load hits every arm alike)."""
  from zoo.walt import benchmark
  times = benchmark.interleaved_step_times({name: _arm_config(name, args) for name in arms}, rounds=rounds)
  base = times[arms[0]]["step_seconds"]
  return [{"arm": name, "step_ms": 1e3 * t["step_seconds"], "step_gflop": t["step_gflop"],
           f"time_vs_{arms[0]}": t["step_seconds"] / base} for name, t in times.items()]


def format_speed_table(rows: list[dict]) -> str:
  ratio_key = [k for k in rows[0] if k.startswith("time_vs_")][0]
  lines = [f"| arm | train step (ms, median) | GFLOP/step (XLA) | time / {ratio_key[8:]} |", "|---|---|---|---|"]
  lines += [f"| {r['arm']} | {r['step_ms']:.1f} | {r['step_gflop']:.1f} | {r[ratio_key]:.2f} |" for r in rows]
  return "\n".join(lines)


def format_table(rows: list[dict]) -> str:
  lines = ["| arm | frame accuracy ↑ | frame FD ↓ | final loss | train steps/s | paper UCF FVD |",
           "|---|---|---|---|---|---|"]
  def fmt(value, digits):
    return "–" if value is None else f"{value:.{digits}f}"

  for r in rows:
    lines.append(f"| {r['arm']} | {fmt(r['frame_accuracy'], 3)} | {fmt(r['frame_fd'], 2)} | "
                 f"{fmt(r['final_loss'], 4)} | {fmt(r['steps_per_sec'], 2)} | {PAPER_UCF_FVD.get(r['arm'], '–')} |")
  return "\n".join(lines)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--steps", type=int, default=0, help="Train steps per arm (0: the base config's).")
  parser.add_argument("--num_videos", type=int, default=100)
  parser.add_argument("--sample_steps", type=int, default=50, help="DDIM steps per evaluated sample.")
  parser.add_argument("--base", default="demo", help="Base argument of video_moving_digits.py (demo | tiny).")
  parser.add_argument("--arms", default=",".join(ARMS))
  parser.add_argument("--tokenizer_workdir", default="demo_assets/walt/tokenizer")
  parser.add_argument("--classifier_workdir", default="demo_assets/walt/frame_classifier")
  parser.add_argument("--speed", action="store_true",
                      help="Only time every arm's train step, round-robin in this process (speed.json).")
  parser.add_argument("--speed_rounds", type=int, default=10)
  args = parser.parse_args(argv)
  from tools import _common
  _common.setup_logging()
  arms = args.arms.split(",")
  for name in arms:
    if name not in ARMS:
      parser.error(f"unknown arm {name!r}; choose from {sorted(ARMS)}")
  os.makedirs(args.workdir, exist_ok=True)
  if args.speed:
    speed = speed_rows(arms, args, args.speed_rounds)
    with open(os.path.join(args.workdir, "speed.json"), "w") as f:
      json.dump(speed, f, indent=2)
    print(format_speed_table(speed))
    return 0
  path = os.path.join(args.workdir, "ablation.json")
  rows = read_rows(path)
  for name in arms:
    rows = merge_row(rows, run_arm(name, args))
    with open(path, "w") as f:
      json.dump(rows, f, indent=2)
  print(format_table(rows))
  return 0


def read_rows(path: str) -> list[dict]:
  """The rows an earlier invocation wrote to `path` (arms are often run one per invocation), or []."""
  if not os.path.exists(path):
    return []
  try:
    with open(path) as f:
      return json.load(f)
  except ValueError as e:
    raise SystemExit(f"{path} is not valid JSON ({e}); move it aside to start a fresh table.") from None


def merge_row(rows: list[dict], row: dict) -> list[dict]:
  """`rows` with `row` added, replacing an earlier row of the same arm (a rerun), in ARMS order."""
  merged = {r["arm"]: r for r in rows}
  merged[row["arm"]] = row
  order = list(ARMS)
  return sorted(merged.values(), key=lambda r: order.index(r["arm"]) if r["arm"] in order else len(order))


if __name__ == "__main__":
  sys.exit(main())
