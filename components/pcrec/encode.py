"""Embedding nodes of a graph with a (pre-trained) subgraph encoder.

Each node gets ``num_views`` r-ego views (RWR sampler, view indices 0, 1, ..., fixed seed;
default 2 as in GCC's inference), GCC features without sign flips, and the average of the
encoder's L2-normalised outputs in ``eval`` mode, normalised again. Used for
the source-graph embeddings after pre-training and for transfer mode (c): the
pre-trained encoder applied to *target-domain* ego subgraphs.
"""
from __future__ import annotations

from typing import Callable, Iterable

import torch
from torch import nn

from components.errors import ConfigError
from components.pcrec.features import DEGREE_INPUTS, subgraph_features
from components.pcrec.graph import BipartiteGraph
from components.pcrec.sampler import RWRConfig, sample_subgraphs
from components.pcrec.subgraphs import SubgraphBatch


@torch.no_grad()
def encode_batches(encoder: nn.Module, batches: Iterable[SubgraphBatch], pos_dim: int,
                   device: str | torch.device = "cpu",
                   graph_degree: torch.Tensor | None = None) -> torch.Tensor:
    """Encode already-sampled subgraph batches; returns the concatenated embeddings.
    ``graph_degree``: whole-graph degrees for ``degree_input="graph"`` encoders (see
    :func:`components.pcrec.features.subgraph_features`)."""
    was_training = encoder.training
    encoder.eval()
    out = []
    try:
        for b in batches:
            f = subgraph_features(b, pos_dim, graph_degree=graph_degree).to(device)
            out.append(encoder(b.to_dgl(), f.x, f.degree).cpu())
    finally:
        encoder.train(was_training)
    return torch.cat(out) if out else torch.zeros((0, 0))


def embed_nodes(encoder: nn.Module, graph: BipartiteGraph, nodes, sampler: RWRConfig,
                pos_dim: int, *, seed: int = 0, batch_size: int = 1024,
                device: str | torch.device = "cpu",
                progress: Callable[[Iterable], Iterable] | None = None,
                num_views: int = 2, return_views: bool = False, degree_input: str = "subgraph"):
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
        num_views: views averaged per node (1 = a single view).
        return_views: also return the per-view embeddings, (num_views, len(nodes), dim).
        degree_input: the degree feature the encoder was trained with: ``"subgraph"`` (GCC,
            in-view degree) or ``"graph"`` (log-binned degree in ``graph``).
    """
    if num_views < 1:
        raise ConfigError(f"num_views must be >= 1, got {num_views}", param="num_views")
    if degree_input not in DEGREE_INPUTS:
        raise ConfigError(f"degree_input must be one of {DEGREE_INPUTS}, got {degree_input!r}",
                          param="degree_input")
    nodes = torch.as_tensor(nodes, dtype=torch.int64)
    starts = range(0, nodes.numel(), batch_size)
    if progress is not None:
        starts = progress(starts)

    def gen():
        for s in starts:
            q = nodes[s:s + batch_size]
            views = torch.arange(num_views).repeat_interleave(q.numel())
            yield sample_subgraphs(graph, q.repeat(num_views), views, sampler, seed)

    out = encode_batches(encoder, gen(), pos_dim, device,
                         graph.degrees() if degree_input == "graph" else None)
    if out.numel() == 0:
        return (out, out[None]) if return_views else out
    # each batch holds its nodes' view 0, then view 1, ...: regroup to (views, nodes, dim)
    parts = torch.split(out, [num_views * min(batch_size, nodes.numel() - s0)
                              for s0 in range(0, nodes.numel(), batch_size)])
    per_view = torch.cat([p.view(num_views, -1, p.shape[1]) for p in parts], dim=1)
    emb = torch.nn.functional.normalize(per_view.mean(0), p=2, dim=1)
    return (emb, per_view) if return_views else emb
