"""Ranking metrics for leave-one-out evaluation (vectorized, per user).

Two protocols:

* **full**: the held-out item is ranked against every item except the user's known
  positives (``exclude``; the held-out item itself is never excluded);
* **sampled**: the held-out item is ranked against ``n`` sampled negatives (1 + 99 by
  default; see :func:`components.pcrec.negatives.sample_candidates`).

Ranks are 0-based and *pessimistic* on ties: ``rank = #{candidates j != target: s_j >= s_target}``,
so a model that scores everything equal gets the worst rank, never the best.

Non-finite scores (NaN, +-inf: a diverged model) rank last and never help the target: a
target whose score is not finite gets the worst possible rank (every candidate counts as
ranked above it), and a candidate whose score is not finite counts as ranked above the
target (pessimistic, like a tie). A diverged model therefore scores HR = NDCG = 0 on the
affected users instead of a perfect 1 (``NaN >= x`` is False, which used to give rank 0).
From a rank ``r``: ``HR@K = [r < K]``, ``NDCG@K = [r < K] / log2(r + 2)`` (one relevant item, so
IDCG = 1), ``MRR = 1 / (r + 1)`` (no cut-off).

Public API: :func:`rank_full`, :func:`rank_sampled`, :func:`metrics_from_ranks`,
:data:`DEFAULT_KS`.
"""
from __future__ import annotations

import numpy as np
import torch

from components.pcrec.negatives import PositiveSet, positive_mask

DEFAULT_KS = (5, 10, 20)


def _as_tensor(x) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.array(x))


@torch.no_grad()
def rank_full(user_emb, item_emb, users: np.ndarray, targets: np.ndarray,
              exclude: PositiveSet | None = None, chunk: int = 2048) -> np.ndarray:
    """0-based rank of ``targets[k]`` for ``users[k]`` among all non-excluded items.

    Args:
        user_emb: ``(n_users, d)`` user factors; item_emb: ``(n_items, d)`` item factors;
            the score is the dot product.
        users, targets: evaluated users and their held-out item.
        exclude: positives to drop from the candidates (the target itself is kept).
        chunk: users scored at once (memory ``chunk * n_items`` floats).
    """
    U, V = _as_tensor(user_emb).float(), _as_tensor(item_emb).float()
    users = np.asarray(users, dtype=np.int64)
    targets = np.asarray(targets, dtype=np.int64)
    out = np.empty(len(users), dtype=np.int64)
    for s in range(0, len(users), chunk):
        u, t = users[s:s + chunk], targets[s:s + chunk]
        scores = U[torch.from_numpy(np.array(u))] @ V.T
        rows = torch.arange(len(u))
        tgt = scores[rows, torch.from_numpy(np.array(t))].clone()
        # non-finite competitors and targets count against the target (module docstring)
        above = (scores >= tgt[:, None]) | ~torch.isfinite(scores) | ~torch.isfinite(tgt)[:, None]
        if exclude is not None:
            above[torch.from_numpy(positive_mask(u, exclude))] = False
        above[rows, torch.from_numpy(np.array(t))] = False  # the target is not its own competitor
        out[s:s + chunk] = above.sum(1).numpy()
    return out


@torch.no_grad()
def rank_sampled(user_emb, item_emb, users: np.ndarray, targets: np.ndarray,
                 candidates: np.ndarray) -> np.ndarray:
    """0-based rank of ``targets[k]`` among ``candidates[k]`` (shape ``(n_users, n)``).

    Non-finite scores never help the target: a non-finite target score gives rank ``n``, a
    non-finite candidate score counts as ranked above the target. Negative candidate ids are
    padding (a user with fewer negatives than ``n``: ``sample_candidates(allow_fewer=True)``)
    and never count.
    """
    U, V = _as_tensor(user_emb).float(), _as_tensor(item_emb).float()
    u = U[torch.from_numpy(np.array(users, dtype=np.int64))]
    t = (u * V[torch.from_numpy(np.array(targets, dtype=np.int64))]).sum(1)
    cand = torch.from_numpy(np.array(candidates, dtype=np.int64))
    c = torch.einsum("bd,bnd->bn", u, V[cand.clamp(min=0)])
    above = ((c >= t[:, None]) | ~torch.isfinite(c) | ~torch.isfinite(t)[:, None]) & (cand >= 0)
    return above.sum(1).numpy().astype(np.int64)


def metrics_from_ranks(ranks: np.ndarray, ks=DEFAULT_KS) -> dict[str, np.ndarray]:
    """Per-user metrics from 0-based ranks: ``hr@K``, ``ndcg@K`` for each K, and ``mrr``."""
    r = np.asarray(ranks, dtype=np.float64)
    out: dict[str, np.ndarray] = {}
    for k in ks:
        hit = r < k
        out[f"hr@{k}"] = hit.astype(np.float64)
        out[f"ndcg@{k}"] = np.where(hit, 1.0 / np.log2(r + 2.0), 0.0)
    out["mrr"] = 1.0 / (r + 1.0)
    return out
