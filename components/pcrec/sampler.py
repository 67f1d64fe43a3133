"""r-ego subgraph views by random walk with restart (RWR), batched and vectorized.

Semantics (per query node ``q`` and view ``v``)
-----------------------------------------------
A walker starts at ``q``. At every step it *restarts* (jumps back to ``q``) with
probability ``restart_prob``, and always when it has made ``r`` moves since its last
restart (or sits on a node without neighbours); then it moves to a uniformly chosen
neighbour. (A plain RWR may also "restart" while sitting on ``q``, which visits nothing
new; folding jump and move into one step skips those idle steps and leaves the sequence
of visited nodes identically distributed.) Because a walker is never more than ``r``
moves away from its last restart, every visited node lies in the r-ego network of ``q`` (hop distance <= r),
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
with sorts and an adjacency bitmap (binary search for very large graphs) over the
whole batch. Random numbers come from a
counter-based hash of ``(seed, query, view, walker, step)``, so a view depends only on
those values: not on the batch it was sampled in, the batch size or the thread count.
"""
from __future__ import annotations

from dataclasses import dataclass

import math

import numpy as np
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
        walk_length: steps per walker (``num_walkers * walk_length`` = the longest walk).
        degree_budget: GCC's walk budget: a view of query ``q`` takes
            ``max(min_steps, ceil(deg(q)^0.75 * e/(e-1) / restart_prob))`` steps (capped at
            ``num_walkers * walk_length``), so high-degree nodes get larger views; False: every
            view takes ``num_walkers * walk_length`` steps.
        min_steps: smallest walk budget with ``degree_budget``.
    """

    r: int = 2
    restart_prob: float = 0.5
    max_nodes: int = 64
    num_walkers: int = 32
    walk_length: int = 8
    degree_budget: bool = False
    min_steps: int = 1

    def __post_init__(self):
        if self.r not in (1, 2, 3):
            raise ConfigError(f"r must be 1, 2 or 3, got {self.r}", param="r")
        if not 0.0 <= self.restart_prob < 1.0:
            raise ConfigError(f"restart_prob must be in [0, 1), got {self.restart_prob}", param="restart_prob")
        if self.max_nodes < 2 or self.num_walkers < 1 or self.walk_length < 1:
            raise ConfigError("max_nodes >= 2, num_walkers >= 1 and walk_length >= 1 required", param="max_nodes")
        if self.min_steps < 1:
            raise ConfigError(f"min_steps must be >= 1, got {self.min_steps}", param="min_steps")


def walk_budget(g: BipartiteGraph, queries, cfg: RWRConfig) -> torch.Tensor:
    """Steps of each query's walk (int64, same shape as ``queries``): GCC's
    ``max(min_steps, ceil(deg^0.75 * e / (e - 1) / restart_prob))`` with ``degree_budget``
    (``e / (e - 1)`` and ``1 / restart_prob`` account for revisits and restarts), capped at
    ``num_walkers * walk_length``; otherwise that cap for every query."""
    queries = torch.as_tensor(queries, dtype=torch.int64)
    total = cfg.num_walkers * cfg.walk_length
    if not cfg.degree_budget:
        return torch.full_like(queries, total)
    deg = g.degrees()[queries].to(torch.float64)
    steps = torch.ceil(deg.pow(0.75) * (math.e / (math.e - 1)) / max(cfg.restart_prob, 1e-3))
    return steps.to(torch.int64).clamp(min=min(cfg.min_steps, total), max=total)


def draw_queries(g: BipartiteGraph, n: int | None, seed: int, epoch: int,
                 degree_power: float = 0.0) -> np.ndarray:
    """``n`` distinct query nodes of one epoch (sorted; all nodes when ``n`` is None or too big),
    drawn with probability proportional to ``degree ** degree_power`` (GCC: 0.75; 0: uniform).
    Deterministic in ``seed`` and ``epoch``."""
    N = g.num_nodes
    rng = np.random.default_rng([seed, epoch, 0x5A3])
    k = N if n is None else min(int(n), N)
    p = None
    if degree_power and k < N:
        w = g.degrees().to(torch.float64).clamp(min=1).numpy() ** degree_power
        p = w / w.sum()
    return np.sort(rng.choice(N, size=k, replace=False, p=p))


def rwr_traces(g: BipartiteGraph, queries: torch.Tensor, views: torch.Tensor,
               cfg: RWRConfig, seed: int, *, return_jumps: bool = False):
    """Raw RWR visits.

    Args:
        g: the graph (CSR).
        queries, views: int64 (S,), one walk per (query, view) pair.
        cfg: sampler parameters.
        seed: random seed.
        return_jumps: also return whether each step began with a restart.

    Returns:
        int64 (S, 1 + num_walkers * walk_length): the query, then each walker's
        position after every step, walker-major (the order of one long RWR walk);
        with ``return_jumps`` also a bool (S, num_walkers * walk_length).
    """
    queries = torch.as_tensor(queries, dtype=torch.int64)
    views = torch.as_tensor(views, dtype=torch.int64)
    S, W, T = queries.numel(), cfg.num_walkers, cfg.walk_length
    indptr, indices = _csr32(g)
    base = mix64(mix64(mix64(torch.full((S,), seed, dtype=torch.int64)) ^ queries) + views * _GOLD)
    start = queries.repeat_interleave(W).to(indices.dtype)    # (S*W,)
    ctr = base.repeat_interleave(W) + torch.arange(W).repeat(S) * _s64(T * _GOLD)
    steps = torch.arange(1, T + 1, dtype=torch.int64) * _GOLD   # wraps like uint64
    h = mix64(ctr[:, None] + steps[None, :])                     # (S*W, T): all random bits
    coin = (h & _MASK32) < int(cfg.restart_prob * (1 << 32))
    pick = _srl(h, 32)
    seed_lo = indptr[start.long()].to(torch.int64)
    seed_deg = indptr[start.long() + 1].to(torch.int64) - seed_lo
    pos, hops = start.clone(), torch.zeros(S * W, dtype=torch.int64)
    lo, deg = seed_lo, seed_deg
    trace = torch.empty((S * W, T), dtype=indices.dtype)
    jumps = torch.empty((S * W, T), dtype=torch.bool) if return_jumps else None
    for t in range(T):
        # restart (jump to the query) unless already there: by chance, after r moves, or at
        # a dead end; then move to a uniform neighbour. The steps a plain RWR spends sitting
        # on the query add no nodes, so jump-and-move happen in one step.
        jump = (hops > 0) & (coin[:, t] | (hops >= cfg.r) | (deg == 0))
        lo = torch.where(jump, seed_lo, lo)
        deg = torch.where(jump, seed_deg, deg)
        hops = torch.where(jump, 0, hops)
        off = (pick[:, t] * deg) >> 32                           # uniform in [0, deg)
        moved = deg > 0
        pos = torch.where(moved, indices[torch.where(moved, lo + off, 0)], start)
        hops = torch.where(moved, hops + 1, 0)
        lo = indptr[pos.long()].to(torch.int64)
        deg = indptr[pos.long() + 1].to(torch.int64) - lo
        trace[:, t] = pos
        if return_jumps:
            jumps[:, t] = jump
    flat = trace.view(S, W * T).to(torch.int64)
    if cfg.degree_budget:   # steps past the query's budget are dropped (set to the query)
        over = torch.arange(W * T)[None, :] >= walk_budget(g, queries, cfg)[:, None]
        flat = torch.where(over, queries[:, None], flat)
    out = torch.cat([queries[:, None], flat], dim=1)
    return (out, jumps.view(S, W * T)) if return_jumps else out


def _csr32(g: BipartiteGraph) -> tuple[torch.Tensor, torch.Tensor]:
    """The CSR as int32 when it fits (halves the memory traffic of the walk's gathers)."""
    if g.num_edges < 2**31 - 1 and g.num_nodes < 2**31 - 1:
        return _cached(g, "_csr32_cache", lambda: (g.indptr.to(torch.int32), g.indices.to(torch.int32)))
    return g.indptr, g.indices


def first_distinct(seq: torch.Tensor, cap: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, the first ``cap`` distinct values in order of first appearance; column 0
    (the query) is always kept first.

    Returns ``(ptr, values)``: row ``s`` keeps ``values[ptr[s]:ptr[s+1]]``.
    """
    S, L = seq.shape
    head = seq[:, 0]
    flat = torch.nonzero((seq != head[:, None]).reshape(-1)).squeeze(1)  # drop query revisits
    vals = seq.reshape(-1)[flat]
    rows = flat // L
    n = int(seq.max()) + 1 if seq.numel() else 1
    dt = torch.int32 if S * n < 2**31 else torch.int64
    key = rows.to(dt) * n + vals.to(dt)
    skey, perm = torch.sort(key, stable=True)
    first = torch.ones_like(skey, dtype=torch.bool)
    first[1:] = skey[1:] != skey[:-1]
    upos = flat[perm[first]]                                  # flat position of first visit
    upos = torch.sort(upos).values                            # row-major, then visit order
    urow = upos // L
    counts = torch.bincount(urow, minlength=S)
    rank = torch.arange(upos.numel()) - _ptr(counts)[:-1].repeat_interleave(counts)
    keep = upos[rank < cap - 1]
    kept = torch.clamp(counts, max=cap - 1)
    # interleave: the query, then its kept nodes
    ptr = _ptr(kept + 1)
    out = torch.empty(int(ptr[-1]), dtype=seq.dtype)
    out[ptr[:-1]] = head
    slot = torch.ones(out.numel(), dtype=torch.bool)
    slot[ptr[:-1]] = False
    out[slot] = seq.reshape(-1)[keep]
    return ptr, out


def induced_edges(g: BipartiteGraph, node_ptr: torch.Tensor, nodes: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Edges of the subgraph induced by each node set, vectorized over the batch.

    Returns ``(edge_ptr, src, dst)`` with local indices and ``src < dst``.
    """
    S = node_ptr.numel() - 1
    counts = node_ptr[1:] - node_ptr[:-1]
    m = int(counts.max()) if S else 0
    if m < 2:
        e = torch.zeros(0, dtype=torch.int64)
        return torch.zeros(S + 1, dtype=torch.int64), e, e.clone()
    N = g.num_nodes
    dt = torch.int32 if (N + 1) * (N + 1) < 2**31 else torch.int64
    # local pairs (i, j), i < j, ordered by j then i: the first n(n-1)/2 of them are exactly the
    # pairs among the first n nodes, so each subgraph tests only its own pairs (no padding to m)
    jj = torch.arange(1, m).repeat_interleave(torch.arange(1, m))
    ii = torch.arange(jj.numel()) - jj * (jj - 1) // 2
    npairs = counts * (counts - 1) // 2
    srow = torch.arange(S).repeat_interleave(npairs)
    pidx = torch.arange(int(npairs.sum())) - _ptr(npairs)[:-1].repeat_interleave(npairs)
    pi, pj = ii[pidx], jj[pidx]
    base = node_ptr[:-1][srow]
    nd = nodes.to(dt)
    found = has_edges(g, nd[base + pi] * (N + 1) + nd[base + pj])
    srow, pi, pj = srow[found], pi[found], pj[found]
    order = torch.argsort(srow * (m * m) + pi * m + pj)        # row-major within each subgraph
    ecount = torch.bincount(srow, minlength=S)
    return _ptr(ecount), pi[order], pj[order]


BITMAP_MAX_BYTES = 256 << 20  # adjacency bitmaps up to 256 MiB (about 46k nodes)


def _cached(g: BipartiteGraph, name: str, build):
    val = getattr(g, name, None)
    if val is None:
        val = build()
        object.__setattr__(g, name, val)  # frozen dataclass: cache beside the fields
    return val


def _edge_keys(g: BipartiteGraph) -> torch.Tensor:
    """Sorted ``src * (N + 1) + dst`` of all directed edges (node N is a never-connected dummy)."""
    def build():
        src, dst = g.edges()
        return torch.sort(src * (g.num_nodes + 1) + dst).values
    return _cached(g, "_edge_keys_cache", build)


def _adjacency_bits(g: BipartiteGraph) -> torch.Tensor | None:
    """Bit-packed dense adjacency (uint8, bit ``k`` = edge key ``k``), or None when too big."""
    N = g.num_nodes + 1
    if N * N // 8 + 1 > BITMAP_MAX_BYTES:
        return None

    def build():
        keys = _edge_keys(g)
        byte, bit = keys >> 3, keys & 7
        ubyte, inv = torch.unique_consecutive(byte, return_inverse=True)
        val = torch.zeros(ubyte.numel(), dtype=torch.int64).index_add_(0, inv, 1 << bit)
        bits = torch.zeros(N * N // 8 + 1, dtype=torch.uint8)
        bits[ubyte] = val.to(torch.uint8)
        return bits
    return _cached(g, "_adjacency_bits_cache", build)


def has_edges(g: BipartiteGraph, keys: torch.Tensor) -> torch.Tensor:
    """Whether each ``src * (N + 1) + dst`` in ``keys`` is an edge of ``g`` (bitmap lookup, or
    binary search in the sorted edge keys for graphs too big for a bitmap)."""
    bits = _adjacency_bits(g)
    if bits is not None:
        return ((bits[keys >> 3] >> (keys & 7).to(torch.uint8)) & 1).bool()
    ekeys = _edge_keys(g)
    keys = keys.to(torch.int64)
    hit = torch.searchsorted(ekeys, keys).clamp(max=max(ekeys.numel() - 1, 0))
    return ekeys[hit] == keys if ekeys.numel() else torch.zeros_like(keys, dtype=torch.bool)


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
