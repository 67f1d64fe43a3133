"""Embedding nodes of a graph with a (pre-trained) subgraph encoder.

Each node gets one r-ego view (RWR sampler, view index 0, fixed seed), GCC features
without sign flips, and the encoder's L2-normalised output in ``eval`` mode. Used for
the source-graph embeddings after pre-training and for transfer mode (c): the
pre-trained encoder applied to *target-domain* ego subgraphs.
"""
from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn

from components.pcrec.features import subgraph_features
from components.pcrec.graph import BipartiteGraph
from components.pcrec.sampler import RWRConfig, sample_subgraphs
from components.pcrec.subgraphs import SubgraphBatch


@torch.no_grad()
def encode_batches(encoder: nn.Module, batches: Iterable[SubgraphBatch], pos_dim: int,
                   device: str | torch.device = "cpu") -> torch.Tensor:
    """Encode already-sampled subgraph batches; returns the concatenated embeddings."""
    was_training = encoder.training
    encoder.eval()
    out = []
    try:
        for b in batches:
            f = subgraph_features(b, pos_dim).to(device)
            out.append(encoder(b.to_dgl(), f.x, f.degree).cpu())
    finally:
        encoder.train(was_training)
    return torch.cat(out) if out else torch.zeros((0, 0))


def embed_nodes(encoder: nn.Module, graph: BipartiteGraph, nodes, sampler: RWRConfig,
                pos_dim: int, *, seed: int = 0, batch_size: int = 1024,
                device: str | torch.device = "cpu",
                progress: Callable[[Iterable], Iterable] | None = None) -> torch.Tensor:
    """Embeddings (len(nodes), dim) of ``nodes`` of ``graph`` (one ego view each).

    Args:
        encoder: a :class:`components.pcrec.gin.GINEncoder` (or compatible).
        graph: the graph the nodes belong to.
        nodes: node ids (users ``u``, items ``U + i``).
        sampler: RWR parameters of the views.
        pos_dim: positional feature size the encoder was trained with.
        seed: sampling seed (the result is deterministic per node and seed).
        batch_size: nodes per batch.
        device: where the encoder runs.
        progress: optional wrapper of the batch iterator (e.g. a progress bar).
    """
    nodes = torch.as_tensor(nodes, dtype=torch.int64)
    starts = range(0, nodes.numel(), batch_size)
    if progress is not None:
        starts = progress(starts)

    def gen():
        for s in starts:
            q = nodes[s:s + batch_size]
            yield sample_subgraphs(graph, q, torch.zeros_like(q), sampler, seed)

    emb = encode_batches(encoder, gen(), pos_dim, device)
    return emb
