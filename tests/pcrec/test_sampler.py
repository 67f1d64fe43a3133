"""RWR r-ego sampler: hop radius, seed, cap, induced edges, determinism, restart semantics."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import shortest_path

from components.errors import ConfigError, InputError
from components.pcrec.graph import build_bipartite, from_edge_table, shared_user_index
from components.pcrec.sampler import RWRConfig, rwr_traces, sample_subgraphs, sample_views
from components.pcrec.subgraphs import SubgraphBatch, concat


@pytest.fixture(scope="module")
def graph():
    rng = np.random.default_rng(3)
    U, I, n = 80, 50, 500
    uid = rng.integers(0, U, n)
    iid = np.minimum(rng.zipf(1.5, n) - 1, I - 1)  # skewed item popularity
    return build_bipartite(uid, iid, U, I)


@pytest.fixture(scope="module")
def hops(graph):
    n = graph.num_nodes
    adj = sp.csr_matrix((np.ones(graph.num_edges), graph.indices.numpy(), graph.indptr.numpy()),
                        shape=(n, n))
    return shortest_path(adj, unweighted=True, directed=False)


def test_graph_layout_and_tables(graph):
    deg = graph.degrees()
    assert int(deg.sum()) == graph.num_edges
    src, dst = graph.edges()
    # symmetric, bipartite: every edge joins a user and an item
    assert bool(((src < graph.num_users) != (dst < graph.num_users)).all())
    g2 = from_edge_table(dst.numpy(), src.numpy(), graph.num_users, graph.num_items)
    assert torch.equal(g2.indptr, graph.indptr) and torch.equal(g2.indices, graph.indices)
    with pytest.raises(InputError, match="field 'iid'"):
        build_bipartite([0, 1], [0, 9], 2, 3)


def test_shared_user_index():
    import pandas as pd

    users = pd.DataFrame({"domain": ["source", "source", "target", "target"],
                          "user": ["a", "b", "b", "c"], "uid": [0, 1, 0, 1]})
    out = shared_user_index(users)
    assert out.to_dict("records") == [{"user": "b", "source_uid": 1, "target_uid": 0}]


@pytest.mark.parametrize("r", [1, 2, 3])
def test_views_stay_within_r_hops_and_respect_cap(graph, hops, r):
    cfg = RWRConfig(r=r, restart_prob=0.3, max_nodes=12, num_walkers=32, walk_length=16)
    q = torch.arange(graph.num_nodes)
    b = sample_subgraphs(graph, q, torch.zeros_like(q), cfg, seed=7)
    n = b.num_nodes
    assert bool((n <= cfg.max_nodes).all()) and bool((n >= 1).all())
    assert torch.equal(b.nodes[b.node_ptr[:-1]], q)                    # seed first
    gid = b.node_graph_ids()
    d = hops[b.query[gid].numpy(), b.nodes.numpy()]
    assert d.max() <= r
    # distinct nodes per subgraph
    key = gid * graph.num_nodes + b.nodes
    assert key.unique().numel() == key.numel()
    # a long walk fills the cap whenever the r-ego network is big enough
    ego = (hops <= r).sum(1)
    big = torch.from_numpy(ego >= 2 * cfg.max_nodes)
    assert bool((n[big] == cfg.max_nodes).all())
    if r >= 2:
        assert d.max() == r                                             # the r-th hop is reached


def test_induced_edges_match_brute_force(graph):
    cfg = RWRConfig(r=2, max_nodes=10)
    q = torch.arange(0, graph.num_nodes, 7)
    b = sample_subgraphs(graph, q, torch.ones_like(q), cfg, seed=1)
    src, dst = graph.edges()
    edges = set(zip(src.tolist(), dst.tolist()))
    for s in range(len(b)):
        nodes = b.nodes[b.node_ptr[s]:b.node_ptr[s + 1]].tolist()
        want = {(i, j) for i in range(len(nodes)) for j in range(i + 1, len(nodes))
                if (nodes[i], nodes[j]) in edges}
        got = set(zip(b.src[b.edge_ptr[s]:b.edge_ptr[s + 1]].tolist(),
                      b.dst[b.edge_ptr[s]:b.edge_ptr[s + 1]].tolist()))
        assert got == want
    g = b.to_dgl()
    assert g.batch_size == len(b) and g.num_edges() == 2 * int(b.num_edges.sum())


def test_deterministic_per_seed_and_independent_of_batch(graph):
    cfg = RWRConfig(r=2, max_nodes=16)
    q = torch.arange(graph.num_nodes)
    a1, a2 = sample_views(graph, q, cfg, seed=5)
    b1, b2 = sample_views(graph, q, cfg, seed=5)
    assert torch.equal(a1.nodes, b1.nodes) and torch.equal(a2.src, b2.src)
    sub = sample_views(graph, q[[40, 3, 17]], cfg, seed=5)[1]            # other batch, order
    ref = a2.select([40, 3, 17])
    for f in ("query", "node_ptr", "nodes", "edge_ptr", "src", "dst"):
        assert torch.equal(getattr(sub, f), getattr(ref, f)), f
    c1, _ = sample_views(graph, q, cfg, seed=6)
    assert not torch.equal(c1.nodes, a1.nodes)                          # seed matters
    differ = sum(not torch.equal(a1.nodes[a1.node_ptr[i]:a1.node_ptr[i + 1]],
                                 a2.nodes[a2.node_ptr[i]:a2.node_ptr[i + 1]]) for i in range(len(q)))
    assert differ > len(q) // 2                                         # views are independent


def test_restart_semantics(graph, hops):
    q = torch.arange(graph.num_users)                                   # user seeds
    # r=1: a forced restart before every move after the first -> only 1-hop neighbours
    t, j = rwr_traces(graph, q, torch.zeros_like(q), RWRConfig(r=1, restart_prob=0.0,
                      num_walkers=2, walk_length=6), seed=0, return_jumps=True)
    assert hops[q[:, None].numpy(), t[:, 1:].numpy()].max() == 1
    assert bool(j.view(len(q), 2, 6)[:, :, 1:].all()) and not bool(j.view(len(q), 2, 6)[:, :, 0].any())
    mean_hop = []
    for p in (0.1, 0.5, 0.9):
        cfg = RWRConfig(r=3, restart_prob=p, num_walkers=8, walk_length=32)
        t, j = rwr_traces(graph, q, torch.zeros_like(q), cfg, seed=1, return_jumps=True)
        # the walk goes on after a restart (no early end, unlike dgl's restart_prob)
        assert bool((t >= 0).all())
        # restart rate: hop counter k in 1..r after each move, pi_k ~ (1-p)^(k-1); a walker
        # restarts with prob p below r hops and always at r hops
        pi = np.array([(1 - p) ** k for k in range(3)])
        pi /= pi.sum()
        want = p * (1 - pi[-1]) + pi[-1]
        got = j.view(len(q), 8, 32)[:, :, 8:].float().mean().item()     # past the burn-in
        assert abs(got - want) < 0.02, (p, got, want)
        d = hops[q[:, None].numpy(), t[:, 1:].numpy()]
        assert d.max() <= 3
        mean_hop.append(d.mean())
    # visits concentrate near the seed as the restart probability grows
    assert mean_hop[0] > mean_hop[1] > mean_hop[2]


def test_arrow_roundtrip_select_concat(graph):
    cfg = RWRConfig(r=2, max_nodes=8)
    a, b = sample_views(graph, torch.arange(20), cfg, seed=2)
    tab = a.to_arrow(view=np.zeros(20, dtype=np.int8))
    back = SubgraphBatch.from_arrow(tab)
    both = concat([a, b])
    for f in ("query", "node_ptr", "nodes", "edge_ptr", "src", "dst"):
        assert torch.equal(getattr(back, f), getattr(a, f))
        assert torch.equal(getattr(both.slice(20, 40), f), getattr(b, f))
    with pytest.raises(InputError, match="missing columns"):
        SubgraphBatch.from_arrow(tab.drop(["src"]))


def test_bad_config():
    with pytest.raises(ConfigError, match="r must be 1, 2 or 3"):
        RWRConfig(r=4)


def test_bitmap_and_binary_search_edge_lookups_agree(graph, monkeypatch):
    import components.pcrec.sampler as smp
    from components.pcrec.graph import BipartiteGraph

    cfg = RWRConfig(r=3, max_nodes=20)
    q = torch.arange(graph.num_nodes)
    a = sample_subgraphs(graph, q, torch.zeros_like(q), cfg, seed=4)
    monkeypatch.setattr(smp, "BITMAP_MAX_BYTES", 0)           # force the searchsorted path
    fresh = BipartiteGraph(graph.num_users, graph.num_items, graph.indptr, graph.indices)
    b = sample_subgraphs(fresh, q, torch.zeros_like(q), cfg, seed=4)
    assert smp._adjacency_bits(fresh) is None
    assert torch.equal(a.src, b.src) and torch.equal(a.dst, b.dst) and int(a.num_edges.sum()) > 0


def test_walk_budget_grows_with_degree(graph):
    from components.pcrec.sampler import walk_budget

    cfg = RWRConfig(r=2, restart_prob=0.8, max_nodes=200, num_walkers=16, walk_length=8,
                    degree_budget=True, min_steps=4)
    q = torch.arange(graph.num_nodes)
    deg = graph.degrees()
    b = walk_budget(graph, q, cfg)
    order = torch.argsort(deg, stable=True)
    assert bool((b[order][1:] >= b[order][:-1]).all())              # monotone in degree
    assert int(b.min()) >= 4 and int(b.max()) <= 16 * 8
    hi, lo = int(torch.argmax(deg)), int(torch.argmin(torch.where(deg > 0, deg, 10**9)))
    assert b[hi] > b[lo]
    expect = np.ceil(deg[hi].item() ** 0.75 * np.e / (np.e - 1) / 0.8)
    assert int(b[hi]) == min(max(4, int(expect)), 128)
    # the walk stops at its budget: steps past it revisit the query only (dropped as duplicates)
    t = rwr_traces(graph, q, torch.zeros_like(q), cfg, seed=0)
    for node in (hi, lo):
        tail = t[node, 1 + int(b[node]):]
        assert bool((tail == node).all())
    # so views of high-degree nodes are larger on average; the fixed budget walks every step
    v = sample_subgraphs(graph, q, torch.zeros_like(q), cfg, seed=0)
    big = deg >= deg.float().quantile(0.9)
    small = (deg > 0) & (deg <= deg.float().median())
    assert v.num_nodes[big].float().mean() > v.num_nodes[small].float().mean()
    fixed = RWRConfig(r=2, restart_prob=0.8, max_nodes=200, num_walkers=16, walk_length=8)
    assert bool((walk_budget(graph, q, fixed) == 128).all())


def test_queries_drawn_by_degree_power(graph):
    from components.pcrec.sampler import draw_queries

    deg = graph.degrees().numpy()
    hits = np.zeros(graph.num_nodes)
    for e in range(60):
        q = draw_queries(graph, 20, seed=0, epoch=e, degree_power=0.75)
        assert len(np.unique(q)) == 20 and (np.diff(q) > 0).all()
        hits[q] += 1
    top = deg >= np.quantile(deg, 0.9)
    low = deg <= np.quantile(deg, 0.3)
    assert hits[top].mean() > 2 * hits[low].mean()
    assert np.array_equal(draw_queries(graph, 20, 0, 3, 0.75), draw_queries(graph, 20, 0, 3, 0.75))
    assert len(draw_queries(graph, None, 0, 0, 0.75)) == graph.num_nodes
