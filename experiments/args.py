"""Typed parsing of the `:arg` part of `--config experiments/x.py:tiny,res=64` (big_vision style).

A config declares its arguments with typed defaults::

  arg = args.parse(arg, tiny=False, res=128, frames=17)

* `key=value` sets an argument; the value is converted to the default's type.
* A bare token `tiny` sets the boolean argument `tiny` to True.
* An unknown argument or a value of the wrong type is an error that names the argument and the closest
  declared one, before anything runs.
"""
from __future__ import annotations

import difflib
from typing import Any

import ml_collections


class ConfigArgError(ValueError):
  """A bad `:arg` string for an experiment file."""


def _closest(name: str, candidates) -> str:
  match = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.0)
  return f" Did you mean '{match[0]}'?" if match else ""


def convert_value(text: str, default: Any, what: str) -> Any:
  """Converts `text` to the type of `default`; raises ConfigArgError naming `what` on failure."""
  if isinstance(default, bool):
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
      return True
    if lowered in ("0", "false", "no", "off"):
      return False
    raise ConfigArgError(f"{what}: expected a bool (true/false), got {text!r}.")
  if isinstance(default, int):
    try:
      return int(text)
    except ValueError:
      raise ConfigArgError(f"{what}: expected an int, got {text!r}.") from None
  if isinstance(default, float):
    try:
      return float(text)
    except ValueError:
      raise ConfigArgError(f"{what}: expected a float, got {text!r}.") from None
  return text


def parse(arg: str | None, **defaults: Any) -> ml_collections.ConfigDict:
  """Parses 'tiny,res=64' against typed `defaults`; returns a locked ConfigDict of the arguments."""
  values = dict(defaults)
  for token in (arg or "").split(","):
    token = token.strip()
    if not token:
      continue
    key, sep, text = token.partition("=")
    key = key.strip()
    if key not in defaults:
      raise ConfigArgError(
          f"Unknown config argument '{key}'.{_closest(key, defaults)} "
          f"Arguments of this config: {sorted(defaults)}.")
    if not sep:  # Bare token: a boolean switch such as `tiny`.
      if not isinstance(defaults[key], bool):
        raise ConfigArgError(
            f"Config argument '{key}' needs a value ('{key}=...'): it is a "
            f"{type(defaults[key]).__name__}, only bool arguments can be given bare.")
      values[key] = True
    else:
      values[key] = convert_value(text, defaults[key], f"config argument '{key}'")
  parsed = ml_collections.ConfigDict(values)
  parsed.lock()
  return parsed
