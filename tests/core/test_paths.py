"""Repository-relative asset paths resolve from any working directory (zoo/paths.py)."""
import os

from zoo import paths


def test_repository_relative_paths_resolve_from_elsewhere(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  resolved = paths.resolve("demo_assets/walt/frame_classifier")
  assert resolved == os.path.join(paths.REPO_ROOT, "demo_assets/walt/frame_classifier")
  assert os.path.isdir(os.path.join(resolved, "checkpoints"))
  # What exists from the working directory wins; absolute, empty and unknown paths pass through unchanged.
  (tmp_path / "demo_assets" / "walt" / "frame_classifier").mkdir(parents=True)
  assert paths.resolve("demo_assets/walt/frame_classifier") == "demo_assets/walt/frame_classifier"
  assert paths.resolve("/abs/where") == "/abs/where"
  assert paths.resolve("") == ""
  assert paths.resolve("no/such/dir") == "no/such/dir"
