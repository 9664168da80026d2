"""Loading experiment files and applying command-line overrides, strictly.

`load_config("experiments/core/digits_classifier.py:tiny,steps=50", ["model.width=32"])` imports the file,
calls its `get_config(arg)`, applies each `dotted.key=value` override and returns a locked ConfigDict.
An unknown key or a value of the wrong type raises `ConfigError` naming the key and the closest existing
key, before anything expensive runs.
"""
from __future__ import annotations

import ast
import difflib
import importlib.util
import json
import os
import sys
from typing import Any, Iterable, Sequence

import ml_collections

from experiments.args import ConfigArgError, convert_value


class ConfigError(ValueError):
  """An experiment config could not be loaded or overridden."""


def _all_keys(config: ml_collections.ConfigDict, prefix: str = "") -> list[str]:
  keys = []
  for key, value in config.items():
    full = f"{prefix}{key}"
    keys.append(full)
    if isinstance(value, ml_collections.ConfigDict):
      keys.extend(_all_keys(value, full + "."))
  return keys


def closest_key(config: ml_collections.ConfigDict, dotted: str) -> str | None:
  matches = difflib.get_close_matches(dotted, _all_keys(config), n=1, cutoff=0.0)
  return matches[0] if matches else None


def _unknown_key_error(config, dotted: str) -> ConfigError:
  suggestion = closest_key(config, dotted)
  hint = f" Did you mean '{suggestion}'?" if suggestion else ""
  return ConfigError(f"Unknown config key '{dotted}'.{hint} (Configs are locked: a key must exist in "
                     "the experiment file before it can be overridden.)")


def _parse_literal(text: str) -> Any:
  try:
    return ast.literal_eval(text)
  except (ValueError, SyntaxError):
    return text


def _convert(text: str, current: Any, dotted: str) -> Any:
  what = f"config key '{dotted}'"
  if isinstance(current, ml_collections.ConfigDict):
    raise ConfigError(f"{what} is a group of keys ({', '.join(current.keys())}); override one of "
                      f"them, e.g. '{dotted}.{next(iter(current.keys()), 'x')}=...'.")
  if current is None:
    return _parse_literal(text)
  if isinstance(current, str) and len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
    return text[1:-1]  # --config.name="'x'" and --config.name=x mean the same.
  if isinstance(current, (bool, int, float, str)):
    try:
      return convert_value(text, current, what)
    except ConfigArgError as e:
      raise ConfigError(str(e)) from None
  if isinstance(current, (tuple, list)):
    value = _parse_literal(text)
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
      value = (value,)
    if not isinstance(value, (tuple, list)):
      raise ConfigError(f"{what}: expected a sequence like (1, 2), got {text!r}.")
    return type(current)(value)
  raise ConfigError(f"{what} has type {type(current).__name__}, which cannot be set from the command line.")


def apply_override(config: ml_collections.ConfigDict, dotted: str, text: str) -> None:
  """Sets `config.<dotted> = text` converted to the existing value's type."""
  *parents, leaf = dotted.split(".")
  node = config
  for part in parents:
    if not isinstance(node, ml_collections.ConfigDict) or part not in node:
      raise _unknown_key_error(config, dotted)
    node = node[part]
  if not isinstance(node, ml_collections.ConfigDict) or leaf not in node:
    raise _unknown_key_error(config, dotted)
  value = _convert(text, node[leaf], dotted)
  with node.unlocked():  # Type-checked above; unlocked only so None-valued fields can take a value.
    try:
      node[leaf] = value
    except TypeError as e:  # ml_collections' own type safety (e.g. a FieldReference's type).
      raise ConfigError(f"config key '{dotted}': {e}") from None


def load_config_file(path: str, arg: str | None = None) -> ml_collections.ConfigDict:
  """Imports an experiment file and calls its `get_config(arg)`."""
  if not os.path.exists(path):
    raise ConfigError(f"Experiment file not found: {path!r} (paths are relative to the repository root, "
                      "e.g. experiments/core/digits_classifier.py).")
  module_name = "_zoo_experiment_" + os.path.splitext(os.path.basename(path))[0]
  spec = importlib.util.spec_from_file_location(module_name, path)
  module = importlib.util.module_from_spec(spec)
  sys.modules[module_name] = module
  spec.loader.exec_module(module)
  if not hasattr(module, "get_config"):
    raise ConfigError(f"{path} defines no get_config(arg).")
  try:
    config = module.get_config(arg)
  except ConfigArgError as e:
    raise ConfigError(f"{path}: {e}") from None
  if not isinstance(config, ml_collections.ConfigDict):
    raise ConfigError(f"{path}: get_config must return an ml_collections.ConfigDict.")
  return config


def load_config(spec: str, overrides: Iterable[str] = ()) -> ml_collections.ConfigDict:
  """`spec` is 'path.py' or 'path.py:args'; overrides are 'dotted.key=value' strings."""
  path, _, arg = spec.partition(":")
  config = load_config_file(path, arg or None)
  config.lock()
  apply_overrides(config, overrides)
  return config


def apply_overrides(config: ml_collections.ConfigDict, overrides: Iterable[str]) -> None:
  """Applies 'dotted.key=value' strings in order (see apply_override)."""
  for override in overrides:
    dotted, sep, text = override.partition("=")
    if not sep:
      raise ConfigError(f"Override {override!r} must look like 'key=value'.")
    apply_override(config, dotted.strip(), text)


def split_config_overrides(argv: Sequence[str]) -> tuple[list[str], list[str]]:
  """Separates `--config.a.b=v` / `--config.a.b v` overrides from the remaining argv."""
  rest, overrides = [], []
  i = 0
  while i < len(argv):
    token = argv[i]
    if token.startswith("--config."):
      body = token[len("--config."):]
      if "=" not in body:
        if i + 1 >= len(argv):
          raise ConfigError(f"{token} needs a value.")
        body = f"{body}={argv[i + 1]}"
        i += 1
      overrides.append(body)
    else:
      rest.append(token)
    i += 1
  return rest, overrides


def to_json(config: ml_collections.ConfigDict) -> str:
  return config.to_json_best_effort(indent=2, sort_keys=True)


def from_json(text: str) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(json.loads(text))
