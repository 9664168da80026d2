"""The bridge between W.A.L.T's two stages: a frozen tokenizer and the latent datasets the transformer trains on.

W.A.L.T §4.1/§5.4: the transformer models *normalised* tokenizer latents, z' = (z − μ) / σ per channel, with
μ, σ kept by the tokenizer run (`tasks.TokenizerTrainer.latent_mean / latent_std`). The tokenizer is frozen
in the second stage, so each clip's latent is computed once and cached:

  <cache_dir>/<split>_<key>.npz   latents float32 [N, t, h, w, c] (raw, not normalised), labels int32 [N],
                                  mean/std [c], and the tokenizer step that produced them.

`key` hashes the tokenizer checkpoint step and the data settings, so a retrained tokenizer or another
resolution never reads a stale cache. The image dataset of the joint image–video training (§4.1: "a stack
of independent images") comes for free: the causal encoder maps frame 0 of a clip exactly to the latent of
that frame encoded as an image (tests/walt/test_tokenizer.py), so latent frame 0 of every training clip is
an image latent. An image example stacks `t` frame-0 latents of clips with the same label.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import time

import jax
import numpy as np
from flax import nnx

from zoo import config as zconfig


@dataclasses.dataclass
class FrozenTokenizer:
  """A restored `TokenizerTrainer` (EMA params) plus what the second stage needs from it."""
  trainer: nnx.Module                     # tasks.TokenizerTrainer
  config: object                          # its experiment config (ConfigDict)
  step: int                               # checkpoint step (0 for an untrained tokenizer)
  mesh: jax.sharding.Mesh

  @property
  def latent_mean(self) -> np.ndarray:
    return np.asarray(jax.device_get(self.trainer.latent_mean[...]))

  @property
  def latent_std(self) -> np.ndarray:
    return np.asarray(jax.device_get(self.trainer.latent_std()))

  def encode(self, videos: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """videos float32 [N, T, H, W, 3] in [−1, 1] -> raw latents [N, t, h, w, c] (numpy, on the host)."""
    with jax.set_mesh(self.mesh):  # The tokenizer's own mesh, whatever mesh the caller has set.
      return _batched(_jitted_method("encode", self.trainer.tokenizer), videos, batch_size)

  def decode(self, latents: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """raw latents [N, t, h, w, c] -> videos [N, T, H, W, 3] clipped to [−1, 1] (numpy, on the host)."""
    with jax.set_mesh(self.mesh):
      return np.clip(_batched(_jitted_method("decode", self.trainer.tokenizer), latents, batch_size), -1, 1)

  def normalize(self, latents: np.ndarray) -> np.ndarray:
    return ((latents - self.latent_mean) / self.latent_std).astype(np.float32)

  def denormalize(self, latents: np.ndarray) -> np.ndarray:
    return (np.asarray(latents, np.float32) * self.latent_std + self.latent_mean).astype(np.float32)


_JIT_CACHE: dict = {}


def _jitted_method(name: str, module: nnx.Module):
  graphdef, state = nnx.split(module)
  key = (name, graphdef)
  if key not in _JIT_CACHE:
    _JIT_CACHE[key] = jax.jit(lambda s, x: getattr(nnx.merge(graphdef, s), name)(x))
  fn = _JIT_CACHE[key]
  return lambda x: fn(state, x)


def map_in_batches(fn, arrays, batch_size: int) -> np.ndarray:
  """Applies fn(start, *chunks) over aligned `arrays` in fixed-size batches; the tail batch is padded by
  repeating its last row, so one compiled program serves every batch, and the padding is dropped."""
  outputs = []
  for start in range(0, len(arrays[0]), batch_size):
    chunks = [np.asarray(a[start:start + batch_size]) for a in arrays]
    pad = batch_size - len(chunks[0])
    if pad:
      chunks = [np.concatenate([c, np.repeat(c[-1:], pad, axis=0)]) for c in chunks]
    outputs.append(np.asarray(jax.device_get(fn(start, *chunks)))[:batch_size - pad])
  return np.concatenate(outputs)


def _batched(fn, inputs: np.ndarray, batch_size: int) -> np.ndarray:
  return map_in_batches(lambda start, chunk: fn(chunk), [inputs], batch_size)


def tokenizer_experiment(config):
  """The tokenizer's experiment config named by `config.tokenizer.config` (a file:args spec)."""
  return zconfig.load_config(config.tokenizer.config, list(config.tokenizer.get("overrides", [])))


