"""KPE: intrinsics-aware positional encoding for crop-based 3D inference (Prakash et al., arXiv 2312.06594).

Paper → code map: see zoo/kpe/README.md.
  encoding.py        the encodings (centre / corner / sparse / dense) and intrinsics bookkeeping
  models.py          early / latent / ViT-token injection modules and the small crop CNN
  parallelepipeds.py the motivating parallelepiped study (CLI: python -m zoo.kpe.parallelepipeds --out DIR)
  crop_depth.py      rendered-crop study: model factory and `crop_depth_loss`
  nyu.py             NYUv2 96×128 crops with dense KPE (tfds)
"""
from zoo.kpe.encoding import (CropBox, Intrinsics, centre_kpe, corner_kpe, crop_kpe, dense_kpe, kpe_size,
                              pixel_angles, sinusoidal_encoding, sparse_kpe)
