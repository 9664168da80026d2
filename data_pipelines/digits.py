"""scikit-learn's handwritten digits (1797 8×8 grey images, 10 classes) as a local tfds dataset.

The data ships inside scikit-learn, so building needs no network. Split: a fixed permutation (seed 0)
puts 1497 images in `train` and 300 in `test`. Images are stored at 8×8 uint8 in [0, 255]; pipelines
resize them (nearest) to the model's resolution.
"""
from __future__ import annotations

import numpy as np
import tensorflow_datasets as tfds

NUM_CLASSES = 10
NUM_TEST = 300


def load_arrays() -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """{'train'|'test': (images [N, 8, 8] uint8, labels [N] int64)}, deterministic."""
  from sklearn.datasets import load_digits
  digits = load_digits()
  images = np.round(digits.images / 16.0 * 255.0).astype(np.uint8)
  labels = digits.target.astype(np.int64)
  order = np.random.default_rng(0).permutation(len(labels))
  test, train = order[:NUM_TEST], order[NUM_TEST:]
  return {"train": (images[train], labels[train]), "test": (images[test], labels[test])}


class Digits(tfds.core.GeneratorBasedBuilder):
  """scikit-learn digits, generated locally."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release: sklearn digits, 1497 train / 300 test."}

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Tensor(shape=(8, 8), dtype=np.uint8),
            "label": tfds.features.ClassLabel(num_classes=NUM_CLASSES),
        }),
        supervised_keys=("image", "label"),
        homepage="https://scikit-learn.org/stable/modules/generated/sklearn.datasets.load_digits.html",
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Nothing to download.
    return {split: self._generate_examples(split) for split in ("train", "test")}

  def _generate_examples(self, split):
    images, labels = load_arrays()[split]
    for i, (image, label) in enumerate(zip(images, labels)):
      yield i, {"image": image, "label": int(label)}
