"""Vector quantisation bottleneck (van den Oord et al. 2017, "Neural Discrete Representation Learning").

`VectorQuantizer` maps each D-dimensional vector of an encoder output (B, D, H, W) to its nearest
codebook entry (K codes). The forward pass returns the quantised tensor with straight-through
gradients (the decoder's gradient is copied to the encoder output), the code indices and the
bottleneck loss.

Two codebook update rules:

* ``ema=False`` — the paper's loss: ``||sg[z_e] - e||^2 + beta * ||z_e - sg[e]||^2`` (beta = 0.25).
* ``ema=True`` — exponential moving averages of the per-code counts ``N_k`` and sums ``m_k``
  (decay 0.99, appendix A.1 of the paper); ``e_k = m_k / N~_k`` with Laplace-smoothed counts
  ``N~_k = (N_k + eps) / (n + K eps) * n``. Only the commitment term is a loss then. The EMA state
  starts at ``N_k = 1, m_k = e_k`` (one pseudo-observation of the initial code), so an unused code
  keeps its position instead of being divided by a near-zero count in the first steps.

Under ``torch.distributed`` the per-batch counts and sums are all-reduced before the EMA update, so
every replica applies the same update (and codebooks stay identical). Dead-code restart (off by
default) re-initialises codes whose usage EMA falls below a threshold to random encoder outputs of
the current batch (chosen on rank 0 and broadcast).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class QuantizerOutput:
    """Result of one quantisation."""

    quantized: torch.Tensor   # (B, D, H, W), straight-through: forward = codes, backward = identity
    codes: torch.Tensor       # (B, H, W) int64
    loss: torch.Tensor        # scalar bottleneck loss (codebook + beta*commitment, or beta*commitment)
    counts: torch.Tensor      # (K,) float: how often each code was chosen in this batch (all ranks)
    perplexity: torch.Tensor  # scalar: exp(entropy of the batch's code distribution)


def _dist_ready() -> bool:
    return torch.distributed.is_available() and torch.distributed.is_initialized()


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum ``t`` over all ranks when torch.distributed is initialised (in place); identity otherwise."""
    if _dist_ready():
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.SUM)
    return t


def all_reduce_mean_grads(params) -> None:
    """Average the gradients of ``params`` over ranks (data parallelism without a DDP wrapper)."""
    if not _dist_ready():
        return
    world = torch.distributed.get_world_size()
    for p in params:
        if p.grad is not None:
            torch.distributed.all_reduce(p.grad, op=torch.distributed.ReduceOp.SUM)
            p.grad.div_(world)


def perplexity_from_counts(counts: torch.Tensor) -> float:
    """exp(H(p)) of the empirical code distribution given per-code counts (K,)."""
    total = counts.sum()
    if total <= 0:
        return 0.0
    p = counts / total
    ent = -(p * torch.log(p.clamp_min(1e-12))).sum()
    return float(torch.exp(ent))


def usage_stats(counts: torch.Tensor) -> dict:
    """Perplexity and number of codes used (count > 0) from accumulated per-code counts."""
    return {"perplexity": perplexity_from_counts(counts), "codes_used": int((counts > 0).sum())}


