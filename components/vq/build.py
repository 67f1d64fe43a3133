"""Builders: code-map shapes per level and the matching priors (bottom first)."""
from __future__ import annotations

import torch

from components.vq.prior import CausalPrior, PriorSpec


def code_shapes(image_size: int, levels: int, downsample: int = 2) -> list[tuple[int, int]]:
    """Grid of each level, bottom first: image/2**downsample, then halved per level (downsample 2:
    image/4, image/8, image/16)."""
    out = []
    for l in range(levels):
        f = 2 ** (downsample + l)
        s = image_size // f
        if s < 1 or image_size % f:
            raise ValueError(f"image_size {image_size} is not divisible by {f} (level {l}, "
                             f"downsample {downsample})")
        out.append((s, s))
    return out


def build_priors(levels: int, num_codes: int, image_size: int, channels: int = 64, layers: int = 6,
                 top_layers: int = 4, kernel: int = 3, attn_every: int = 2, heads: int = 4,
                 dropout: float = 0.1, cond_res: int = 2, n_classes: int = 0,
                 downsample: int = 2) -> list[CausalPrior]:
    """Top level: PixelSNAIL-style prior (gated layers + causal attention, dropout). Lower levels:
    gated PixelCNN conditioned on the codes of the level directly above (and the class)."""
    shapes = code_shapes(image_size, levels, downsample)
    priors = []
    for l in range(levels):
        top = l == levels - 1
        priors.append(CausalPrior(PriorSpec(
            num_codes=num_codes, shape=shapes[l], channels=channels,
            layers=top_layers if top else layers, kernel=kernel,
            attn_every=attn_every if top else 0, heads=heads, dropout=dropout if top else 0.0,
            cond_codes=0 if top else num_codes, cond_upscale=2, n_classes=n_classes,
            cond_res=cond_res)))
    return priors


def prior_losses(priors: list[CausalPrior], codes: list[torch.Tensor], labels=None) -> list[torch.Tensor]:
    """Mean NLL (nats per code) of each level; level l is conditioned on the codes of level l+1."""
    out = []
    for l, p in enumerate(priors):
        upper = codes[l + 1] if l + 1 < len(priors) else None
        out.append(p.nll(codes[l], upper, labels if p.spec.n_classes else None))
    return out
