"""VQ-VAE (one level) and VQ-VAE-2 (two or three levels) as one hierarchical model.

Level 0 is the bottom (``downsample`` stride-2 convolutions: 2 = 1/4 of the input resolution as in
the papers, 1 = 1/2); each further level halves the resolution again (VQ-VAE-2 with the papers'
layout: top codes at 1/8). Encoding runs bottom-up (``h_0 = E_0(x)``, ``h_l = E_l(h_{l-1})``),
quantisation runs top-down: the top is quantised from its features alone, then each lower level is
quantised from its own features concatenated with the *decoded* context of all levels above
(``c_l = D_l([q_{l+1}, c_{l+1}])``), as in Razavi et al. 2019. The context decoders only condition
the encoder. As in the reference implementations, the image decoder gets the bottom codes
concatenated with a separate upsampling of each upper level's codes (one stride-2 4x4 transposed
convolution per halving: ``u_l = U_l(q_l)``), so ``decode_codes`` needs no context decoder.
``levels=1`` gives the original VQ-VAE of van den Oord et al. 2017.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from components.vq.blocks import Decoder, Encoder
from components.vq.quantizer import VectorQuantizer


@dataclass
class VQVAESpec:
    """Sizes of a hierarchical VQ-VAE (paper CIFAR-10 defaults)."""

    in_channels: int = 3
    hidden: int = 256
    res_channels: int = 256
    n_res: int = 2
    num_codes: int = 512
    code_dim: int = 64
    levels: int = 1
    downsample: int = 2          # stride-2 convolutions of the bottom level (2: 1/4 resolution)
    beta: float = 0.25
    ema: bool = True
    decay: float = 0.99
    restart_threshold: float = 0.0
    data_init: bool = False


@dataclass
class VQVAEOutput:
    recon: torch.Tensor
    loss: torch.Tensor
    recon_loss: torch.Tensor
    vq_loss: torch.Tensor
    codes: list = field(default_factory=list)    # per level, bottom first: (B, H_l, W_l)
    counts: list = field(default_factory=list)   # per level: (K,)


class HierarchicalVQVAE(nn.Module):
    """VQ-VAE with ``levels`` code maps (1 = VQ-VAE, 2 = VQ-VAE-2, 3 = with a third level)."""

    def __init__(self, cfg: VQVAESpec):
        super().__init__()
        if cfg.levels < 1:
            raise ValueError(f"levels must be >= 1, got {cfg.levels}")
        if cfg.downsample < 1:
            raise ValueError(f"downsample must be >= 1, got {cfg.downsample}")
        self.cfg = cfg
        L, hid, D = cfg.levels, cfg.hidden, cfg.code_dim
        self.encoders = nn.ModuleList(
            [Encoder(cfg.in_channels if l == 0 else hid, hid, cfg.res_channels, cfg.n_res,
                     downsample=cfg.downsample if l == 0 else 1) for l in range(L)])
        self.pre_quant = nn.ModuleList(
            [nn.Conv2d(hid + (D if l < L - 1 else 0), D, 1) for l in range(L)])
        self.quantizers = nn.ModuleList(
            [VectorQuantizer(cfg.num_codes, D, cfg.beta, cfg.ema, cfg.decay,
                             restart_threshold=cfg.restart_threshold, data_init=cfg.data_init)
             for _ in range(L)])
        # context decoders: level l+1 (codes + its own context) -> resolution of level l
        self.context = nn.ModuleList(
            [Decoder(D * (2 if l + 1 < L - 1 else 1), D, hid, cfg.res_channels, cfg.n_res,
                     upsample=1) for l in range(L - 1)])
        # image path: upper codes upsampled to the bottom grid (reference: ``upsample_t``)
        self.upsample = nn.ModuleList(
            [nn.Sequential(*[m for i in range(l) for m in
                             ([nn.ConvTranspose2d(D, D, 4, stride=2, padding=1)]
                              + ([nn.ReLU()] if i < l - 1 else []))])
             for l in range(1, L)])
        self.decoder = Decoder(D * L, cfg.in_channels, hid, cfg.res_channels, cfg.n_res,
                               upsample=cfg.downsample)

    @property
    def levels(self) -> int:
        return self.cfg.levels

    def _context(self, l: int, q_up: torch.Tensor, c_up: torch.Tensor | None) -> torch.Tensor:
        z = q_up if c_up is None else torch.cat([q_up, c_up], 1)
        return self.context[l](z)

    def encode(self, x: torch.Tensor):
        """Quantise ``x``: returns (quantized per level, contexts per level, quantizer outputs)."""
        hs = []
        h = x
        for enc in self.encoders:
            h = enc(h)
            hs.append(h)
        L = self.levels
        qs, cs, outs = [None] * L, [None] * L, [None] * L
        for l in reversed(range(L)):
            if l < L - 1:
                cs[l] = self._context(l, qs[l + 1], cs[l + 1])
                feat = torch.cat([hs[l], cs[l]], 1)
            else:
                feat = hs[l]
            outs[l] = self.quantizers[l](self.pre_quant[l](feat))
            qs[l] = outs[l].quantized
        return qs, cs, outs

    def _decode(self, qs: list) -> torch.Tensor:
        ups = [self.upsample[l - 1](qs[l]) for l in range(1, self.levels)]
        return self.decoder(torch.cat([qs[0], *ups], 1))

    def forward(self, x: torch.Tensor) -> VQVAEOutput:
        qs, cs, outs = self.encode(x)
        recon = self._decode(qs)
        recon_loss = F.mse_loss(recon, x)
        vq_loss = sum(o.loss for o in outs)
        return VQVAEOutput(recon, recon_loss + vq_loss, recon_loss, vq_loss,
                           [o.codes for o in outs], [o.counts for o in outs])

    @torch.no_grad()
    def codes(self, x: torch.Tensor) -> list:
        """Integer code maps per level (bottom first)."""
        return [o.codes for o in self.encode(x)[2]]

    def decode_codes(self, codes: list) -> torch.Tensor:
        """Image from integer code maps (bottom first), e.g. sampled from the priors."""
        return self._decode([self.quantizers[l].embed(codes[l]) for l in range(self.levels)])
