"""W.A.L.T causal video tokenizer (§4.1; MAGVIT-v2 architecture, no quantizer) on moving digits.

Reproduces the first stage of W.A.L.T on the embedded UCF-101 stand-in: 17-frame 64×64 clips of one
bouncing digit -> a 5×8×8×c latent (time ÷4 after the first frame, space ÷8).

  python -m tools.train --config experiments/walt/tokenizer_moving_digits.py:tiny --workdir /tmp/zoo/tok
  python -m tools.eval  --config experiments/walt/tokenizer_moving_digits.py:tiny --workdir /tmp/zoo/tok
  python -m tools.sample --config experiments/walt/tokenizer_moving_digits.py:tiny --workdir /tmp/zoo/tok

Arguments: `tiny` (CPU-sized), `demo` (the README demo's 9×32×32 -> 3×8×8×8 tokenizer), `paper` (Table 8
widths at 17×128×128 -> 5×16×16×8, for TPU; check it with tools/aot_compile.py; for UCF-101 / K600 add
--config.data.name=ucf101 or kinetics600), `image` (Table 8's ImageNet tokenizer, 256² -> 1×32×32×8),
`steps=`, `res=`, `frames=`, `batch=`, `perceptual=` (weight of the perceptual term, default 0; MAGVIT uses
0.1): on moving digits its network is the in-project frame classifier shipped in
demo_assets/walt/frame_classifier, on other data the Kinetics I3D (zoo/walt/perceptual.py).
Expected: see zoo/walt/README.md (reconstruction PSNR/SSIM vs the bilinear baseline with the same number
of latent numbers, measured with the command above). Paper (UCF-101, c=8): rFVD 17.1 (Table 3f).
"""
import ml_collections as mlc

from experiments import args as config_args


def get_config(arg=None):
  arg = config_args.parse(arg, tiny=False, paper=False, image=False, demo=False, steps=0, res=0, frames=0, batch=0,
                          perceptual=0.0)
  if arg.image:  # Table 8's image-only ImageNet tokenizer: 256×256 -> 1×32×32×8, multipliers (1, 1, 2, 4).
    arg.paper = True
    arg.res, arg.frames = arg.res or 256, 1
  if arg.demo:  # The README demo's first stage: 9×32×32 -> 3×8×8×8 (space ÷4, time ÷4), CPU-sized.
    arg.tiny = True
    arg.res, arg.frames = arg.res or 32, arg.frames or 9
    arg.batch, arg.steps = arg.batch or 8, arg.steps or 1500
  arg.frames = arg.frames or 17
  c = mlc.ConfigDict()
  c.task = "walt.tokenizer"
  c.seed = 0
  resolution = arg.res or (128 if arg.paper else 64)
  c.data = dict(name=f"moving_digits/one_digit_{64 if resolution <= 64 else 128}", split="train",
                frames=arg.frames, resolution=resolution, frame_stride=1, data_dir="")
  c.batch_size = arg.batch or (4 if arg.tiny else 256 if arg.paper else 16)
  c.total_steps = arg.steps or (2000 if arg.tiny else 270_000 if arg.paper else 20_000)

  if arg.image:
    c.model = dict(channels=128, channel_multipliers=(1, 1, 2, 4), temporal_downsample=(False, False, False),
                   num_res_blocks=4, latent_channels=8, num_groups=32, discriminator_channels=64, remat=True)
    c.data.name = "imagenet"
  elif arg.paper:  # Table 8: channels 128, multipliers (1, 2, 2, 4); 4 res-blocks as in Open-MAGVIT2.
    c.model = dict(channels=128, channel_multipliers=(1, 2, 2, 4), temporal_downsample=(False, True, True),
                   num_res_blocks=4, latent_channels=8, num_groups=32, discriminator_channels=64, remat=True)
  elif arg.demo:  # Two spatial downsamplings (÷4) keep 12-px digits legible in an 8×8 latent.
    c.model = dict(channels=16, channel_multipliers=(1, 2, 4), temporal_downsample=(True, True),
                   num_res_blocks=1, latent_channels=8, num_groups=8, discriminator_channels=16, remat=False)
  else:
    c.model = dict(channels=16 if arg.tiny else 64, channel_multipliers=(1, 2, 2, 4),
                   temporal_downsample=(False, True, True), num_res_blocks=1 if arg.tiny else 2,
                   latent_channels=8, num_groups=8, discriminator_channels=16, remat=False)
  # The demo trains on L2 alone: the GAN's discriminator + R1 would double a CPU step (blurrier but legible).
  # The perceptual term is off by default: no LPIPS weights exist offline, and the stand-ins
  # (zoo/walt/perceptual.py) are a digits classifier (moving digits only) or I3D at 224² (accelerators).
  # "auto": the frame classifier on moving digits, I3D on any other data (resolved in walt/tasks.py, so
  # --config.data.name=ucf101 switches it too).
  c.loss = dict(reconstruction="l2", perceptual_weight=float(arg.perceptual), perceptual_network="auto",
                perceptual_workdir="demo_assets/walt/frame_classifier",
                gan_weight=0.0 if arg.demo else 0.1, gan_start_step=c.total_steps // 2, r1_weight=10.0)
  c.kernels = dict(causal_conv3d="auto")  # auto: Pallas on TPU, the im2col/GEMM XLA path elsewhere.
  c.optimizer = dict(name="adamw", learning_rate=1e-3 if arg.tiny else 1e-4, warmup_steps=100 if arg.tiny else 1000,
                     decay="cosine", end_learning_rate_factor=0.05, weight_decay=0.0, b1=0.9, b2=0.99,
                     eps=1e-8, grad_clip_norm=1.0, flatten=False)
  c.ema_decay = 0.999 if not arg.tiny else 0.99

  c.mesh = dict(data=-1, fsdp=1, tensor=1, context=1)
  c.axis_rules = [("batch", ("data", "fsdp")), ("conv_in", None), ("conv_out", "tensor"),
                  ("embed", "fsdp")]

  c.log_every_steps = 50 if arg.tiny else 200
  c.eval_every_steps = 500 if arg.tiny else 5000
  c.evals = dict(reconstruction=dict(split="test", num_videos=64 if arg.tiny else 256, batch_size=8,
                                     fvd_videos=0 if arg.tiny else 256))
  c.sample = dict(num_videos=4)
  c.checkpoint = dict(every_steps=500 if arg.tiny else 5000, keep=3, async_save=True)
  c.profile_every_steps = 0
  return c
