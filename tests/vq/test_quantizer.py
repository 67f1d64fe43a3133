"""Vector quantiser: straight-through gradients, losses, EMA step by hand, Laplace smoothing."""
from __future__ import annotations

import math

import pytest
import torch

from components.vq.quantizer import VectorQuantizer, perplexity_from_counts, usage_stats


def _z(rows):
    """(N, D) list -> (1, D, 1, N) quantiser input."""
    return torch.tensor(rows, dtype=torch.float32).t()[None, :, None, :]


def test_nearest_code_and_straight_through_gradient():
    q = VectorQuantizer(num_codes=3, dim=2, ema=False)
    with torch.no_grad():
        q.embedding.copy_(torch.tensor([[0.0, 0.0], [5.0, 5.0], [-4.0, 1.0]]))
    z = _z([[0.4, -0.2], [4.0, 6.0], [-3.0, 0.0]]).requires_grad_(True)
    out = q(z)
    assert out.codes.flatten().tolist() == [0, 1, 2]
    assert torch.allclose(out.quantized, q.embed(out.codes))
    # straight-through: d(sum(w * quantized))/dz == w exactly (identity through the lookup)
    w = torch.randn_like(z)
    (g,) = torch.autograd.grad((out.quantized * w).sum(), z)
    assert torch.allclose(g, w)


def test_codebook_and_commitment_losses_reach_the_right_parameters():
    torch.manual_seed(0)
    q = VectorQuantizer(num_codes=4, dim=3, beta=0.25, ema=False)
    z = torch.randn(2, 3, 2, 2, requires_grad=True)
    out = q(z)
    e = q.embed(out.codes).detach()
    mse = ((z.detach() - e) ** 2).mean()
    assert out.loss.item() == pytest.approx(1.25 * mse.item(), rel=1e-5)
    out.loss.backward()
    # commitment gradient on z: 2 * beta * (z - e) / numel
    assert torch.allclose(z.grad, 2 * 0.25 * (z.detach() - e) / z.numel(), atol=1e-6)
    assert q.embedding.grad is not None and q.embedding.grad.abs().sum() > 0


def test_one_ema_step_matches_hand_computation():
    q = VectorQuantizer(num_codes=2, dim=2, ema=True, decay=0.9, eps=0.0)
    with torch.no_grad():
        q.embedding.copy_(torch.tensor([[0.0, 0.0], [10.0, 10.0]]))
        q.ema_sum.copy_(q.embedding)
        q.ema_count.fill_(1.0)
    q.train()
    out = q(_z([[1.0, 1.0], [3.0, 1.0], [9.0, 9.0]]))
    assert out.codes.flatten().tolist() == [0, 0, 1]
    # counts [2, 1]; sums [[4, 2], [9, 9]]
    # N = 0.9*[1, 1] + 0.1*[2, 1] = [1.1, 1.0]; m0 = 0.1*[4, 2]; m1 = 0.9*[10, 10] + 0.1*[9, 9]
    assert torch.allclose(q.ema_count, torch.tensor([1.1, 1.0]))
    assert torch.allclose(q.embedding, torch.tensor([[0.4 / 1.1, 0.2 / 1.1], [9.9, 9.9]]), atol=1e-6)
    # the decoder sees the codes chosen *before* the update; EMA mode's loss is commitment only
    assert torch.allclose(out.quantized.detach().squeeze().t()[2], torch.tensor([10.0, 10.0]))
    assert q.embedding.requires_grad is False


def test_laplace_smoothing_keeps_unused_codes_finite():
    q = VectorQuantizer(num_codes=3, dim=2, ema=True, decay=0.5, eps=1e-2)
    with torch.no_grad():
        q.embedding.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0], [7.0, -7.0]]))
        q.ema_sum.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]]))
        q.ema_count.copy_(torch.tensor([0.0, 1.0, 0.0]))   # two codes never used
    q.train()
    q(_z([[1.0, 1.0], [1.2, 0.8]]))                         # both go to code 1
    N = torch.tensor([0.0, 0.5 + 0.5 * 2, 0.0])
    n = N.sum()
    smoothed = (N + 1e-2) / (n + 3 * 1e-2) * n
    assert torch.allclose(q.ema_count, N)
    assert torch.isfinite(q.embedding).all()
    expected1 = (0.5 * torch.tensor([1.0, 1.0]) + 0.5 * torch.tensor([2.2, 1.8])) / smoothed[1]
    assert torch.allclose(q.embedding[1], expected1, atol=1e-6)
    assert smoothed[0] > 0 and smoothed.sum().item() == pytest.approx(n.item(), rel=1e-6)


def test_default_ema_state_does_not_blow_up_unused_codes_early():
    torch.manual_seed(0)
    q = VectorQuantizer(num_codes=64, dim=4, ema=True)
    init = q.embedding.clone()
    q.train()
    total = torch.zeros(64)
    for _ in range(3):
        total += q(torch.randn(2, 4, 3, 3)).counts
    unused = total == 0
    assert unused.any()
    assert q.embedding.abs().max() < 10
    assert torch.allclose(q.embedding[unused], init[unused], rtol=1e-3, atol=1e-6)


def test_dead_code_restart_moves_dead_codes_to_data():
    torch.manual_seed(0)
    q = VectorQuantizer(num_codes=8, dim=2, ema=False, restart_threshold=0.5, restart_decay=0.5)
    with torch.no_grad():
        q.embedding.copy_(torch.full((8, 2), 100.0))
        q.embedding[0] = torch.tensor([0.0, 0.0])
    q.train()
    z = torch.randn(1, 2, 4, 4) * 0.1
    for _ in range(3):
        q(z)
    assert (q.embedding.abs() < 1).sum() > 1       # restarted codes now lie among the data
    q_off = VectorQuantizer(num_codes=8, dim=2, ema=False)
    assert q_off.restart_threshold == 0.0


def test_perplexity_and_codes_used():
    assert perplexity_from_counts(torch.tensor([5.0, 5.0, 0.0, 0.0])) == pytest.approx(2.0)
    assert perplexity_from_counts(torch.tensor([1.0, 1.0, 1.0, 1.0])) == pytest.approx(4.0)
    st = usage_stats(torch.tensor([3.0, 0.0, 1.0]))
    p = torch.tensor([0.75, 0.25])
    assert st["codes_used"] == 2
    assert st["perplexity"] == pytest.approx(math.exp(float(-(p * p.log()).sum())))


def test_data_init_puts_codes_on_encoder_outputs():
    torch.manual_seed(0)
    q = VectorQuantizer(num_codes=16, dim=3, ema=True, data_init=True)
    z = torch.randn(2, 3, 4, 4) * 5 + 20
    q.train()
    q(z)
    flat = z.permute(0, 2, 3, 1).reshape(-1, 3)
    # every code is (close to) one of the batch vectors, far from the random init around 0
    d = torch.cdist(q.embedding, flat).min(1).values
    assert (d < 1.0).all() and bool(q.initialised)
