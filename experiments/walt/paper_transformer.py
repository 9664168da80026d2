"""The W.A.L.T transformer experiments of the paper (Table 8), shared by ucf101_xl.py, k600_l.py and
imagenet_l.py. One function builds the whole config so the three files differ only in what Table 8 lists.

Sharding (maxtext-style logical rules): batch over data×fsdp, weights' `embed` axis over fsdp (ZeRO-3),
heads / MLP hidden over tensor. 460M parameters + AdamW states are ~7.4 GB in f32, so a v5e pod
(16 GB/chip) shards them with fsdp; activations are bfloat16.
"""
import ml_collections as mlc

from experiments import args as config_args


def paper_config(arg, *, dataset: str, num_classes: int, tokenizer: str, frames: int, resolution: int,
                 depth: int, width: int, adaln: str, batch_size: int, total_steps: int,
                 p_frame_prediction: float, image_fraction: float, guidance_scale: float = 1.0):
  arg = config_args.parse(arg, steps=0, batch=0, depth=0, data=1, fsdp=-1, workdir="")
  c = mlc.ConfigDict()
  c.task = "walt.video_diffusion"
  c.seed = 0
  c.tokenizer = dict(config=tokenizer, workdir=arg.workdir, step=-1, overrides=[], allow_untrained=False)
  c.data = dict(name=dataset, split="train", frames=frames, resolution=resolution, frame_stride=1,
                num_classes=num_classes, image_fraction=image_fraction, max_videos=0, data_dir="",
                latent_cache_dir="")
  c.batch_size = arg.batch or batch_size
  c.total_steps = arg.steps or total_steps
  c.model = dict(width=width, depth=arg.depth or depth, num_heads=16, mlp_ratio=4.0, patch_size=1,
                 spatiotemporal_window=(5, 8, 8), adaln=adaln, adaln_lora_rank=2, qk_norm=True,
                 self_condition=True, frame_prediction=p_frame_prediction > 0, full_attention=False,
                 dtype="bfloat16")
  c.diffusion = dict(num_steps=1000, beta_start=1e-4, beta_end=0.02, zero_terminal_snr=True, prediction="v",
                     p_uncond=0.1 if num_classes else 0.0, p_self_condition=0.9,
                     p_frame_prediction=p_frame_prediction, max_condition_frames=2)
  c.kernels = dict(window_attention="auto")
  # Table 8: AdamW, cosine, lr 5e-4, EMA. Warm-up, betas, weight decay, clipping and EMA decay are not
  # given in the paper [unverified]; these are DiT's / common choices.
  c.optimizer = dict(name="adamw", learning_rate=5e-4, warmup_steps=5000, decay="cosine",
                     end_learning_rate_factor=0.0, weight_decay=0.0, b1=0.9, b2=0.99, eps=1e-8, grad_clip_norm=1.0,
                     flatten=False)  # FSDP-sharded parameters: the flat update needs replicated ones.
  c.ema_decay = 0.9999
  # Default: FSDP over every chip (batch is split over data×fsdp too). On large pods set e.g. data=-1,fsdp=16.
  c.mesh = dict(data=arg.data, fsdp=arg.fsdp, tensor=1, context=1)
  c.axis_rules = [("batch", ("data", "fsdp")), ("embed", "fsdp"), ("mlp", "tensor"), ("heads", "tensor"),
                  ("kv", None), ("classes", None)]
  c.log_every_steps = 100
  c.eval_every_steps = 10_000
  c.eval_at_start = False
  # FVD on 10k samples is a separate job (tools/eval.py); in-training evals use 256 videos.
  c.evals = dict(generation=dict(split="test" if dataset != "imagenet" else "validation", num_videos=256,
                                 batch_size=32, num_steps=50, guidance_scale=guidance_scale, eta=0.0,
                                 fvd_videos=256 if frames > 1 else 0, classifier_config="", classifier_workdir=""))
  c.sample = dict(num_classes=min(num_classes, 10) or 1, per_class=4, batch_size=32, num_steps=50,
                  guidance_scale=guidance_scale, eta=0.0, images=frames > 1,
                  num_prediction_videos=8 if p_frame_prediction > 0 else 0,
                  long_video_segments=4 if p_frame_prediction > 0 else 0)
  c.checkpoint = dict(every_steps=5000, keep=3, async_save=True)
  c.profile_every_steps = 0
  return c
