"""MoCo: InfoNCE value, queue enqueue/dequeue, momentum update, one training step."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from components.errors import ConfigError
from components.pcrec.features import subgraph_features
from components.pcrec.gin import GINEncoder
from components.pcrec.graph import build_bipartite
from components.pcrec.moco import MoCo, info_nce, safe_queue_size
from components.pcrec.sampler import RWRConfig, sample_views


def test_info_nce_hand_computed():
    q = torch.tensor([[1.0, 0.0], [0.6, 0.8]])
    k = torch.tensor([[0.8, 0.6], [0.0, 1.0]])
    neg = torch.tensor([[0.0, 1.0], [-1.0, 0.0], [0.6, -0.8]])
    tau = 0.5
    loss, logits = info_nce(q, k, neg, tau)
    # row 0: pos 0.8, negs 0, -1, 0.6 ; row 1: pos 0.8, negs 0.8, -0.6, -0.28
    rows = [(0.8, [0.0, -1.0, 0.6]), (0.8, [0.8, -0.6, -0.28])]
    want = 0.0
    for pos, negs in rows:
        z = [pos / tau] + [n / tau for n in negs]
        want += -(z[0] - math.log(sum(math.exp(v) for v in z)))
    want /= 2
    assert loss.item() == pytest.approx(want, rel=1e-6)
    assert logits.shape == (2, 4) and logits[1, 1].item() == pytest.approx(0.8 / tau)


class _Lin(nn.Module):
    def __init__(self):
        super().__init__()
        self.w = nn.Linear(3, 2)

    def forward(self, x):
        return nn.functional.normalize(self.w(x), dim=1)


def test_queue_enqueue_dequeue_wraps_and_drops_oldest():
    m = MoCo(_Lin(), dim=2, queue_size=5)
    a = torch.arange(6.0).view(3, 2)
    m.enqueue(a)
    assert int(m.queue_ptr) == 3 and torch.equal(m.queue[:3], a)
    b = 10 + torch.arange(8.0).view(4, 2)
    m.enqueue(b)                                    # slots 3, 4, 0, 1 (wrap-around)
    assert int(m.queue_ptr) == 2
    assert torch.equal(m.queue[3:5], b[:2]) and torch.equal(m.queue[0:2], b[2:])
    assert torch.equal(m.queue[2], a[2])            # the only key of `a` still queued
    m.enqueue(100 + torch.arange(14.0).view(7, 2))  # more than K: keeps the newest K
    assert torch.equal(m.queue[(torch.arange(5) + 2) % 5], 100 + torch.arange(4.0, 14.0).view(5, 2))


def test_momentum_update():
    torch.manual_seed(0)
    m = MoCo(_Lin(), dim=2, queue_size=4, momentum=0.9)
    assert torch.equal(m.encoder_k.w.weight, m.encoder_q.w.weight)
    assert not m.encoder_k.w.weight.requires_grad
    with torch.no_grad():
        m.encoder_q.w.weight.add_(1.0)
    k0, q0 = m.encoder_k.w.weight.clone(), m.encoder_q.w.weight.clone()
    m.momentum_update()
    torch.testing.assert_close(m.encoder_k.w.weight, 0.9 * k0 + 0.1 * q0)
    m.momentum = 0.0
    m.momentum_update()
    assert torch.equal(m.encoder_k.w.weight, m.encoder_q.w.weight)
    with pytest.raises(ConfigError):
        MoCo(_Lin(), dim=2, temperature=0.0)


def test_moco_step_on_subgraphs():
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    g = build_bipartite(rng.integers(0, 30, 200), rng.integers(0, 20, 200), 30, 20)
    v1, v2 = sample_views(g, torch.arange(16), RWRConfig(max_nodes=10), seed=0)
    f1, f2 = subgraph_features(v1, 4), subgraph_features(v2, 4)
    m = MoCo(GINEncoder(5, hidden=8, out_dim=6, num_layers=2), dim=6, queue_size=40, momentum=0.99)
    before = m.queue.clone()
    k_before = [p.clone() for p in m.encoder_k.parameters()]
    loss = m((v1.to_dgl(), f1.x, f1.degree), (v2.to_dgl(), f2.x, f2.degree))
    loss.backward()
    assert torch.isfinite(loss) and loss.item() > 0
    assert all(p.grad is None for p in m.encoder_k.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in m.encoder_q.parameters())
    assert int(m.queue_ptr) == 16
    torch.testing.assert_close(m.queue[:16].norm(dim=1), torch.ones(16))   # new keys are unit
    assert torch.equal(m.queue[16:], before[16:])
    for a, b in zip(k_before, m.encoder_k.parameters()):   # q == k before the step: k unchanged
        torch.testing.assert_close(a, b)


def test_queue_size_stays_below_the_node_count():
    assert safe_queue_size(16384, 6096) == 6095      # the ML-1M source graph
    assert safe_queue_size(64, 1000) == 64 and safe_queue_size(8, 1) == 1


def test_own_node_keys_in_the_queue_are_never_negatives():
    torch.manual_seed(0)
    m = MoCo(_Lin(), dim=2, queue_size=6, temperature=0.5)
    old = nn.functional.normalize(torch.randn(6, 2), dim=1)
    m.enqueue(old, torch.tensor([0, 1, 2, 3, 2, 5]))    # node 2 has two stale keys queued
    xq, xk = torch.randn(2, 3), torch.randn(2, 3)
    ids = torch.tensor([2, 7])
    queue, qids = m.queue.clone(), m.queue_ids.clone()
    loss = m((xq,), (xk,), ids)
    # reference: the same step with each query's own keys removed from its negatives
    q = m.encoder_q(xq)
    with torch.no_grad():
        k = m.encoder_k(xk)
    want = torch.stack([info_nce(q[b:b + 1], k[b:b + 1], queue[qids != ids[b]], 0.5)[0]
                        for b in range(2)]).mean()
    assert loss.item() == pytest.approx(want.item(), rel=1e-5)
    assert (qids == 2).sum() == 2 and loss.item() != pytest.approx(
        info_nce(q, k, queue, 0.5)[0].item(), rel=1e-5)  # the mask changed the loss
    assert m.queue_ids.tolist()[:2] == [2, 7]           # keys enqueued with their node ids


def test_queue_never_serves_a_key_of_the_querys_node():
    """A long run with K larger than the node count: at every step, no query sees a key of its
    own node among the negatives that count (finite logits)."""
    torch.manual_seed(1)
    m = MoCo(_Lin(), dim=2, queue_size=12, temperature=0.5)
    seen = []
    import components.pcrec.moco as moco_mod
    orig = moco_mod.info_nce

    def spy(q, k, negatives, temperature, exclude=None):
        seen.append((m.queue_ids.clone(), exclude.clone()))
        return orig(q, k, negatives, temperature, exclude)

    moco_mod.info_nce = spy
    try:
        g = torch.Generator().manual_seed(0)
        for _ in range(10):
            ids = torch.randperm(5, generator=g)[:3]       # 5 nodes, K = 12 > 5
            m((torch.randn(3, 3),), (torch.randn(3, 3),), ids)
            qids, excl = seen[-1]
            used = ~excl
            assert not ((qids[None, :] == ids[:, None]) & used).any()
    finally:
        moco_mod.info_nce = orig
