"""VQ-VAE / VQ-VAE-2 with autoregressive priors (van den Oord et al. 2017, Razavi et al. 2019).

quantizer   VectorQuantizer (loss or EMA codebook, dead-code restart, all-reduced statistics)
blocks      shared Encoder / Decoder / residual blocks
vqvae       HierarchicalVQVAE (levels=1: VQ-VAE, 2: VQ-VAE-2, 3: third level)
prior       CausalPrior: gated PixelCNN (+ PixelSNAIL-style causal attention), conditioning
sampling    cached prior sampling, naive reference sampler, ancestral sampling
rejection   classifier, rejection sampling, k-NN precision / recall
metrics     NMSE, code usage, bits/dim
data        idx / npz / class-folder readers, Parquet frame, model input
grid        PNG grids
"""
