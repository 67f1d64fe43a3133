"""LightGCN (He et al., SIGIR 2020) on one domain's user-item graph, with DGL.

Ego embeddings ``E0`` (users then items, the node layout of :mod:`components.pcrec.graph`) are
propagated ``L`` times with the symmetric normalisation ``E(k+1) = D^-1/2 A D^-1/2 E(k)`` (no
weights, no non-linearity) and averaged: ``E = mean(E0..EL)``. The score is the dot product of
the final user and item vectors. BPR's L2 term uses the *ego* embeddings of the batch, as in the
paper. ``forward(u, i, j)`` returns ``(v, reg_term)`` like :class:`components.pcrec.mf.MF`, so
the same BPR loop (:mod:`components.pcrec.bpr`) trains both.

Public API: :class:`LightGCN`.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from components.pcrec.graph import build_bipartite


class LightGCN(nn.Module):
    """LightGCN over the training pairs ``(uid, iid)`` of one domain.

    Args:
        uid, iid: training interactions (graph edges).
        n_users, n_items: id space sizes (nodes without edges keep their ego embedding).
        dim: embedding size; layers: propagation steps ``L``; init_std: N(0, std^2) init.
        generator: torch Generator for the initialisation.
    """

    def __init__(self, uid: np.ndarray, iid: np.ndarray, n_users: int, n_items: int, dim: int,
                 layers: int = 2, init_std: float = 0.1, generator: torch.Generator | None = None):
        super().__init__()
        import dgl.function as fn  # noqa: F401  (fail early if DGL is missing)

        self.n_users, self.n_items, self.layers = n_users, n_items, layers
        g = build_bipartite(uid, iid, n_users, n_items, where="split/train").to_dgl()
        deg = g.in_degrees().float().clamp(min=1)
        src, dst = g.edges()
        g.edata["w"] = (deg[src] * deg[dst]).rsqrt()
        self.graph = g
        self.ego = nn.Parameter(torch.randn(n_users + n_items, dim, generator=generator) * init_std)

    def propagate(self) -> torch.Tensor:
        """Final node embeddings ``mean(E0..EL)`` (users first, then items)."""
        import dgl.function as fn

        g, h = self.graph, self.ego
        out = h
        with g.local_scope():
            for _ in range(self.layers):
                g.ndata["h"] = h
                g.update_all(fn.u_mul_e("h", "w", "m"), fn.sum("m", "h"))
                h = g.ndata["h"]
                out = out + h
        return out / (self.layers + 1)

    def forward(self, u: torch.Tensor, i: torch.Tensor, j: torch.Tensor):
        """``(v, reg_term)``: agreement on propagated embeddings, L2 on ego embeddings."""
        e = self.propagate()
        nu = self.n_users
        pu, qi, qj = e[u], e[nu + i], e[nu + j]
        v = (pu * (qi - qj)).sum(-1)
        eu, ei, ej = self.ego[u], self.ego[nu + i], self.ego[nu + j]
        reg = (eu.square().sum(-1) + ei.square().sum(-1) + ej.square().sum(-1)).mean()
        return v, reg

    @torch.no_grad()
    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Final ``(user, item)`` embeddings used for scoring."""
        e = self.propagate()
        return e[: self.n_users].clone(), e[self.n_users:].clone()
