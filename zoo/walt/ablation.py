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
Reported per arm: frame accuracy, frame Fréchet distance, final training loss, train steps/s (measured in
this run, so the speed column is a ratio between arms on one machine).
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
                 "no_self_cond": "109.9", "full_attention": "not reported (Table 3b: window variants)"}


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


def format_table(rows: list[dict]) -> str:
  lines = ["| arm | frame accuracy ↑ | frame FD ↓ | final loss | train steps/s | paper UCF FVD |",
           "|---|---|---|---|---|---|"]
  def fmt(value, digits):
    return "–" if value is None else f"{value:.{digits}f}"

  for r in rows:
    lines.append(f"| {r['arm']} | {fmt(r['frame_accuracy'], 3)} | {fmt(r['frame_fd'], 2)} | "
                 f"{fmt(r['final_loss'], 4)} | {fmt(r['steps_per_sec'], 2)} | {PAPER_UCF_FVD[r['arm']]} |")
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
  args = parser.parse_args(argv)
  from tools import _common
  _common.setup_logging()
  rows = []
  os.makedirs(args.workdir, exist_ok=True)
  for name in args.arms.split(","):
    if name not in ARMS:
      parser.error(f"unknown arm {name!r}; choose from {sorted(ARMS)}")
    rows.append(run_arm(name, args))
    with open(os.path.join(args.workdir, "ablation.json"), "w") as f:
      json.dump(rows, f, indent=2)
  print(format_table(rows))
  return 0


if __name__ == "__main__":
  sys.exit(main())
