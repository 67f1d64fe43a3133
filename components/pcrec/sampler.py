"""r-ego subgraph views by random walk with restart (RWR), batched and vectorized.

Semantics (per query node ``q`` and view ``v``)
-----------------------------------------------
A walker starts at ``q``. At every step it *restarts* (jumps back to ``q``) with
probability ``restart_prob``, and always when it has made ``r`` steps since its last
restart (or sits on a node without neighbours); otherwise it moves to a uniformly
chosen neighbour. Because a walker is never more than ``r`` steps away from its last
restart, every visited node lies in the r-ego network of ``q`` (hop distance <= r),
and every node of that network can be visited. The view is the subgraph *induced* by
the first ``max_nodes`` distinct nodes the walk visits (``q`` first).

This is a real restart, unlike ``dgl.sampling.random_walk(restart_prob=p)``, which
*ends* a trace. The walk of one view is split into ``num_walkers`` independent
chunks of ``walk_length`` steps that all start at ``q`` (a restart is memoryless, so
chunk-by-chunk this is one RWR trajectory of ``num_walkers * walk_length`` steps).

Vectorization and determinism
-----------------------------
All walkers of all queries and views advance together (a loop over the
``walk_length`` steps only); the union-until-cap and the induced edges are computed
with sorts and ``searchsorted`` over the whole batch. Random numbers come from a
counter-based hash of ``(seed, query, view, walker, step)``, so a view depends only on
those values: not on the batch it was sampled in, the batch size or the thread count.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from components.errors import ConfigError
from components.pcrec.graph import BipartiteGraph
from components.pcrec.subgraphs import SubgraphBatch, _ptr

_M64 = (1 << 64) - 1


def _s64(x: int) -> int:
    x &= _M64
    return x - (1 << 64) if x >= (1 << 63) else x


_C1, _C2, _GOLD = _s64(0xBF58476D1CE4E5B9), _s64(0x94D049BB133111EB), _s64(0x9E3779B97F4A7C15)
_MASK32 = (1 << 32) - 1


def _srl(x: torch.Tensor, k: int) -> torch.Tensor:
    """Logical right shift of int64."""
    return (x >> k) & ((1 << (64 - k)) - 1)


def mix64(x: torch.Tensor) -> torch.Tensor:
    """SplitMix64 finaliser on int64 tensors (wrapping arithmetic)."""
    x = x ^ _srl(x, 30)
    x = x * _C1
    x = x ^ _srl(x, 27)
    x = x * _C2
    return x ^ _srl(x, 31)


@dataclass(frozen=True)
class RWRConfig:
    """Sampler parameters.

    Attributes:
        r: hop radius of the ego network (1, 2 or 3).
        restart_prob: probability of jumping back to the query at each step.
        max_nodes: cap on subgraph size, query included.
        num_walkers: walk chunks per view (parallel walkers).
        walk_length: steps per walker.
    """

    r: int = 2
    restart_prob: float = 0.5
    max_nodes: int = 64
    num_walkers: int = 32
    walk_length: int = 16

    def __post_init__(self):
        if self.r not in (1, 2, 3):
            raise ConfigError(f"sample.r must be 1, 2 or 3, got {self.r}")
        if not 0.0 <= self.restart_prob < 1.0:
            raise ConfigError(f"sample.restart_prob must be in [0, 1), got {self.restart_prob}")
        if self.max_nodes < 2 or self.num_walkers < 1 or self.walk_length < 1:
            raise ConfigError("sample.max_nodes >= 2, num_walkers >= 1 and walk_length >= 1 required")


def rwr_traces(g: BipartiteGraph, queries: torch.Tensor, views: torch.Tensor,
               cfg: RWRConfig, seed: int) -> torch.Tensor:
    """Raw RWR visits.

    Args:
        g: the graph (CSR).
        queries, views: int64 (S,), one walk per (query, view) pair.
        cfg: sampler parameters.
        seed: random seed.

    Returns:
        int64 (S, 1 + num_walkers * walk_length): the query, then each walker's
        positions after every step, walker-major (the order of one long RWR walk).
    """
    queries = torch.as_tensor(queries, dtype=torch.int64)
    views = torch.as_tensor(views, dtype=torch.int64)
    S, W, T = queries.numel(), cfg.num_walkers, cfg.walk_length
    indptr, indices = g.indptr, g.indices
    base = mix64(mix64(mix64(torch.full((S,), seed, dtype=torch.int64)) ^ queries) + views * _GOLD)
    start = queries.repeat_interleave(W)                      # (S*W,)
    ctr = base.repeat_interleave(W) + torch.arange(W).repeat(S) * _s64(T * _GOLD)
    pos, hops = start.clone(), torch.zeros_like(start)
    thresh = int(cfg.restart_prob * (1 << 32))
    trace = torch.empty((S * W, T), dtype=torch.int64)
    for t in range(T):
        h = mix64(ctr + _s64((t + 1) * _GOLD))
        u_restart = h & _MASK32
        u_pick = _srl(h, 32)
        lo = indptr[pos]
        deg = indptr[pos + 1] - lo
        restart = (u_restart < thresh) | (hops >= cfg.r) | (deg == 0)
        off = (u_pick * deg) >> 32                             # uniform in [0, deg)
        nxt = indices[torch.where(deg > 0, lo + off, torch.zeros_like(lo))]
        pos = torch.where(restart, start, nxt)
        hops = torch.where(restart, torch.zeros_like(hops), hops + 1)
        trace[:, t] = pos
    return torch.cat([queries[:, None], trace.view(S, W * T)], dim=1)


def first_distinct(seq: torch.Tensor, cap: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, the first ``cap`` distinct values in order of first appearance.

    Returns ``(ptr, values)``: row ``s`` keeps ``values[ptr[s]:ptr[s+1]]``.
    """
    S, L = seq.shape
    n = int(seq.max()) + 1 if seq.numel() else 1
    key = (torch.arange(S)[:, None] * n + seq).reshape(-1)
    skey, perm = torch.sort(key, stable=True)
    first = torch.ones_like(skey, dtype=torch.bool)
    first[1:] = skey[1:] != skey[:-1]
    upos = perm[first]                                        # flat position of first visit
    urow = upos // L
    order = torch.argsort(upos)                               # row-major, then visit order
    upos, urow = upos[order], urow[order]
    counts = torch.bincount(urow, minlength=S)
    rank = torch.arange(upos.numel()) - _ptr(counts)[:-1].repeat_interleave(counts)
    keep = rank < cap
    return _ptr(torch.clamp(counts, max=cap)), seq.reshape(-1)[upos[keep]]


