"""W.A.L.T class-conditional video generation on moving digits (the embedded UCF-101 stand-in).

Second stage of W.A.L.T (§4.2–4.4): a window-attention diffusion transformer on normalised latents of the
causal tokenizer (first stage: experiments/walt/tokenizer_moving_digits.py:demo, 9×32×32 clips ->
3×8×8×8 latents), trained jointly on videos and image stacks, with self-conditioning, frame prediction
(image-to-video, video prediction, long videos) and classifier-free guidance.

  # 1. the tokenizer (stage 1) and the frame classifier that scores samples
  python -m tools.train --config experiments/walt/tokenizer_moving_digits.py:demo --workdir /tmp/walt_demo/tokenizer
  python -m tools.train --config experiments/core/digits_classifier.py:frames --workdir /tmp/walt_demo/frame_classifier
  # 2. the transformer (stage 2), its evaluation and samples
  python -m tools.train  --config experiments/walt/video_moving_digits.py:demo --workdir /tmp/walt_demo/transformer
  python -m tools.eval   --config experiments/walt/video_moving_digits.py:demo --workdir /tmp/walt_demo/transformer
  python -m tools.sample --config experiments/walt/video_moving_digits.py:demo --workdir /tmp/walt_demo/transformer

`python -m tools.demo` runs all of it. Arguments: `demo` (the README demo), `tiny` (CI-sized), `steps=`,
`batch=`, and the ablation switches `zero_snr=`, `self_cond=` (p_sc 0.9 or 0), `full_attention=`.
Expected (demo, 4000 steps, ~52 min on 2 CPU cores, seed 0): recognisable digits of the conditioning class;
the frame classifier finds the class in 0.53 of generated frames at guidance 3 (chance 0.10; tokenizer
reconstructions 0.93); zoo/walt/README.md "Results". Paper (UCF-101, XL): FVD 46 (Table 1); Table 3 ablations.
"""
import ml_collections as mlc

from experiments import args as config_args

DEMO_ROOT = "/tmp/walt_demo"


def get_config(arg=None):
  arg = config_args.parse(arg, tiny=False, demo=False, steps=0, batch=0, zero_snr=True, self_cond=True,
                          full_attention=False, frame_prediction=True)
  c = mlc.ConfigDict()
  c.task = "walt.video_diffusion"
  c.seed = 0

  # Stage 1. allow_untrained is for smoke tests only (latents of a random tokenizer carry little).
  c.tokenizer = dict(config="experiments/walt/tokenizer_moving_digits.py:demo",
                     workdir=f"{DEMO_ROOT}/tokenizer", step=-1, overrides=[], allow_untrained=False)
  c.data = dict(name="moving_digits/one_digit_64", split="train", frames=9, resolution=32, frame_stride=1,
                num_classes=10, image_fraction=0.25, max_videos=16 if arg.tiny else 0, data_dir="", latent_cache_dir="")
  c.batch_size = arg.batch or (4 if arg.tiny else 32)
  c.total_steps = arg.steps or (4 if arg.tiny else 4000)

  # Table 8 structure at CPU width: alternating spatial (1×8×8) / spatiotemporal (3×4×4) windows.
  c.model = dict(width=32 if arg.tiny else 128, depth=2 if arg.tiny else 6, num_heads=2 if arg.tiny else 4,
                 mlp_ratio=4.0, patch_size=1, spatiotemporal_window=(3, 4, 4), adaln="lora", adaln_lora_rank=2,
                 qk_norm=True, self_condition=arg.self_cond, frame_prediction=arg.frame_prediction,
                 full_attention=arg.full_attention, dtype="float32")
  c.diffusion = dict(num_steps=1000, beta_start=1e-4, beta_end=0.02, zero_terminal_snr=arg.zero_snr,
                     prediction="v", p_uncond=0.1, p_self_condition=0.9 if arg.self_cond else 0.0,
                     p_frame_prediction=0.2 if arg.frame_prediction else 0.0, max_condition_frames=2)
  c.kernels = dict(window_attention="auto")  # auto: Pallas on TPU, cuDNN on GPU (bf16), else XLA.
  c.optimizer = dict(name="adamw", learning_rate=1e-3, warmup_steps=2 if arg.tiny else 200,
                     decay="cosine", end_learning_rate_factor=0.1, weight_decay=0.0, b1=0.9, b2=0.99,
                     eps=1e-8, grad_clip_norm=1.0,
                     # One concatenated update vector: the tiny step is per-op overhead (benchmark.py).
                     flatten=arg.tiny)
  c.ema_decay = 0.99 if arg.tiny else 0.999

  c.mesh = dict(data=-1, fsdp=1, tensor=1, context=1)
  c.axis_rules = [("batch", ("data", "fsdp")), ("embed", "fsdp"), ("mlp", "tensor"), ("heads", "tensor"),
                  ("kv", None), ("classes", None)]

  c.log_every_steps = 2 if arg.tiny else 100
  c.eval_every_steps = c.total_steps
  c.eval_at_start = False
  c.evals = dict(generation=dict(
      split="test", num_videos=4 if arg.tiny else 100, batch_size=4 if arg.tiny else 50,
      num_steps=4 if arg.tiny else 50, guidance_scale=1.0 if arg.tiny else 3.0, eta=0.0, fvd_videos=0,
      classifier_config="experiments/core/digits_classifier.py:frames",
      classifier_workdir="" if arg.tiny else f"{DEMO_ROOT}/frame_classifier"))
  c.sample = dict(num_classes=10, per_class=2 if arg.tiny else 4, batch_size=4 if arg.tiny else 40,
                  num_steps=4 if arg.tiny else 50, guidance_scale=1.0 if arg.tiny else 3.0, eta=0.0,
                  images=True, num_prediction_videos=2 if arg.tiny else 8, long_video_segments=2 if arg.tiny else 6)
  c.checkpoint = dict(every_steps=c.total_steps if arg.tiny else 1000, keep=3, async_save=True)
  c.profile_every_steps = 0
  return c
