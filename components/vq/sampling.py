"""Sampling from `CausalPrior`s and ancestral sampling through a hierarchical VQ-VAE.

`sample_prior` is the fast sampler. For a batch it

* computes the conditioning (upper-level codes, class) once, not per position;
* runs the vertical stack once per *row*, on rows 0..i only (its output for row i only depends
  on rows < i, which are final by then);
* runs the horizontal stack per position on the current row's columns 0..j only, with the
  attention keys/values of all completed rows cached (PixelSNAIL prior; the keys see the input
  codes, so a row's keys/values are computed once more after its last code is drawn).

`sample_prior_naive` is the reference it is benchmarked against: the whole network, including
the conditioning stack, recomputed over the full grid for every position. Both consume the
random generator identically, so under the same seed they return the same codes (up to
floating-point ties).
"""
from __future__ import annotations

import torch

from components.vq.prior import CausalPrior


def _draw(logits: torch.Tensor, temperature: float, generator) -> torch.Tensor:
    if temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits / temperature, dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def _crop(conds, rows: slice, cols: slice):
    if conds is None:
        return None
    return [tuple(c[:, :, rows, cols] for c in pair) for pair in conds]


@torch.no_grad()
def prior_row_logits(prior: CausalPrior, x: torch.Tensor, i: int, j: int, conds, links, caches):
    """Logits at (i, j) given the row's vertical links and the attention caches (internal step)."""
    inp = prior.embed(x[:, i:i + 1, :j + 1])
    h = inp
    new_kv = [None] * len(prior.attn)
    for li, layer in enumerate(prior.layers):
        ch = conds[li][1][:, :, i:i + 1, :j + 1] if conds is not None else None
        h = layer.horizontal(h, links[li][..., :j + 1], ch)
        a = prior.attn_after(li)
        if a is not None:
            h, new_kv[a] = prior.attn[a](h, inp, start_row=i, prefix=caches[a])
    return prior.head(h[..., -1:]).flatten(1), new_kv


@torch.no_grad()
def prior_row_links(prior: CausalPrior, x: torch.Tensor, i: int, conds):
    """Vertical->horizontal terms for row ``i`` of every layer, from rows 0..i of ``x``."""
    v = prior.embed(x[:, :i + 1])
    crop = _crop(conds, slice(0, i + 1), slice(None))
    links = []
    for li, layer in enumerate(prior.layers):
        cv = crop[li][0] if crop is not None else None
        v, link = layer.vertical(v, cv)
        links.append(link[:, :, i:i + 1])
    return links


@torch.no_grad()
def sample_prior(prior: CausalPrior, n: int, cond_codes=None, labels=None,
                 temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw ``n`` code maps (n, H, W) from ``prior`` (cached conditioning, rows and attention)."""
    was_training = prior.training
    prior.eval()
    H, W = prior.spec.shape
    dev = next(prior.parameters()).device
    x = torch.zeros(n, H, W, dtype=torch.long, device=dev)
    conds = prior.condition(cond_codes, labels)
    caches = [None] * len(prior.attn)
    for i in range(H):
        links = prior_row_links(prior, x, i, conds)
        for j in range(W):
            logits, row_kv = prior_row_logits(prior, x, i, j, conds, links, caches)
            x[:, i, j] = _draw(logits, temperature, generator)
        if prior.attn:                          # keys see the input: recompute on the finished row
            _, row_kv = prior_row_logits(prior, x, i, W - 1, conds, links, caches)
        for a, (k, v) in enumerate(row_kv):     # row i is complete: its keys/values are final
            pk = caches[a]
            caches[a] = (k, v) if pk is None else (torch.cat([pk[0], k], 2), torch.cat([pk[1], v], 2))
    prior.train(was_training)
    return x


@torch.no_grad()
def sample_prior_naive(prior: CausalPrior, n: int, cond_codes=None, labels=None,
                       temperature: float = 1.0, generator: torch.Generator | None = None):
    """Reference sampler: full forward (conditioning included) at every position."""
    was_training = prior.training
    prior.eval()
    H, W = prior.spec.shape
    dev = next(prior.parameters()).device
    x = torch.zeros(n, H, W, dtype=torch.long, device=dev)
    for i in range(H):
        for j in range(W):
            logits = prior(x, cond_codes, labels)[:, :, i, j]
            x[:, i, j] = _draw(logits, temperature, generator)
    prior.train(was_training)
    return x


@torch.no_grad()
def ancestral_sample(vqvae, priors: list, n: int, labels: torch.Tensor | None = None,
                     temperature: float = 1.0, batch_size: int = 64, seed: int = 0,
                     sampler=sample_prior):
    """Sample images: top prior, then each lower level given the one above, then decode.

    ``priors`` is bottom first (same order as the VQ-VAE levels). Returns (images, codes per level).
    """
    g = torch.Generator().manual_seed(seed)
    vqvae.eval()
    images, all_codes = [], [[] for _ in priors]
    for start in range(0, n, batch_size):
        m = min(batch_size, n - start)
        lab = labels[start:start + m] if labels is not None else None
        codes = [None] * len(priors)
        for l in reversed(range(len(priors))):
            upper = codes[l + 1] if l + 1 < len(priors) else None
            codes[l] = sampler(priors[l], m, cond_codes=upper,
                               labels=lab if priors[l].spec.n_classes else None,
                               temperature=temperature, generator=g)
        images.append(vqvae.decode_codes(codes))
        for l, c in enumerate(codes):
            all_codes[l].append(c)
    return torch.cat(images), [torch.cat(c) for c in all_codes]
