"""Matrix factorisation scored by dot product, trained with BPR + L2.

``score(u, i) = <p_u, q_i>``. For a triple ``(u, i, j)`` (``i`` positive, ``j`` sampled
negative) the pairwise agreement is ``v = score(u, i) - score(u, j)`` and the BPR objective of
a batch ``B`` is

    L = mean_B loss(v) + reg * mean_B (||p_u||^2 + ||q_i||^2 + ||q_j||^2 [+ b_i^2 + b_j^2])

with ``loss = logit_margin`` (``log(1 + exp(-v)) = -log sigmoid(v)``, i.e. BPR) from
``components.losses.margin``. :class:`MF` returns ``(v, reg_term)`` from ``forward`` so the
generic loop in :mod:`components.pcrec.bpr` (and DDP) can train it like any other scorer with a
torch optimizer (Adam, Adagrad, SGD on the batch mean). :meth:`MF.sgd_step` is the fast path
(``optimizer: rowsgd``): per-sample SGD on the touched rows without autograd, the update rule
of the original BPR paper and of ``implicit`` (there the L2 term is ``reg/2`` per sample).

Public API: :class:`MF`, :func:`init_factors`.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from components.errors import ConfigError


def init_factors(n: int, dim: int, std: float, generator: torch.Generator,
                 pretrained: np.ndarray | None = None, mask: np.ndarray | None = None,
                 scale: float = 1.0) -> torch.Tensor:
    """An ``(n, dim)`` factor matrix: ``N(0, std^2)`` with rows ``mask`` taken from ``pretrained``.

    Args:
        pretrained: ``(n, dim)`` matrix of pre-trained vectors (rows outside ``mask`` ignored).
        mask: boolean ``(n,)``; rows to copy from ``pretrained`` (default: all when given).
        scale: multiplier applied to the copied pre-trained rows.
    """
    out = torch.randn(n, dim, generator=generator) * std
    if pretrained is not None:
        pre = torch.as_tensor(np.asarray(pretrained, dtype=np.float32))
        if pre.shape != (n, dim):
            raise ConfigError(f"pre-trained matrix has shape {tuple(pre.shape)}, expected ({n}, {dim})",
                              param="dim", fix="pass dim equal to the pre-trained embedding size")
        m = torch.ones(n, dtype=torch.bool) if mask is None else torch.as_tensor(np.asarray(mask, bool))
        out[m] = pre[m] * scale
    return out


class MF(nn.Module):
    """MF: user factors ``P`` (``n_users x dim``), item factors ``Q`` (``n_items x dim``) and,
    with ``item_bias``, an item bias ``b`` (init 0): ``score(u, i) = <p_u, q_i> + b_i``.

    The bias is regularised like the factors. :meth:`embeddings` folds it in as an extra
    column (``[P, 1]``, ``[Q, b]``), so downstream scoring stays a plain dot product.

    Args:
        user_init, item_init: initial factor matrices (see :func:`init_factors`).
        item_bias: learn ``b`` (as BPR in ``implicit`` does).
    """

    def __init__(self, user_init: torch.Tensor, item_init: torch.Tensor, item_bias: bool = False):
        super().__init__()
        if user_init.shape[1] != item_init.shape[1]:
            raise ConfigError("user and item factors differ in dimension")
        self.user = nn.Embedding.from_pretrained(user_init.clone().float(), freeze=False)
        self.item = nn.Embedding.from_pretrained(item_init.clone().float(), freeze=False)
        self.bias = nn.Parameter(torch.zeros(item_init.shape[0])) if item_bias else None

    def forward(self, u: torch.Tensor, i: torch.Tensor, j: torch.Tensor):
        """``(v, reg_term)`` for a batch of triples; see the module docstring."""
        pu, qi, qj = self.user(u), self.item(i), self.item(j)
        v = (pu * (qi - qj)).sum(-1)
        reg = (pu.square().sum(-1) + qi.square().sum(-1) + qj.square().sum(-1)).mean()
        if self.bias is not None:
            bi, bj = self.bias[i], self.bias[j]
            v = v + bi - bj
            reg = reg + (bi.square() + bj.square()).mean()
        return v, reg

    @torch.no_grad()
    def sgd_step(self, u: torch.Tensor, i: torch.Tensor, j: torch.Tensor, lr: float, reg: float,
                 deriv) -> torch.Tensor:
        """One fused, autograd-free SGD step on the rows of a batch; returns ``v``.

        Per-sample SGD as in the original BPR (and ``implicit``): every triple moves its rows by
        ``-lr * d/dtheta [loss(v) + reg/2 (|p_u|^2 + |q_i|^2 + |q_j|^2)]``; the updates of a batch
        are computed from the same parameters and summed (``index_add_``), so ``lr`` is a
        per-sample step. ``deriv`` is the loss's ``d loss / d v`` (``MarginLoss.deriv``).
        """
        P, Q = self.user.weight.data, self.item.weight.data
        pu, qi, qj = F.embedding(u, P), F.embedding(i, Q), F.embedding(j, Q)
        dq = qi - qj
        v = (pu * dq).sum(1)
        if self.bias is not None:
            b = self.bias.data
            bi, bj = b[i], b[j]
            v += bi - bj
        g = deriv(v).mul_(-lr).unsqueeze(1)           # -lr * dloss/dv
        if self.bias is not None:
            g1 = g.squeeze(1)
            b.scatter_add_(0, i, g1 - (lr * reg) * bi)
            b.scatter_add_(0, j, -g1 - (lr * reg) * bj)
        d = P.shape[1]
        # scatter_add_ with an expanded index is ~3x faster than index_add_ on CPU
        P.scatter_add_(0, u.unsqueeze(1).expand(-1, d), torch.addcmul(pu * (-lr * reg), g, dq))
        gp = g * pu
        Q.scatter_add_(0, i.unsqueeze(1).expand(-1, d), torch.add(gp, qi, alpha=-lr * reg))
        Q.scatter_add_(0, j.unsqueeze(1).expand(-1, d), torch.add(gp, qj, alpha=lr * reg).neg_())
        return v

    @torch.no_grad()
    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The final ``(user, item)`` factor matrices used for scoring (bias folded in)."""
        P, Q = self.user.weight.detach().clone(), self.item.weight.detach().clone()
        if self.bias is None:
            return P, Q
        return (torch.cat([P, torch.ones(len(P), 1)], 1),
                torch.cat([Q, self.bias.detach().unsqueeze(1)], 1))
