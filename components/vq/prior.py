"""Autoregressive priors over code maps: gated PixelCNN, optionally with causal self-attention.

One generic model, `CausalPrior`, with pluggable parts:

* a stack of `GatedLayer`s (van den Oord et al. 2016, "Conditional Image Generation with PixelCNN
  Decoders"): a vertical stack (rows above, all columns within reach) and a horizontal stack
  (same row, columns to the left), joined by a down-shifted vertical->horizontal link. The first
  layer is "mask A" (the current position is excluded); there is no blind spot.
* optional `CausalSelfAttention` every ``attn_every`` layers on the horizontal stream (PixelSNAIL
  style, Chen et al. 2018, used for the VQ-VAE-2 top prior): keys and values see the features,
  the input codes and the positions, queries the features and the positions, strictly causal;
  dropout on the attention weights and after each residual block;
* optional conditioning (`Conditioning`): the code map of the level above (bottom prior of
  VQ-VAE-2) through a convolutional conditioning stack, and/or a class label. It is computed once
  per batch (`CausalPrior.condition`) and added to the gates of every layer.

The output at position (i, j) depends only on inputs strictly before (i, j) in raster order;
`tests/vq/test_priors.py` checks this with autograd. The pieces are exposed separately
(`embed`, `GatedLayer.vertical` / `.horizontal`, the attention's key/value prefix) so
`components.vq.sampling` can sample with cached conditioning, one vertical pass per row and
a one-row horizontal pass per position.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


class _CodeNLL(torch.autograd.Function):
    """Mean softmax cross-entropy of logits (N, K) against targets (N,), fused: saves the logits
    and their log-sum-exp instead of a log-softmax copy, and its backward writes
    ``softmax - onehot`` into one new tensor (no zero-filled gradient, no second K-wide pass)."""

    @staticmethod
    def forward(ctx, logits, target):
        lse = torch.logsumexp(logits, 1)
        ctx.save_for_backward(logits, lse, target)
        return (lse - logits.gather(1, target[:, None]).squeeze(1)).mean()

    @staticmethod
    def backward(ctx, grad_out):
        logits, lse, target = ctx.saved_tensors
        grad = torch.sub(logits, lse[:, None]).exp_()
        grad.scatter_add_(1, target[:, None], grad.new_full((len(target), 1), -1.0))
        return grad.mul_(grad_out / len(target)), None


def code_nll(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``F.cross_entropy(logits, target)`` for logits (N, K) and int targets (N,), cheaper on CPU
    when K is large (the prior's 512-way head); same value and gradient up to rounding."""
    if logits.dim() != 2 or target.shape != logits.shape[:1]:
        raise ValueError(f"logits must be (N, K) and target (N,), got {tuple(logits.shape)} "
                         f"and {tuple(target.shape)}")
    return _CodeNLL.apply(logits, target)


def shift_down(x: torch.Tensor) -> torch.Tensor:
    """Move every row one step down (row 0 becomes zeros)."""
    return F.pad(x, (0, 0, 1, 0))[:, :, :-1, :]


def shift_right(x: torch.Tensor) -> torch.Tensor:
    """Move every column one step right (column 0 becomes zeros)."""
    return F.pad(x, (1, 0))[..., :-1]


def gate(x: torch.Tensor) -> torch.Tensor:
    a, b = x.chunk(2, dim=1)
    return torch.tanh(a) * torch.sigmoid(b)


