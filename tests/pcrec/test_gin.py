"""GIN encoder: dgl.nn.GINConv path == torch-sparse path; GCC features."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from components.errors import ConfigError
from components.pcrec.encode import embed_nodes
from components.pcrec.features import positional_features, subgraph_features
from components.pcrec.gin import GINEncoder
from components.pcrec.graph import build_bipartite
from components.pcrec.sampler import RWRConfig, sample_subgraphs

POS = 8


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    g = build_bipartite(rng.integers(0, 40, 300), rng.integers(0, 30, 300), 40, 30)
    q = torch.arange(g.num_nodes)
    batch = sample_subgraphs(g, q, torch.zeros_like(q), RWRConfig(r=2, max_nodes=12), seed=0)
    return g, batch


@pytest.mark.parametrize("train", [True, False])
def test_dgl_and_sparse_paths_agree(setup, train):
    _, batch = setup
    f = subgraph_features(batch, POS, sign_flip=True, generator=torch.Generator().manual_seed(0))
    enc = GINEncoder(POS + 1, hidden=16, out_dim=12, num_layers=3, degree_dim=4, max_degree=8)
    enc.train(train)
    g = batch.to_dgl()
    assert enc.resolve_path(g, "cpu") == "dgl"
    assert enc.resolve_path(g, "cuda") == "sparse"        # DGL (CPU build) cannot hold it there
    outs, grads = {}, {}
    for path in ("dgl", "sparse"):
        enc.path = path
        enc.zero_grad()
        out = enc(g, f.x, f.degree)
        (out * torch.arange(12.0)).sum().backward()
        outs[path] = out.detach()
        grads[path] = [p.grad.clone() for p in enc.parameters() if p.grad is not None]
    assert outs["dgl"].shape == (len(batch), 12)
    torch.testing.assert_close(outs["dgl"], outs["sparse"], rtol=1e-5, atol=1e-6)
    assert len(grads["dgl"]) == len(grads["sparse"]) > 0
    for a, b in zip(grads["dgl"], grads["sparse"]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(outs["dgl"].norm(dim=1), torch.ones(len(batch)))


def test_bad_path():
    with pytest.raises(ConfigError, match="auto\\|dgl\\|sparse"):
        GINEncoder(3, path="cuda")


def test_features(setup):
    _, batch = setup
    f = subgraph_features(batch, POS)
    assert f.x.shape == (int(batch.node_ptr[-1]), POS + 1)
    seed_flag = f.x[:, -1]
    assert torch.equal(seed_flag.nonzero().squeeze(1), batch.seed_positions())
    # degree = in-subgraph degree
    s = 3
    lo, hi = int(batch.node_ptr[s]), int(batch.node_ptr[s + 1])
    deg = torch.zeros(hi - lo, dtype=torch.long)
    for a, b in zip(batch.src[batch.edge_ptr[s]:batch.edge_ptr[s + 1]].tolist(),
                    batch.dst[batch.edge_ptr[s]:batch.edge_ptr[s + 1]].tolist()):
        deg[a] += 1
        deg[b] += 1
    assert torch.equal(f.degree[lo:hi], deg)
    # sign flips change only signs; rows are unit vectors
    flipped = positional_features(batch, POS, sign_flip=True, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(flipped.abs(), f.x[:, :POS].abs())
    assert not torch.equal(flipped, f.x[:, :POS])
    torch.testing.assert_close(f.x[:, :POS].norm(dim=1), torch.ones(f.x.shape[0]), atol=1e-5, rtol=0)


def test_positional_features_are_eigenvectors():
    # a 5-node path graph, alone and padded into a batch with a bigger graph
    from components.pcrec.subgraphs import SubgraphBatch, concat

    def path(n):
        return SubgraphBatch(torch.tensor([0]), torch.tensor([0, n]), torch.arange(n),
                             torch.tensor([0, n - 1]), torch.arange(n - 1), torch.arange(1, n))
    alone = positional_features(path(5), 3)
    both = positional_features(concat([path(5), path(9)]), 3)[:5]
    torch.testing.assert_close(both.abs(), alone.abs(), atol=1e-5, rtol=0)   # padding is inert
    A = torch.zeros(5, 5, dtype=torch.float64)
    i = torch.arange(4)
    A[i, i + 1] = A[i + 1, i] = 1
    d = A.sum(1).rsqrt()
    lam, vec = torch.linalg.eigh(d[:, None] * A * d[None, :])
    ref = torch.nn.functional.normalize(vec.flip(-1)[:, :3], dim=1).float()
    torch.testing.assert_close(alone.abs(), ref.abs(), atol=1e-5, rtol=0)


def test_embed_nodes_deterministic(setup):
    g, _ = setup
    torch.manual_seed(1)
    enc = GINEncoder(POS + 1, hidden=16, out_dim=12, num_layers=2)
    cfg = RWRConfig(r=2, max_nodes=12)
    a = embed_nodes(enc, g, [0, 5, 45], cfg, POS, batch_size=2)
    b = embed_nodes(enc, g, [45, 0], cfg, POS, batch_size=8)
    assert a.shape == (3, 12) and enc.training
    torch.testing.assert_close(a[[2, 0]], b, rtol=1e-5, atol=1e-6)


def test_graph_degree_input_is_the_same_in_every_view(setup):
    """degree_input="graph": a node's degree feature is its log-binned whole-graph degree, so two
    views of one node agree on it (the in-view degree does not: the walk cuts it)."""
    from components.pcrec.features import log_degree_bin

    g, _ = setup
    q = torch.arange(g.num_nodes)
    cfg = RWRConfig(r=2, max_nodes=6, num_walkers=2, walk_length=3)
    views = [sample_subgraphs(g, q, torch.full_like(q, v), cfg, seed=0) for v in (0, 1)]
    seeds = [subgraph_features(b, POS, graph_degree=g.degrees()).degree[b.seed_positions()] for b in views]
    assert torch.equal(seeds[0], seeds[1])
    assert torch.equal(seeds[0], log_degree_bin(g.degrees()))
    sub = [subgraph_features(b, POS).degree[b.seed_positions()] for b in views]
    assert not torch.equal(sub[0], sub[1])                 # the GCC in-view degree differs
    assert log_degree_bin(torch.tensor([0, 1, 3, 7, 255])).tolist() == [0, 8, 16, 24, 64]
    with pytest.raises(ConfigError, match="graph_degree"):
        subgraph_features(views[0], POS, graph_degree=g.degrees()[:3])
    with pytest.raises(ConfigError, match="degree_input"):
        embed_nodes(GINEncoder(POS + 1), g, [0], cfg, POS, degree_input="whole")