class VectorQuantizer(nn.Module):
    """Nearest-neighbour quantiser with a K x D codebook.

    Args:
        num_codes: K.
        dim: D, the channel count of the input.
        beta: commitment weight (0.25 in the paper).
        ema: use EMA codebook updates instead of the codebook loss.
        decay: EMA decay (0.99).
        eps: Laplace smoothing constant for the EMA counts.
        restart_threshold: if > 0, codes whose usage EMA (1.0 = uniform usage) drops below it are
            restarted from random encoder outputs of the current batch (dead-code restart; off by
            default). ``restart_decay`` is the decay of that usage EMA.
        data_init: initialise the codebook from random encoder outputs of the first training
            batch (off by default; the paper initialises randomly).
    """

    def __init__(self, num_codes: int, dim: int, beta: float = 0.25, ema: bool = True,
                 decay: float = 0.99, eps: float = 1e-5, restart_threshold: float = 0.0,
                 data_init: bool = False, restart_decay: float = 0.9):
        super().__init__()
        self.num_codes, self.dim, self.beta = num_codes, dim, beta
        self.ema, self.decay, self.eps = ema, decay, eps
        self.restart_threshold, self.restart_decay = restart_threshold, restart_decay
        self.restarted: torch.Tensor | None = None   # codes (re)set since the last optimizer step
        lim = (3.0 / dim) ** 0.5           # variance-scaling uniform init (as DeepMind's Sonnet VQ)
        init = torch.empty(num_codes, dim).uniform_(-lim, lim)
        if ema:
            self.register_buffer("embedding", init.clone())
            self.register_buffer("ema_count", torch.ones(num_codes))
            self.register_buffer("ema_sum", init.clone())
        else:
            self.embedding = nn.Parameter(init)
        self.register_buffer("usage", torch.ones(num_codes))
        self.register_buffer("initialised", torch.tensor(not data_init))

    # -- lookup ---------------------------------------------------------------------------------
    def nearest(self, flat: torch.Tensor) -> torch.Tensor:
        """Index of the nearest code for each row of ``flat`` (N, D)."""
        e = self.embedding
        dist = (flat.pow(2).sum(1, keepdim=True) - 2 * flat @ e.t() + e.pow(2).sum(1)[None, :])
        return dist.argmin(1)

    def embed(self, codes: torch.Tensor) -> torch.Tensor:
        """Codebook vectors for integer codes (B, H, W) -> (B, D, H, W)."""
        return F.embedding(codes, self.embedding).permute(0, 3, 1, 2).contiguous()

    def forward(self, z: torch.Tensor) -> QuantizerOutput:
        b, d, h, w = z.shape
        if d != self.dim:
            raise ValueError(f"quantizer expects {self.dim} channels, got {d}")
        flat = z.permute(0, 2, 3, 1).reshape(-1, d)
        if self.training and not bool(self.initialised):
            self._init_from(flat.detach())
        codes = self.nearest(flat.detach())
        onehot = F.one_hot(codes, self.num_codes).type(flat.dtype)
        counts = onehot.sum(0).detach().clone()
        if self.training:   # replicas agree on the codebook update; evaluation stays local
            counts = all_reduce_sum(counts)
        q_flat = F.embedding(codes, self.embedding).clone()   # codes as chosen, before any update
        if self.training and self.ema:
            self._ema_update(flat.detach(), onehot, counts)
        if self.training and self.restart_threshold > 0:
            self._restart_dead(flat.detach(), counts)
        commitment = F.mse_loss(flat, q_flat.detach())
        if self.ema:
            loss = self.beta * commitment
        else:
            loss = F.mse_loss(q_flat, flat.detach()) + self.beta * commitment
        q_flat = flat + (q_flat - flat).detach()          # straight-through estimator
        quantized = q_flat.view(b, h, w, d).permute(0, 3, 1, 2).contiguous()
        p = counts / counts.sum().clamp_min(1)
        perp = torch.exp(-(p * torch.log(p.clamp_min(1e-12))).sum())
        return QuantizerOutput(quantized, codes.view(b, h, w), loss, counts, perp)

    # -- codebook maintenance --------------------------------------------------------------------
    @torch.no_grad()
    def _ema_update(self, flat: torch.Tensor, onehot: torch.Tensor, counts: torch.Tensor) -> None:
        sums = all_reduce_sum(onehot.t() @ flat)
        self.ema_count.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.ema_sum.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        n = self.ema_count.sum()
        smoothed = (self.ema_count + self.eps) / (n + self.num_codes * self.eps) * n
        self.embedding.copy_(self.ema_sum / smoothed[:, None])

    @torch.no_grad()
    def _set_codes(self, mask: torch.Tensor, fresh: torch.Tensor) -> None:
        if _dist_ready():
            torch.distributed.broadcast(fresh, src=0)
        target = self.embedding.data if isinstance(self.embedding, nn.Parameter) else self.embedding
        target[mask] = fresh
        self.restarted = mask.clone() if self.restarted is None else (self.restarted | mask)
        self.usage[mask] = 1.0
        if self.ema:
            self.ema_count[mask] = 1.0
            self.ema_sum[mask] = fresh

    @torch.no_grad()
    def _init_from(self, flat: torch.Tensor) -> None:
        pick = torch.randint(0, flat.shape[0], (self.num_codes,), device=flat.device)
        noise = 0.01 * flat.std() * torch.randn(self.num_codes, self.dim, device=flat.device)
        self._set_codes(torch.ones(self.num_codes, dtype=torch.bool, device=flat.device),
                        flat[pick] + noise)
        self.initialised.fill_(True)

    @torch.no_grad()
    def _restart_dead(self, flat: torch.Tensor, counts: torch.Tensor) -> None:
        self.usage.mul_(self.restart_decay).add_(counts / counts.sum().clamp_min(1) * self.num_codes,
                                                  alpha=1 - self.restart_decay)
        dead = self.usage < self.restart_threshold
        n_dead = int(dead.sum())
        if n_dead == 0:
            return
        pick = torch.randint(0, flat.shape[0], (n_dead,), device=flat.device)
        self._set_codes(dead, flat[pick].clone())


@torch.no_grad()
def reset_restarted_state(model: nn.Module, optimizer: torch.optim.Optimizer) -> int:
    """Forget the optimizer's history (Adam moments, momentum) of codes restarted since the last
    call, for loss-trained codebooks; call it between ``backward()`` and ``optimizer.step()``.
    Returns the number of codes reset."""
    n = 0
    for q in model.modules():
        if not isinstance(q, VectorQuantizer) or q.restarted is None:
            continue
        mask, q.restarted = q.restarted, None
        if isinstance(q.embedding, nn.Parameter):
            for v in optimizer.state.get(q.embedding, {}).values():
                if isinstance(v, torch.Tensor) and v.shape[:1] == mask.shape:
                    v[mask] = 0
            n += int(mask.sum())
    return n
