"""W.A.L.T-L, Kinetics-600 frame prediction (Table 1, Table 8): given the first 5 frames (= 2 latent frames
under the causal encoder) predict 17 frames. 24 layers × 1024, 16 heads, AdaLN-LoRA r=2, unconditional
(no class), frame-prediction conditioning concat(m ∘ z0, m) with 1 or 2 latent frames.

  python -m tools.train --config experiments/walt/tokenizer_moving_digits.py:paper --config.data.name=kinetics600 --workdir gs://B/walt/tok_k600
  python -m tools.train --config experiments/walt/k600_l.py:workdir=gs://B/walt/tok_k600 --workdir gs://B/walt/k600_l
  python -m tools.aot_compile --config experiments/walt/k600_l.py --topology v5e:4x4 --config.batch_size=16

Paper: 313M parameters (ours 314.1M), FVD 3.3±0.0 (Table 1), 360 epochs at batch 512, no guidance.
p_fp is not given in the paper [unverified]: 0.5 here, so half the batch trains the conditional task the
benchmark measures and half stays unconditional for long-video generation.
"""
from experiments.walt.paper_transformer import paper_config


def get_config(arg=None):
  return paper_config(arg, dataset="kinetics600", num_classes=0,
                      tokenizer="experiments/walt/tokenizer_moving_digits.py:paper", frames=17, resolution=128,
                      depth=24, width=1024, adaln="lora", batch_size=512, total_steps=360_000,
                      p_frame_prediction=0.5, image_fraction=0.0)
