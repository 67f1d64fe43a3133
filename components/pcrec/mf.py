"""Matrix factorisation scored by dot product, trained with BPR + L2.

``score(u, i) = <p_u, q_i>``. For a triple ``(u, i, j)`` (``i`` positive, ``j`` sampled
negative) the pairwise agreement is ``v = score(u, i) - score(u, j)`` and the BPR objective of
a batch ``B`` is

    L = mean_B loss(v) + reg * mean_B (||p_u||^2 + ||q_i||^2 + ||q_j||^2)

with ``loss = logit_margin`` (``log(1 + exp(-v)) = -log sigmoid(v)``, i.e. BPR) from
``components.losses.margin``. :class:`MF` returns ``(v, reg_term)`` from ``forward`` so the
generic loop in :mod:`components.pcrec.bpr` (and DDP) can train it like any other scorer.

Public API: :class:`MF`, :func:`init_factors`.
"""
from __future__ import annotations

import numpy as np
import torch
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
            raise ConfigError(f"pre-trained matrix has shape {tuple(pre.shape)}, expected ({n}, {dim}); "
                              "set finetune.factors to the pre-training embedding size")
        m = torch.ones(n, dtype=torch.bool) if mask is None else torch.as_tensor(np.asarray(mask, bool))
        out[m] = pre[m] * scale
    return out


class MF(nn.Module):
    """Plain MF: user factors ``P`` (``n_users x dim``) and item factors ``Q`` (``n_items x dim``).

    Args:
        user_init, item_init: initial factor matrices (see :func:`init_factors`).
    """

    def __init__(self, user_init: torch.Tensor, item_init: torch.Tensor):
        super().__init__()
        if user_init.shape[1] != item_init.shape[1]:
            raise ConfigError("user and item factors differ in dimension")
        self.user = nn.Embedding.from_pretrained(user_init.clone().float(), freeze=False)
        self.item = nn.Embedding.from_pretrained(item_init.clone().float(), freeze=False)

    def forward(self, u: torch.Tensor, i: torch.Tensor, j: torch.Tensor):
        """``(v, reg_term)`` for a batch of triples; see the module docstring."""
        pu, qi, qj = self.user(u), self.item(i), self.item(j)
        v = (pu * (qi - qj)).sum(-1)
        reg = (pu.square().sum(-1) + qi.square().sum(-1) + qj.square().sum(-1)).mean()
        return v, reg

    @torch.no_grad()
    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The final ``(user, item)`` factor matrices used for scoring."""
        return self.user.weight.detach().clone(), self.item.weight.detach().clone()