def latent_grid(config) -> tuple[int, int, int, int]:
  """(t, h, w, c) of the latents of config.data's clips under the configured tokenizer (no checkpoint)."""
  from zoo.walt import tasks as tokenizer_tasks
  tokenizer_cfg = tokenizer_tasks.tokenizer_config(tokenizer_experiment(config))
  return tokenizer_cfg.latent_shape(config.data.frames, config.data.resolution, config.data.resolution)


def load_tokenizer(config, devices: list | None = None) -> FrozenTokenizer:
  """Restores the tokenizer named by `config.tokenizer` (EMA params) for encoding and decoding.

  `config.tokenizer.workdir` is the tokenizer's training workdir. With `allow_untrained=True` and no
  checkpoint, a freshly initialised tokenizer is used instead (for tests and compile checks only: its
  latents carry little information and its decodes are noise).
  """
  from zoo.training import loop
  from zoo.walt import tasks as tokenizer_tasks
  checkpoint_dir = os.path.join(config.tokenizer.workdir, "checkpoints") if config.tokenizer.workdir else ""
  step = config.tokenizer.get("step", -1)
  try:
    if not checkpoint_dir:
      raise FileNotFoundError("config.tokenizer.workdir is empty")
    # The stored config rebuilds the tokenizer exactly as trained, whatever flags its run used.
    tok_config, _, mesh, trainer, restored_step, _ = loop.restore_trained_model(
        checkpoint_dir, step=None if step < 0 else step, devices=devices)
  except FileNotFoundError as e:
    if not config.tokenizer.get("allow_untrained", False):
      raise FileNotFoundError(
          f"W.A.L.T's transformer trains on latents of a trained tokenizer, but none was found ({e}). "
          f"Train it first:\n  python -m tools.train --config {config.tokenizer.config} --workdir "
          f"{config.tokenizer.workdir or '<dir>'}\nand point --config.tokenizer.workdir at that directory "
          "(or set --config.tokenizer.allow_untrained=True for a smoke test).") from None
    logging.warning("No tokenizer checkpoint (%s): using an UNTRAINED tokenizer (allow_untrained=True).", e)
    from zoo import sharding as zsharding
    tok_config = tokenizer_experiment(config)
    mesh = zsharding.make_mesh(tok_config.mesh.to_dict(), devices)
    trainer = tokenizer_tasks.build_tokenizer_trainer(tok_config, nnx.Rngs(tok_config.seed))
    trainer.eval()
    restored_step = 0
  expected = latent_grid(config)
  got = tokenizer_tasks.tokenizer_config(tok_config).latent_shape(
      config.data.frames, config.data.resolution, config.data.resolution)
  if got != expected:
    raise ValueError(f"The tokenizer in {checkpoint_dir} maps {config.data.frames}×{config.data.resolution}² "
                     f"clips to {got} latents, but config.tokenizer.config ({config.tokenizer.config}) says "
                     f"{expected}; make them describe the same tokenizer.")
  return FrozenTokenizer(trainer=trainer, config=tok_config, step=restored_step, mesh=mesh)


def cache_key(config, tokenizer: FrozenTokenizer, split: str) -> str:
  d = config.data
  description = json.dumps({
      "tokenizer": config.tokenizer.config, "tokenizer_workdir": os.path.abspath(config.tokenizer.workdir or ""),
      "tokenizer_step": tokenizer.step, "data": d.name, "split": split, "frames": d.frames,
      "resolution": d.resolution, "frame_stride": d.get("frame_stride", 1),
      "max_videos": d.get("max_videos", 0)}, sort_keys=True)
  return hashlib.sha256(description.encode()).hexdigest()[:16]


