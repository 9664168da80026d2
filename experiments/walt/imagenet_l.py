"""W.A.L.T-L, class-conditional ImageNet 256 (Table 2, Table 8): images -> 1×32×32×8 latents (image-only
tokenizer, multipliers (1, 1, 2, 4)), 24 layers × 1024, 16 heads, separate AdaLN per layer (no LoRA:
that is what makes L 460M), windows 1×32×32 / 1×8×8.

  python -m tools.train --config experiments/walt/tokenizer_moving_digits.py:image --workdir gs://B/walt/tok_imagenet
  python -m tools.train --config experiments/walt/imagenet_l.py:workdir=gs://B/walt/tok_imagenet --workdir gs://B/walt/imagenet_l
  python -m tools.aot_compile --config experiments/walt/imagenet_l.py --topology v5e:4x4 --config.batch_size=64

Paper: 460M parameters (ours 459.6M), FID 2.56 without guidance, 2.40 with (Table 2 / 7), 437k iterations
at batch 1024. FID needs an Inception network that no PyPI package ships offline; evaluation here reports
what the generation evaluator can compute (no FVD for images).
"""
from experiments.walt.paper_transformer import paper_config


def get_config(arg=None):
  return paper_config(arg, dataset="imagenet", num_classes=1000,
                      tokenizer="experiments/walt/tokenizer_moving_digits.py:image", frames=1, resolution=256,
                      depth=24, width=1024, adaln="separate", batch_size=1024, total_steps=437_000,
                      p_frame_prediction=0.0, image_fraction=0.0)
