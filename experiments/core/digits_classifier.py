"""Digits classifier on scikit-learn's handwritten digits (the zoo's first experiment and smoke test).

Reproduces: nothing from a paper. It exercises the whole core (grain + local tfds data, sharding rules,
the CLU/orbax loop, evaluators) and trains the convnet that later scores moving-digits samples.

  python -m tools.train --config experiments/core/digits_classifier.py:tiny --workdir /tmp/zoo/digits
  python -m tools.eval  --config experiments/core/digits_classifier.py:tiny --workdir /tmp/zoo/digits

`frames` variant: the same convnet on single 32×32 frames of moving-digits clips (one digit), the scorer of
W.A.L.T's generated videos (zoo/walt/diffusion_task.py: per-frame class accuracy and Fréchet distance):

  python -m tools.train --config experiments/core/digits_classifier.py:frames --workdir /tmp/walt_demo/frame_classifier

Expected: see "Results" in README.md (test accuracy of the tiny and full configs, with the commands that
measured them on a 2-core CPU).
"""
import ml_collections as mlc

from experiments import args as config_args


def get_config(arg=None):
  arg = config_args.parse(arg, tiny=False, frames=False, steps=0, batch=0, res=0)
  arg.res = arg.res or (32 if arg.frames else 16)
  c = mlc.ConfigDict()
  c.task = "digits.classifier"
  c.seed = 0

  # `frames`: classify single frames of moving-digits clips (the scorer of W.A.L.T's generated digits).
  c.data = dict(source="moving_digits_frames/one_digit_64" if arg.frames else "digits", frame_stride=4,
                split="train", resolution=arg.res, data_dir="")  # data_dir "" -> $TFDS_DATA_DIR or ~/tensorflow_datasets
  c.batch_size = arg.batch or (32 if arg.tiny else 128)
  c.total_steps = arg.steps or (300 if arg.tiny else 2000)

  # Frames: a 12-px digit anywhere on a 32×32 canvas; a third stage widens the receptive field.
  c.model = dict(width=16 if arg.tiny else 32, depth=3 if arg.frames else 2, embed_dim=64 if arg.tiny else 128)
  c.optimizer = dict(name="adamw", learning_rate=3e-3, warmup_steps=20 if arg.tiny else 100,
                     decay="cosine", end_learning_rate_factor=0.01, weight_decay=1e-4, b1=0.9, b2=0.999,
                     eps=1e-8, grad_clip_norm=1.0, flatten=False)
  c.ema_decay = 0.99 if arg.tiny else 0.999

  # Pure data parallelism: the model is tiny. `-1` fills the axis with all devices.
  c.mesh = dict(data=-1, fsdp=1, tensor=1, context=1)
  c.axis_rules = [("batch", ("data", "fsdp")), ("embed", "fsdp"), ("conv_out", "tensor"),
                  ("classes", None), ("conv_in", None)]

  c.log_every_steps = 50 if arg.tiny else 100
  c.eval_every_steps = c.total_steps
  c.eval_at_start = False
  c.evals = dict(classification=dict(batch_size=100))
  c.checkpoint = dict(every_steps=100 if arg.tiny else 500, keep=3, async_save=True)
  c.profile_every_steps = 0
  return c
