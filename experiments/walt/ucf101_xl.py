"""W.A.L.T-XL, class-conditional UCF-101 (Table 1, Table 8): 17×128×128 -> 5×16×16×8 latents, 28 layers ×
1152, 16 heads, AdaLN-LoRA r=2, self-conditioning p_sc = 0.9, zero terminal SNR, joint image stacks.

  # Stage 1 (tokenizer, Table 8 widths) on UCF-101, then stage 2 on a v5e-256 pod (see tools/launch_tpu.py):
  python -m tools.train --config experiments/walt/tokenizer_moving_digits.py:paper --config.data.name=ucf101 --workdir gs://B/walt/tok_ucf
  python -m tools.train --config experiments/walt/ucf101_xl.py:workdir=gs://B/walt/tok_ucf --workdir gs://B/walt/ucf_xl
  # Check it compiles and fits before paying for the pod (from any CPU host with libtpu installed):
  python -m tools.aot_compile --config experiments/walt/ucf101_xl.py --topology v5e:4x4 --config.batch_size=16

Paper: 460M parameters (ours 461.3M: zoo/walt/README.md explains the ~1M), FVD 36±2 after 60k steps at
batch 256 (Table 1); 50 DDIM steps, no guidance. Arguments: workdir= (the tokenizer run), steps=, batch=,
depth= (shallower for compile checks), data= / fsdp= (mesh axes; default fsdp over all chips).
"""
from experiments.walt.paper_transformer import paper_config


def get_config(arg=None):
  return paper_config(arg, dataset="ucf101", num_classes=101, tokenizer="experiments/walt/tokenizer_moving_digits.py:paper",
                      frames=17, resolution=128, depth=28, width=1152, adaln="lora", batch_size=256,
                      total_steps=60_000, p_frame_prediction=0.0, image_fraction=0.0)
