"""zoo/walt/ablation.py at CI size: every arm trains on the shipped tokenizer's latents and is scored."""
import json
import os

from tests.helpers import REPO_ROOT
from zoo.walt import ablation

ASSETS = os.path.join(REPO_ROOT, "demo_assets", "walt")


def test_ablation_arms_train_and_report(tfds_dir, tmp_path, capsys):
  assert ablation.main(["--workdir", str(tmp_path), "--base", "tiny,batch=8", "--steps", "2", "--num_videos", "4",
                        "--sample_steps", "2", "--arms", "baseline,full_attention",
                        "--tokenizer_workdir", f"{ASSETS}/tokenizer",
                        "--classifier_workdir", f"{ASSETS}/frame_classifier"]) == 0
  rows = json.loads((tmp_path / "ablation.json").read_text())
  assert [r["arm"] for r in rows] == ["baseline", "full_attention"]
  for row in rows:
    assert 0.0 <= row["frame_accuracy"] <= 1.0 and row["frame_fd"] >= 0 and row["final_loss"] > 0
  assert "| full_attention |" in capsys.readouterr().out


def test_speed_mode_times_every_arm_round_robin(tmp_path, capsys):
  assert ablation.main(["--workdir", str(tmp_path), "--base", "tiny,batch=2", "--speed", "--speed_rounds", "2",
                        "--arms", "baseline,no_self_cond"]) == 0
  rows = json.loads((tmp_path / "speed.json").read_text())
  assert [r["arm"] for r in rows] == ["baseline", "no_self_cond"]
  assert rows[0]["time_vs_baseline"] == 1.0 and all(r["step_ms"] > 0 for r in rows)
  # Self-conditioning's extra (no-gradient) forward pass is real work: dropping it removes FLOPs.
  assert rows[1]["step_gflop"] < rows[0]["step_gflop"]
  assert "| no_self_cond |" in capsys.readouterr().out