class GatedLayer(nn.Module):
    """One gated PixelCNN layer with vertical and horizontal stacks.

    Vertical: a (k//2+1) x k convolution over rows i-k//2..i (top-padded). Horizontal: a
    1 x (k//2+1) convolution over columns j-k//2..j (left-padded), shifted one column right for
    mask A. The vertical features reach the horizontal stack shifted down one row, so the
    horizontal output at (i, j) only sees rows < i and columns < j of row i.
    """

    def __init__(self, channels: int, kernel: int = 3, mask_a: bool = False, dropout: float = 0.0):
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError("kernel must be odd")
        self.k, self.mask_a = kernel, mask_a
        c = channels
        self.vconv = nn.Conv2d(c, 2 * c, (kernel // 2 + 1, kernel))
        self.hconv = nn.Conv2d(c, 2 * c, (1, kernel // 2 + 1))
        self.v2h = nn.Conv2d(2 * c, 2 * c, 1)
        self.hout = nn.Conv2d(c, c, 1)
        self.drop = nn.Dropout(dropout)

    def vertical(self, v: torch.Tensor, cond_v: torch.Tensor | None):
        """Returns (next vertical stream, vertical->horizontal term for the same rows)."""
        p = self.k // 2
        feat = self.vconv(F.pad(v, (p, p, p, 0)))
        link = self.v2h(shift_down(feat))
        if cond_v is not None:
            feat = feat + cond_v
        return gate(feat), link

    def horizontal(self, h: torch.Tensor, link: torch.Tensor, cond_h: torch.Tensor | None):
        """Next horizontal stream given the vertical->horizontal term of the same positions."""
        feat = self.hconv(F.pad(h, (self.k // 2, 0, 0, 0)))
        if self.mask_a:
            feat = shift_right(feat)
        feat = feat + link
        if cond_h is not None:
            feat = feat + cond_h
        out = self.drop(self.hout(gate(feat)))
        return out if self.mask_a else h + out


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention over raster positions on the horizontal stream (PixelSNAIL).

    As in PixelSNAIL (Chen et al. 2018) and its reference implementations, the **queries** see the
    features and the position, the **keys and values** see the features, the prior's *input* at the
    key position (the embedded codes) and the position; positions are learned embeddings
    concatenated to the features. Because a key carries its own position's input, the mask is
    strictly causal (key < query). The very first position has no earlier key: its attention output
    is zero (PixelSNAIL's ``start_mask``). ``prefix`` carries the keys/values of complete rows above
    the current block (sampling cache); they must be computed after those rows were sampled.
    """

    def __init__(self, channels: int, heads: int, shape: tuple[int, int], dropout: float = 0.0):
        super().__init__()
        if channels % heads:
            raise ValueError(f"channels ({channels}) must be divisible by heads ({heads})")
        self.heads, self.shape, self.dropout = heads, shape, dropout
        self.pos = nn.Parameter(torch.randn(1, channels, *shape) * 0.02)
        self.q = nn.Linear(2 * channels, channels)                  # [features, position]
        self.kv = nn.Linear(3 * channels, 2 * channels)             # [features, input, position]
        self.out = nn.Linear(channels, channels)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: torch.Tensor, inp: torch.Tensor, start_row: int = 0, prefix=None):
        """h: features, inp: the prior's embedded input at the same positions, both (B, C, rows,
        cols) starting at ``start_row``; returns (h', (k, v) of these positions)."""
        b, c, rows, cols = h.shape
        W = self.shape[1]
        pos = self.pos[:, :, start_row:start_row + rows, :cols].expand(b, -1, -1, -1)
        flat = lambda t: t.flatten(2).transpose(1, 2)                  # (B, n, C')
        q = self.q(flat(torch.cat([h, pos], 1)))
        k, v = self.kv(flat(torch.cat([h, inp, pos], 1))).chunk(2, dim=-1)
        split = lambda t: t.view(b, -1, self.heads, c // self.heads).transpose(1, 2)
        q, k, v = split(q), split(k), split(v)
        idx = ((start_row + torch.arange(rows, device=h.device))[:, None] * W
               + torch.arange(cols, device=h.device)[None, :]).flatten()
        mask = idx[None, :] < idx[:, None]                             # (n_q, n_k) True = attend
        first = idx == 0                                              # no earlier key: output 0
        mask = mask | (first[:, None] & first[None, :])               # (avoids an all-masked row)
        kk, vv = k, v
        if prefix is not None and prefix[0] is not None:             # complete rows above: all earlier
            kk, vv = torch.cat([prefix[0], k], 2), torch.cat([prefix[1], v], 2)
            mask = torch.cat([mask.new_ones(mask.shape[0], prefix[0].shape[2]), mask], 1)
        att = F.scaled_dot_product_attention(q, kk, vv, attn_mask=mask,
                                             dropout_p=self.dropout if self.training else 0.0)
        if bool(first.any()):
            att = att * (~first).to(att.dtype)[None, None, :, None]
        att = att.transpose(1, 2).reshape(b, -1, c)
        y = self.drop(self.out(att)).transpose(1, 2).reshape(b, c, rows, cols)
        return h + y, (k, v)


class Conditioning(nn.Module):
    """Conditioning stack: codes of the level above and/or a class label -> a feature map.

    Upper codes: embedding, ``n_res`` residual 3x3 blocks, x``upscale`` transposed convolution to
    the prior's grid. Class: an embedding broadcast over the grid. Per-layer 1x1 projections give
    each gated layer its vertical and horizontal gate biases.
    """

    def __init__(self, channels: int, n_layers: int, cond_codes: int = 0, n_classes: int = 0,
                 upscale: int = 2, n_res: int = 2):
        super().__init__()
        self.has_codes, self.has_class = cond_codes > 0, n_classes > 0
        c = channels
        if self.has_codes:
            from components.vq.blocks import ResStack
            self.code_emb = nn.Embedding(cond_codes, c)
            self.code_net = nn.Sequential(
                nn.Conv2d(c, c, 3, padding=1), ResStack(c, c, n_res),
                nn.ConvTranspose2d(c, c, upscale * 2, stride=upscale, padding=upscale // 2)
                if upscale > 1 else nn.Identity())
        if self.has_class:
            self.class_emb = nn.Embedding(n_classes, c)
        self.proj = nn.ModuleList([nn.Conv2d(c, 4 * c, 1) for _ in range(n_layers)])

    def forward(self, shape, cond_codes=None, labels=None):
        """List per layer of (cond_v, cond_h), or None when unconditioned."""
        feat = None
        if self.has_codes:
            if cond_codes is None:
                raise ValueError("this prior is conditioned on the codes of the level above")
            feat = self.code_net(self.code_emb(cond_codes).permute(0, 3, 1, 2))
            if feat.shape[-2:] != tuple(shape):
                raise ValueError(f"conditioning map {tuple(feat.shape[-2:])} != prior grid {shape}")
        if self.has_class:
            if labels is None:
                raise ValueError("this prior is class-conditional: pass labels")
            cls = self.class_emb(labels)[:, :, None, None].expand(-1, -1, *shape)
            feat = cls if feat is None else feat + cls
        if feat is None:
            return None
        return [tuple(p(feat).chunk(2, dim=1)) for p in self.proj]


@dataclass
class PriorSpec:
    """Sizes of a `CausalPrior`."""

    num_codes: int
    shape: tuple[int, int]          # code-map grid (H, W)
    channels: int = 64
    layers: int = 8
    kernel: int = 3
    attn_every: int = 0             # 0 = gated PixelCNN; >0 = attention after every n layers
    heads: int = 4
    dropout: float = 0.0
    cond_codes: int = 0             # K of the level above (0 = not conditioned on codes)
    cond_upscale: int = 2
    n_classes: int = 0              # >0 = class-conditional
    cond_res: int = 2


class CausalPrior(nn.Module):
    """Gated PixelCNN (+ optional PixelSNAIL-style attention) over a K-ary code map."""

    def __init__(self, spec: PriorSpec):
        super().__init__()
        self.spec = spec
        c = spec.channels
        self.embedding = nn.Embedding(spec.num_codes, c)
        self.layers = nn.ModuleList([GatedLayer(c, spec.kernel, mask_a=(i == 0), dropout=spec.dropout)
                                     for i in range(spec.layers)])
        n_attn = spec.layers // spec.attn_every if spec.attn_every else 0
        self.attn = nn.ModuleList([CausalSelfAttention(c, spec.heads, spec.shape, spec.dropout)
                                   for _ in range(n_attn)])
        self.cond = Conditioning(c, spec.layers, spec.cond_codes, spec.n_classes,
                                 spec.cond_upscale, spec.cond_res)
        self.head = nn.Sequential(nn.ReLU(), nn.Conv2d(c, c, 1), nn.ReLU(),
                                  nn.Conv2d(c, spec.num_codes, 1))

    def attn_after(self, layer_index: int) -> int | None:
        """Index of the attention block that follows layer ``layer_index`` (or None)."""
        e = self.spec.attn_every
        if e and (layer_index + 1) % e == 0:
            return (layer_index + 1) // e - 1
        return None

    def condition(self, cond_codes=None, labels=None):
        """Per-layer gate biases; compute once per batch and reuse for every position."""
        return self.cond(self.spec.shape, cond_codes, labels)

    def embed(self, codes: torch.Tensor) -> torch.Tensor:
        return self.embedding(codes).permute(0, 3, 1, 2)

    def forward_embedded(self, x: torch.Tensor, conds=None) -> torch.Tensor:
        """Logits (B, K, H, W) from an embedded input (B, C, H, W) and precomputed conditioning."""
        return self.head(self.trunk(x, conds))

    def forward(self, codes: torch.Tensor, cond_codes=None, labels=None) -> torch.Tensor:
        """Logits (B, K, H, W) for integer codes (B, H, W)."""
        return self.forward_embedded(self.embed(codes), self.condition(cond_codes, labels))

    def trunk(self, x: torch.Tensor, conds=None) -> torch.Tensor:
        """Features (B, C, H, W) before the output head, from an embedded input."""
        v = h = x
        for i, layer in enumerate(self.layers):
            cv, ch = conds[i] if conds is not None else (None, None)
            v, link = layer.vertical(v, cv)
            h = layer.horizontal(h, link, ch)
            a = self.attn_after(i)
            if a is not None:
                h, _ = self.attn[a](h, x)
        return h

    def flat_logits(self, h: torch.Tensor) -> torch.Tensor:
        """The head on features (B, C, H, W) as logits (B*H*W, K), positions in raster order.

        The same function as ``self.head`` (its 1x1 convolutions' weights, applied as matrix
        products on position-major features): the K-way softmax then runs over contiguous rows
        instead of a dimension strided by H*W (docs/vq.md, Speed)."""
        _, c1, _, c2 = self.head
        z = F.relu(h).permute(0, 2, 3, 1).reshape(-1, h.shape[1])
        z = F.relu(F.linear(z, c1.weight.flatten(1), c1.bias))
        return F.linear(z, c2.weight.flatten(1), c2.bias)

    def nll(self, codes: torch.Tensor, cond_codes=None, labels=None) -> torch.Tensor:
        """Mean negative log-likelihood per code, in nats (= ``F.cross_entropy(self(codes, ...),
        codes)``, computed with the flat head and a fused softmax cross-entropy)."""
        h = self.trunk(self.embed(codes), self.condition(cond_codes, labels))
        return code_nll(self.flat_logits(h), codes.reshape(-1))
