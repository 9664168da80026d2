"""zoo/walt/ablation.py at CI size: every arm trains on the shipped tokenizer's latents and is scored."""
import json
import os

from tests.helpers import REPO_ROOT
from zoo.walt import ablation

ASSETS = os.path.join(REPO_ROOT, "demo_assets", "walt")


def test_ablation_arms_train_and_report(tfds_dir, tmp_path, capsys):
  # A row from an earlier invocation (arms are often run one per invocation) must survive this one.
  earlier = {"arm": "no_zero_snr", "frame_accuracy": 0.5, "frame_fd": 600.0, "final_loss": 0.3, "steps_per_sec": 1.0}
  (tmp_path / "ablation.json").write_text(json.dumps([earlier]))
  assert ablation.main(["--workdir", str(tmp_path), "--base", "tiny,batch=8", "--steps", "2", "--num_videos", "4",
                        "--sample_steps", "2", "--arms", "baseline,full_attention",
                        "--tokenizer_workdir", f"{ASSETS}/tokenizer",
                        "--classifier_workdir", f"{ASSETS}/frame_classifier"]) == 0
  rows = json.loads((tmp_path / "ablation.json").read_text())
  assert [r["arm"] for r in rows] == ["baseline", "no_zero_snr", "full_attention"]
  assert rows[1] == earlier
  rows = [rows[0], rows[2]]  # the two trained here
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


def test_rerunning_an_arm_replaces_its_row_in_arm_order():
  rows = [{"arm": "full_attention", "v": 1}, {"arm": "baseline", "v": 1}]
  merged = ablation.merge_row(rows, {"arm": "full_attention", "v": 2})
  assert merged == [{"arm": "baseline", "v": 1}, {"arm": "full_attention", "v": 2}]
  assert ablation.merge_row([], {"arm": "no_self_cond"}) == [{"arm": "no_self_cond"}]


def test_corrupt_ablation_table_is_a_clear_error(tmp_path):
  (tmp_path / "ablation.json").write_text("{not json")
  try:
    ablation.read_rows(str(tmp_path / "ablation.json"))
  except SystemExit as e:
    assert "not valid JSON" in str(e) and "move it aside" in str(e)
  else:
    raise AssertionError("a corrupt ablation.json was read without an error")
