"""The pattern for tfds builders whose data is generated on this machine (no network, ever).

A builder subclasses `tfds.core.GeneratorBasedBuilder` as usual and produces its examples from a package
(scikit-learn's digits, scikit-image's photos) or a simulator, deterministically per seed. `prepare()`
builds it once into `data_dir` as ArrayRecord files, which grain reads with random access; in multi-host
jobs process 0 builds while the others wait at a barrier, then everyone opens the same files.

`data_dir` resolution: explicit argument > $TFDS_DATA_DIR > ~/tensorflow_datasets.
"""
from __future__ import annotations

import logging
import os
from typing import Type

import jax
import tensorflow_datasets as tfds

FILE_FORMAT = "array_record"


def resolve_data_dir(data_dir: str | None) -> str:
  return os.path.expanduser(data_dir or os.environ.get("TFDS_DATA_DIR") or "~/tensorflow_datasets")


def prepare(builder_cls: Type[tfds.core.GeneratorBasedBuilder], data_dir: str | None = None,
            **builder_kwargs) -> tfds.core.DatasetBuilder:
  """Returns a prepared builder, generating its ArrayRecord files on first use."""
  data_dir = resolve_data_dir(data_dir)
  builder = builder_cls(data_dir=data_dir, file_format=FILE_FORMAT, **builder_kwargs)
  if jax.process_index() == 0 and not _is_prepared(builder):
    logging.info("Generating %s into %s (first use; no network involved).", builder.name, data_dir)
    builder.download_and_prepare(file_format=FILE_FORMAT)
  if jax.process_count() > 1:
    from jax.experimental import multihost_utils
    multihost_utils.sync_global_devices(f"tfds_prepare_{builder.name}")
    builder = builder_cls(data_dir=data_dir, file_format=FILE_FORMAT, **builder_kwargs)
  return builder


def _is_prepared(builder: tfds.core.DatasetBuilder) -> bool:
  return os.path.exists(os.path.join(builder.data_dir, "dataset_info.json"))


class IndexedSplitsMixin:
  """`_split_generators` / `_generate_examples` for builders whose example `i` of a split is a pure
  function `example_fn(builder_config, split, i)` (so any subset regenerates identically, whatever the
  order or worker count). The builder config provides `num_train` and `num_test`.

      class MovingDigits(local_tfds.IndexedSplitsMixin, tfds.core.GeneratorBasedBuilder):
        example_fn = staticmethod(generate_example)
  """

  example_fn = None  # Set by the builder: (builder_config, split, index) -> feature dict.

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download.
    config = self.builder_config
    return {"train": self._generate_examples("train", config.num_train),
            "test": self._generate_examples("test", config.num_test)}

  def _generate_examples(self, split: str, num_examples: int):
    for index in range(num_examples):
      yield index, self.example_fn(self.builder_config, split, index)