def induced_edges(g: BipartiteGraph, node_ptr: torch.Tensor, nodes: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Edges of the subgraph induced by each node set, vectorized over the batch.

    Returns ``(edge_ptr, src, dst)`` with local indices and ``src < dst``.
    """
    S = node_ptr.numel() - 1
    counts = node_ptr[1:] - node_ptr[:-1]
    m = int(counts.max()) if S else 0
    N = g.num_nodes
    pad = torch.full((S, m), -1, dtype=torch.int64)
    local = torch.arange(nodes.numel()) - node_ptr[:-1].repeat_interleave(counts)
    rows = torch.arange(S).repeat_interleave(counts)
    pad[rows, local] = nodes
    iu, ju = torch.triu_indices(m, m, offset=1)
    a, b = pad[:, iu], pad[:, ju]                             # (S, P) candidate pairs
    valid = (a >= 0) & (b >= 0)
    ekeys = _edge_keys(g)
    q = torch.where(valid, a * N + b, torch.zeros_like(a))
    hit = torch.searchsorted(ekeys, q.reshape(-1)).clamp(max=ekeys.numel() - 1)
    found = (ekeys[hit] == q.reshape(-1)).view(S, -1) & valid
    srow, pidx = found.nonzero(as_tuple=True)
    ecount = torch.bincount(srow, minlength=S)
    return _ptr(ecount), iu[pidx], ju[pidx]


def _edge_keys(g: BipartiteGraph) -> torch.Tensor:
    """Sorted ``src * N + dst`` of all directed edges (cached on the graph object)."""
    cached = getattr(g, "_edge_keys_cache", None)
    if cached is None:
        src, dst = g.edges()
        cached = torch.sort(src * g.num_nodes + dst).values
        object.__setattr__(g, "_edge_keys_cache", cached)
    return cached


def sample_subgraphs(g: BipartiteGraph, queries, views, cfg: RWRConfig, seed: int) -> SubgraphBatch:
    """One RWR r-ego subgraph per ``(query, view)`` pair, as a :class:`SubgraphBatch`."""
    queries = torch.as_tensor(queries, dtype=torch.int64)
    views = torch.as_tensor(views, dtype=torch.int64).expand_as(queries)
    if queries.numel() == 0:
        z = torch.zeros(1, dtype=torch.int64)
        e = torch.zeros(0, dtype=torch.int64)
        return SubgraphBatch(queries, z, e, z.clone(), e.clone(), e.clone())
    trace = rwr_traces(g, queries, views, cfg, seed)
    node_ptr, nodes = first_distinct(trace, cfg.max_nodes)
    edge_ptr, src, dst = induced_edges(g, node_ptr, nodes)
    return SubgraphBatch(queries.clone(), node_ptr, nodes, edge_ptr, src, dst)


def sample_views(g: BipartiteGraph, queries, cfg: RWRConfig, seed: int,
                 num_views: int = 2) -> list[SubgraphBatch]:
    """``num_views`` independent views of every query (a positive pair for 2),
    sampled in one vectorized pass; returns one batch per view, aligned with ``queries``."""
    queries = torch.as_tensor(queries, dtype=torch.int64)
    B = queries.numel()
    allq = queries.repeat(num_views)
    allv = torch.arange(num_views).repeat_interleave(B)
    batch = sample_subgraphs(g, allq, allv, cfg, seed)
    return [batch.slice(v * B, (v + 1) * B) for v in range(num_views)]
