"""Repository-relative paths (experiment files, `demo_assets/`) that resolve from any working directory.

Configs and docs name shipped assets relative to the repository root (e.g. `demo_assets/walt/tokenizer`);
a user running a tool from elsewhere (a notebook, a job's scratch directory) should get the same files.
"""
from __future__ import annotations

import os

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def resolve(path: str) -> str:
  """`path` itself when it is empty, absolute or exists from the working directory; else the same path under
  the repository root when that exists; else `path` unchanged (so errors name what the user wrote)."""
  if not path or os.path.isabs(path) or os.path.exists(path):
    return path
  candidate = os.path.join(REPO_ROOT, path)
  return candidate if os.path.exists(candidate) else path
