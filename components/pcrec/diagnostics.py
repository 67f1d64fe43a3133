"""Diagnostics of contrastive embeddings: does an encoder carry signal?

* :func:`alignment` (Wang & Isola 2020): mean ``||z1 - z2||^2`` of positive pairs (lower =
  two views of a node agree);
* :func:`uniformity`: ``log mean exp(-2 ||zi - zj||^2)`` over pairs (lower = spread over the
  sphere; -4 is the limit for uniform points in high dimension);
* :func:`effective_rank` (Roy & Vetterli 2007): ``exp(entropy(s / sum s))`` of the singular
  values of the centred (or raw) embeddings (1 = all on a line, ``dim`` = isotropic);
* :func:`mean_cosine`: mean pairwise cosine similarity (near 1 = collapsed);
* :func:`link_auc`: AUC of cosine scores of edges against random non-edges (a probe: 0.5 =
  no signal).

All take L2-normalised (or any) float tensors and return Python floats.
"""
from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from components.errors import ConfigError


def alignment(z1: torch.Tensor, z2: torch.Tensor) -> float:
    """Mean squared distance of paired rows of ``z1`` and ``z2`` (normalised first)."""
    z1, z2 = F.normalize(z1.float(), dim=1), F.normalize(z2.float(), dim=1)
    return float((z1 - z2).pow(2).sum(1).mean())


def uniformity(z: torch.Tensor, t: float = 2.0, max_rows: int = 4096, seed: int = 0) -> float:
    """``log mean_{i != j} exp(-t ||zi - zj||^2)`` on at most ``max_rows`` random rows."""
    z = F.normalize(_subsample(z.float(), max_rows, seed), dim=1)
    n = z.shape[0]
    if n < 2:
        raise ConfigError("uniformity needs at least 2 rows of z", param="z")
    d2 = torch.cdist(z, z).pow(2)
    off = ~torch.eye(n, dtype=torch.bool)
    return float(torch.logsumexp(-t * d2[off], 0) - np.log(off.sum().item()))


def effective_rank(z: torch.Tensor, centre: bool = True) -> float:
    """``exp(H(p))`` with ``p`` the normalised singular values of ``z``, centred first unless
    ``centre`` is False. The centred rank ignores a direction shared by all rows (an untrained
    encoder's outputs share one: mean cosine ~0.9, and what is left is small isotropic noise,
    so its centred rank is high); the uncentred rank counts it, as dot products of MF do."""
    z = z.float()
    s = torch.linalg.svdvals(z - z.mean(0, keepdim=True) if centre else z)
    p = s / s.sum().clamp(min=1e-12)
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def mean_cosine(z: torch.Tensor, max_rows: int = 4096, seed: int = 0) -> float:
    """Mean cosine similarity over pairs ``i != j`` of at most ``max_rows`` random rows."""
    z = F.normalize(_subsample(z.float(), max_rows, seed), dim=1)
    n = z.shape[0]
    if n < 2:
        raise ConfigError("mean_cosine needs at least 2 rows of z", param="z")
    s = z.sum(0)
    return float((s @ s - n) / (n * (n - 1)))


def link_auc(z: torch.Tensor, pos_src, pos_dst, neg_src, neg_dst) -> float:
    """AUC of ``cos(z[src], z[dst])`` for positive pairs against negative pairs (ties count
    half): the probability that a random edge scores above a random non-edge."""
    z = F.normalize(z.float(), dim=1)
    sp = (z[torch.as_tensor(pos_src)] * z[torch.as_tensor(pos_dst)]).sum(1).numpy()
    sn = (z[torch.as_tensor(neg_src)] * z[torch.as_tensor(neg_dst)]).sum(1).numpy()
    if sp.size == 0 or sn.size == 0:
        raise ConfigError("link_auc needs at least one positive and one negative pair", param="pos_src")
    allv = np.concatenate([sp, sn])
    order = allv.argsort(kind="mergesort")
    ranks = np.empty_like(order, dtype=np.float64)
    ranks[order] = np.arange(1, allv.size + 1)
    # average ranks of ties
    _, inv, cnt = np.unique(allv, return_inverse=True, return_counts=True)
    sums = np.bincount(inv, weights=ranks)
    ranks = (sums / cnt)[inv]
    return float((ranks[:sp.size].sum() - sp.size * (sp.size + 1) / 2) / (sp.size * sn.size))


def _subsample(z: torch.Tensor, max_rows: int, seed: int) -> torch.Tensor:
    if z.shape[0] <= max_rows:
        return z
    idx = torch.randperm(z.shape[0], generator=torch.Generator().manual_seed(seed))[:max_rows]
    return z[idx]


def view_retrieval(z0: torch.Tensor, z1: torch.Tensor, k: int = 10, chunk: int = 2048) -> dict[str, float]:
    """Instance probe: for every row ``i`` of ``z0`` (one view of node ``i``), is row ``i`` of
    ``z1`` (another view of the same node) its nearest (``top1``) or among its ``k`` nearest
    (``topk``) rows of ``z1`` by cosine? Chance is ``1/n`` and ``k/n``."""
    z0, z1 = F.normalize(z0.float(), dim=1), F.normalize(z1.float(), dim=1)
    n = z0.shape[0]
    if n != z1.shape[0] or n < 2:
        raise ConfigError("view_retrieval needs z0 and z1 with the same number (>= 2) of rows", param="z1")
    k = min(k, n)
    top1 = topk = 0
    for a in range(0, n, chunk):
        s = z0[a:a + chunk] @ z1.t()
        own = s[torch.arange(s.shape[0]), torch.arange(a, a + s.shape[0])]
        rank = (s > own[:, None]).sum(1)            # rows strictly closer than the own view
        top1 += int((rank == 0).sum())
        topk += int((rank < k).sum())
    return {"top1": top1 / n, f"top{k}": topk / n, "chance_top1": 1 / n, f"chance_top{k}": k / n}