def cache_dir(config) -> str:
  if config.data.get("latent_cache_dir"):
    return config.data.latent_cache_dir
  if config.tokenizer.workdir:
    return os.path.join(config.tokenizer.workdir, "latent_cache")
  return os.path.join(os.path.expanduser("~"), ".cache", "zoo", "walt_latents")


def encoded_split(config, split: str, tokenizer: FrozenTokenizer | None = None) -> dict[str, np.ndarray]:
  """{"latents": raw [N, t, h, w, c], "labels": [N], "mean", "std"} for `split`, cached on disk."""
  from zoo.walt import tasks as tokenizer_tasks
  tokenizer = tokenizer or load_tokenizer(config)
  path = os.path.join(cache_dir(config), f"{split}_{cache_key(config, tokenizer, split)}.npz")
  if os.path.exists(path):
    with np.load(path) as cached:
      return {k: cached[k] for k in cached.files}
  source = tokenizer_tasks.video_source(config, split)
  count = len(source) if not config.data.get("max_videos", 0) else min(len(source), config.data.max_videos)
  map_fn = tokenizer_tasks.video_map_fn(config)
  logging.info("Encoding %d %s clips with the tokenizer (step %d) into %s ...", count, split, tokenizer.step, path)
  start = time.time()
  latents, labels = [], []
  chunk = 64
  for begin in range(0, count, chunk):
    records = [map_fn(source[i]) for i in range(begin, min(begin + chunk, count))]
    latents.append(tokenizer.encode(np.stack([r["video"] for r in records])))
    labels.extend(int(r["label"]) for r in records)
    logging.info("  encoded %d/%d clips (%.0f s)", begin + len(records), count, time.time() - start)
  result = {"latents": np.concatenate(latents).astype(np.float32), "labels": np.asarray(labels, np.int32),
            "mean": tokenizer.latent_mean, "std": tokenizer.latent_std,
            "tokenizer_step": np.int64(tokenizer.step)}
  if jax.process_index() == 0:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = path + f".tmp{os.getpid()}"
    with open(partial, "wb") as f:
      np.savez(f, **result)
    os.replace(partial, path)  # Atomic: a killed run never leaves a truncated cache behind.
  return result


class LatentClips:
  """Random-access training records over encoded clips, optionally mixed with image stacks (§4.1).

  Records 0..N−1 are videos; records N..N+M−1 are stacks of `t` independent image latents (latent frame
  0 of t clips with the same label, chosen by a per-record RNG so record i is always the same stack).
  Record: {"latents": normalised float32 [t, h, w, c], "label": int32, "is_image": bool}.
  """

  def __init__(self, encoded: dict[str, np.ndarray], image_fraction: float = 0.0, seed: int = 0):
    if not 0.0 <= image_fraction < 1.0:
      raise ValueError(f"data.image_fraction={image_fraction} must be in [0, 1).")
    self.latents = ((encoded["latents"] - encoded["mean"]) / encoded["std"]).astype(np.float32)
    self.labels = encoded["labels"].astype(np.int32)
    self.num_videos = len(self.latents)
    self.num_image_stacks = int(round(self.num_videos * image_fraction / (1.0 - image_fraction)))
    self.seed = seed
    self.by_label = {int(label): np.flatnonzero(self.labels == label) for label in np.unique(self.labels)}
    self.label_values = np.asarray(sorted(self.by_label))

  def __len__(self) -> int:
    return self.num_videos + self.num_image_stacks

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    index = int(index)
    if index < self.num_videos:
      return {"latents": self.latents[index], "label": self.labels[index], "is_image": np.bool_(False)}
    rng = np.random.default_rng((self.seed, index))
    label = int(self.labels[rng.integers(self.num_videos)])
    clips = rng.choice(self.by_label[label], size=self.latents.shape[1])
    return {"latents": self.latents[clips, 0], "label": np.int32(label), "is_image": np.bool_(True)}
