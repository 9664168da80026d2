"""Experiment files: `:arg` parsing, `--config.key=value` overrides, strict errors."""
import pytest

from experiments import args as config_args
from zoo import config as zconfig

DIGITS = "experiments/core/digits_classifier.py"


def test_args_typed_and_bare_switch():
  parsed = config_args.parse("tiny,res=32", tiny=False, res=16, name="x")
  assert parsed.tiny is True and parsed.res == 32 and parsed.name == "x"


def test_args_unknown_names_closest():
  with pytest.raises(config_args.ConfigArgError, match=r"Unknown config argument 'rez'.*'res'"):
    config_args.parse("rez=32", tiny=False, res=16)


def test_args_wrong_type_and_bare_non_bool():
  with pytest.raises(config_args.ConfigArgError, match="expected an int"):
    config_args.parse("res=big", res=16)
  with pytest.raises(config_args.ConfigArgError, match="needs a value"):
    config_args.parse("res", res=16)


def test_load_with_args_and_overrides():
  config = zconfig.load_config(f"{DIGITS}:tiny,steps=7",
                               ["model.width=24", "optimizer.learning_rate=0.5", "ema_decay=0"])
  assert config.total_steps == 7
  assert config.model.width == 24 and isinstance(config.model.width, int)
  assert config.optimizer.learning_rate == 0.5
  assert config.ema_decay == 0.0 and isinstance(config.ema_decay, float)


def test_unknown_key_names_closest_key():
  with pytest.raises(zconfig.ConfigError, match=r"Unknown config key 'model.widht'.*'model.width'"):
    zconfig.load_config(f"{DIGITS}:tiny", ["model.widht=3"])
  with pytest.raises(zconfig.ConfigError, match=r"'optimizer.learning_rate'"):
    zconfig.load_config(f"{DIGITS}:tiny", ["optimizer.learningrate=3"])


def test_wrong_type_is_an_error():
  with pytest.raises(zconfig.ConfigError, match=r"config key 'model.width': expected an int"):
    zconfig.load_config(f"{DIGITS}:tiny", ["model.width=wide"])
  with pytest.raises(zconfig.ConfigError, match=r"'model' is a group of keys"):
    zconfig.load_config(f"{DIGITS}:tiny", ["model=3"])


def test_config_is_locked_after_load():
  config = zconfig.load_config(f"{DIGITS}:tiny")
  with pytest.raises(AttributeError):
    config.new_key = 1


def test_split_overrides_both_spellings():
  rest, overrides = zconfig.split_config_overrides(
      ["--config", "x.py", "--config.a.b=1", "--config.c", "2", "--workdir", "w"])
  assert rest == ["--config", "x.py", "--workdir", "w"]
  assert overrides == ["a.b=1", "c=2"]


def test_missing_file_is_clear():
  with pytest.raises(zconfig.ConfigError, match="Experiment file not found"):
    zconfig.load_config("experiments/nope.py:tiny")


@pytest.mark.parametrize("path", ["experiments/core/digits_classifier.py"])
def test_every_config_has_docstring_with_command(path):
  text = open(path).read()
  assert text.startswith('"""') and "python -m tools.train" in text and "Expected" in text
