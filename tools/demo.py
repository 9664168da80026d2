"""The README's first command: W.A.L.T on moving digits, end to end on the embedded data.

  python -m tools.demo                       # sample + evaluate the shipped demo models (~5 min on 2 cores)
  python -m tools.demo --train transformer   # retrain stage 2 on the shipped tokenizer first (~55 min)
  python -m tools.demo --train all           # retrain everything with the documented commands (~2 h)

W.A.L.T has two stages (zoo/walt/README.md): a causal video tokenizer (9×32×32 clips -> 3×8×8×8 latents)
and a window-attention diffusion transformer on its latents; a small frame classifier scores the samples.
Training all three takes more than a demo can afford on a 2-core CPU, so the repository ships their
inference exports in demo_assets/walt/ (float16, ~9 MB), produced by the commands `--train all` runs, with
seed 0 (demo_assets/walt/README.md lists them and what they measure; the transformer's samples are
recognisable digits of their class). The demo then writes:

  <workdir>/samples/  class-conditional videos (one row per digit), images, image-to-video,
                      video prediction and a long autoregressive video (GIF / PNG)
  <workdir>/eval.json per-frame digit accuracy of generated videos under the frame classifier (and the
                      same for the tokenizer's reconstructions of real clips, the ceiling), Fréchet distance
"""
from __future__ import annotations

import argparse
import os
import sys

ASSETS = "demo_assets/walt"
TOKENIZER = "experiments/walt/tokenizer_moving_digits.py:demo"
CLASSIFIER = "experiments/core/digits_classifier.py:frames"
TRANSFORMER = "experiments/walt/video_moving_digits.py:demo"


def _stage_dirs(args) -> dict[str, str]:
  """Where each stage's model is read from: the shipped export, or this demo's own training run."""
  trained = {"all": {"tokenizer", "frame_classifier", "transformer"}, "transformer": {"transformer"},
             "none": set()}[args.train]
  return {stage: os.path.join(args.workdir, stage) if stage in trained else os.path.join(ASSETS, stage)
          for stage in ("tokenizer", "frame_classifier", "transformer")}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--workdir", default="/tmp/zoo_demo/walt")
  parser.add_argument("--train", default="none", choices=["none", "transformer", "all"],
                      help="Which stages to (re)train instead of using the shipped exports.")
  args = parser.parse_args(argv)
  from zoo import paths
  os.chdir(paths.REPO_ROOT)  # Experiment and asset paths are relative to the repository root.
  from tools import eval as eval_tool
  from tools import sample as sample_tool
  from tools import train as train_tool

  dirs = _stage_dirs(args)
  stage_flags = [f"--config.tokenizer.workdir={dirs['tokenizer']}",
                 f"--config.evals.generation.classifier_workdir={dirs['frame_classifier']}",
                 f"--config.data.latent_cache_dir={os.path.join(args.workdir, 'latent_cache')}"]
  if args.train == "all":
    print(f"[demo] Stage 1: training the tokenizer ({TOKENIZER}) into {dirs['tokenizer']}.")
    train_tool.main(["--config", TOKENIZER, "--workdir", dirs["tokenizer"]])
    print(f"[demo] Training the frame classifier ({CLASSIFIER}) into {dirs['frame_classifier']}.")
    train_tool.main(["--config", CLASSIFIER, "--workdir", dirs["frame_classifier"]])
  if args.train in ("all", "transformer"):
    print(f"[demo] Stage 2: training the transformer ({TRANSFORMER}) into {dirs['transformer']} "
          "(first encodes the training clips with the tokenizer, cached).")
    train_tool.main(["--config", TRANSFORMER, "--workdir", dirs["transformer"], *stage_flags])
  else:
    print(f"[demo] Using the shipped models in {ASSETS}/ (see its README for the commands that made them).")

  print("[demo] Sampling: class-conditional videos and images, image-to-video, prediction, long videos.")
  sample_tool.main(["--config", TRANSFORMER, "--workdir", dirs["transformer"],
                    "--out", os.path.join(args.workdir, "samples"), *stage_flags])
  print("[demo] Evaluating generated videos with the frame classifier.")
  eval_tool.main(["--config", TRANSFORMER, "--workdir", dirs["transformer"],
                  "--output", os.path.join(args.workdir, "eval.json"), *stage_flags])
  print(f"[demo] Done. Samples: {args.workdir}/samples/ (class_conditional_videos.gif: row k is "
        f"conditioned on digit k), metrics: {args.workdir}/eval.json")
  return 0


if __name__ == "__main__":
  sys.exit(main())
