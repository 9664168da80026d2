"""W.A.L.T: photorealistic video generation with diffusion models (Gupta et al., arXiv 2312.06662).

tokenizer.py: the causal 3D CNN autoencoder (§4.1). See README.md for the paper -> code map.
"""
