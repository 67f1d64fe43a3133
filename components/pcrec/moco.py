"""MoCo contrastive pre-training (He et al. 2020) as used by GCC and PCRec.

* a **query encoder** ``f_q`` (trained by gradient descent),
* a **key encoder** ``f_k``: a copy of ``f_q`` updated by momentum,
  ``theta_k <- m * theta_k + (1 - m) * theta_q`` (``m = 0.999``),
* a **queue** of the last ``K`` keys (default 16384) serving as negatives,
* the **InfoNCE** loss with temperature ``tau`` (default 0.07):
  ``-log exp(q.k+/tau) / (exp(q.k+/tau) + sum_j exp(q.n_j/tau))``.

**Own stale keys are never negatives.** The queue remembers the node id of every key
(``queue_ids``, -1 for the random initial keys); when :meth:`MoCo.forward` gets the query
node ids, queued keys of the same node are masked out of that query's negatives (a node's
older view is a positive, not a negative; it is in the queue whenever K is close to or above
the number of nodes). :func:`safe_queue_size` also caps K below the node count.

Under ``torch.distributed`` the keys of all workers are gathered before they are
enqueued, so every worker keeps the same queue.
"""
from __future__ import annotations

import copy

import torch
import torch.distributed as dist
from torch import nn
from torch.nn import functional as F

from components.errors import ConfigError


def safe_queue_size(queue_size: int, n_nodes: int) -> int:
    """K capped below the number of nodes that can be queried (at least 1)."""
    return max(1, min(int(queue_size), int(n_nodes) - 1))


def info_nce(q: torch.Tensor, k: torch.Tensor, negatives: torch.Tensor,
             temperature: float, exclude: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """InfoNCE loss of queries ``q`` (B, d) against positives ``k`` (B, d) and
    shared negatives (K, d). ``exclude`` (B, K) bool drops negatives per query (their logit
    is -inf). Returns ``(mean loss, logits (B, 1+K))``; the positive is column 0."""
    pos = (q * k).sum(dim=1, keepdim=True)
    neg = q @ negatives.t()
    if exclude is not None:
        neg = neg.masked_fill(exclude, float("-inf"))
    logits = torch.cat([pos, neg], dim=1) / temperature
    labels = torch.zeros(q.shape[0], dtype=torch.long, device=q.device)
    return F.cross_entropy(logits, labels), logits


def _gather_all(x: torch.Tensor) -> torch.Tensor:
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.contiguous())
    return torch.cat(parts)


class MoCo(nn.Module):
    """Query/key encoders, key queue and loss.

    Args:
        encoder: the query encoder; it is deep-copied for the key encoder. Its
            ``forward(*inputs)`` must return L2-normalised (B, dim) embeddings.
        dim: embedding size.
        queue_size: K, number of negative keys kept.
        momentum: m of the key encoder update.
        temperature: tau of InfoNCE.
        generator: seeds the random initial queue (unit vectors).
    """

    def __init__(self, encoder: nn.Module, dim: int, queue_size: int = 16384,
                 momentum: float = 0.999, temperature: float = 0.07,
                 generator: torch.Generator | None = None):
        super().__init__()
        if queue_size < 1 or not 0.0 <= momentum <= 1.0 or temperature <= 0:
            raise ConfigError("pretrain: need queue_size >= 1, 0 <= momentum <= 1, temperature > 0")
        self.momentum, self.temperature = momentum, temperature
        self.encoder_q = encoder
        self.encoder_k = copy.deepcopy(encoder)
        for p in self.encoder_k.parameters():
            p.requires_grad_(False)
        self.register_buffer("queue", F.normalize(torch.randn(queue_size, dim, generator=generator), dim=1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("queue_ids", torch.full((queue_size,), -1, dtype=torch.long))

    @torch.no_grad()
    def momentum_update(self) -> None:
        """theta_k <- m theta_k + (1 - m) theta_q (parameters; buffers are copied)."""
        for pk, pq in zip(self.encoder_k.parameters(), self.encoder_q.parameters()):
            pk.mul_(self.momentum).add_(pq.detach(), alpha=1.0 - self.momentum)
        for bk, bq in zip(self.encoder_k.buffers(), self.encoder_q.buffers()):
            bk.copy_(bq)

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor, ids: torch.Tensor | None = None) -> None:
        """Write ``keys`` (and their node ``ids``, -1 if unknown) at the queue pointer
        (wrapping around), oldest keys out."""
        K = self.queue.shape[0]
        keys = keys.detach()[-K:]
        n, p = keys.shape[0], int(self.queue_ptr)
        idx = (torch.arange(n, device=keys.device) + p) % K
        self.queue[idx] = keys.to(self.queue.dtype)
        self.queue_ids[idx] = (ids[-K:].to(self.queue_ids) if ids is not None
                               else torch.full((n,), -1, dtype=torch.long, device=keys.device))
        self.queue_ptr.fill_((p + n) % K)

    def forward(self, q_inputs: tuple, k_inputs: tuple, ids: torch.Tensor | None = None) -> torch.Tensor:
        """One MoCo step's loss: encode queries, momentum-update and encode keys,
        InfoNCE against the queue (minus the queued keys of each query's own node, when the
        node ``ids`` are given), then enqueue the (all-gathered) keys with their ids."""
        q = self.encoder_q(*q_inputs)
        with torch.no_grad():
            self.momentum_update()
            k = self.encoder_k(*k_inputs)
        exclude = None if ids is None else self.queue_ids[None, :] == ids.to(self.queue_ids)[:, None]
        loss, _ = info_nce(q, k, self.queue.clone().detach(), self.temperature, exclude)
        self.enqueue(_gather_all(k), None if ids is None else _gather_all(ids.to(self.queue_ids)))
        return loss
