"""MF + BPR: gradients against a hand computation, transfer initialisation, LightGCN
propagation against dense algebra, training progress, and exact checkpoint resume."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from components.errors import ConfigError
from components.pcrec.bpr import BPRConfig, BPRRun
from components.pcrec.lightgcn import LightGCN
from components.pcrec.metrics import metrics_from_ranks, rank_full
from components.pcrec.mf import MF, init_factors
from components.pcrec.negatives import PositiveSet

torch.set_num_threads(1)


def test_bpr_gradient_matches_hand_computation():
    from components.losses.margin import get_loss

    g = torch.Generator().manual_seed(0)
    P, Q = torch.randn(3, 4, generator=g), torch.randn(5, 4, generator=g)
    m = MF(P, Q)
    u, i, j = torch.tensor([0, 2]), torch.tensor([1, 3]), torch.tensor([4, 0])
    reg = 0.1
    v, r = m(u, i, j)
    v_ = v.detach()
    loss = get_loss("logit_margin")(v).mean() + reg * r
    loss.backward()
    # hand: L = 1/B sum_b [log(1+exp(-v_b)) + reg (|p_u|^2 + |q_i|^2 + |q_j|^2)]
    B = 2
    gP, gQ = torch.zeros_like(P), torch.zeros_like(Q)
    for b in range(B):
        pu, qi, qj = P[u[b]], Q[i[b]], Q[j[b]]
        vb = float(pu @ (qi - qj))
        assert abs(vb - float(v_[b])) < 1e-5
        s = -1.0 / (1.0 + np.exp(vb))            # d/dv log(1+exp(-v)) = -sigmoid(-v)
        gP[u[b]] += (s * (qi - qj) + 2 * reg * pu) / B
        gQ[i[b]] += (s * pu + 2 * reg * qi) / B
        gQ[j[b]] += (-s * pu + 2 * reg * qj) / B
    assert torch.allclose(m.user.weight.grad, gP, atol=1e-6)
    assert torch.allclose(m.item.weight.grad, gQ, atol=1e-6)
    assert float(loss.detach()) == pytest.approx(float(np.mean([np.log1p(np.exp(-float(x))) for x in v_]))
                                        + reg * float(r.detach()), rel=1e-5)


def test_init_factors_copies_masked_pretrained_rows_only():
    g = torch.Generator().manual_seed(1)
    pre = np.arange(12, dtype=np.float32).reshape(4, 3)
    mask = np.array([True, False, True, False])
    out = init_factors(4, 3, 0.01, g, pre, mask, scale=2.0)
    assert torch.equal(out[mask], torch.as_tensor(pre[mask] * 2))
    assert out[~mask].abs().max() < 0.1 and not torch.equal(out[~mask], torch.as_tensor(pre[~mask]))
    # same seed -> same random rows: modes differ only where pre-trained vectors exist
    ref = init_factors(4, 3, 0.01, torch.Generator().manual_seed(1))
    assert torch.equal(out[~mask], ref[~mask])
    with pytest.raises(ConfigError, match="pass dim equal"):
        init_factors(4, 5, 0.01, g, pre)


def test_lightgcn_propagation_equals_dense_normalised_adjacency():
    uid = np.array([0, 0, 1, 2, 2, 2])
    iid = np.array([0, 1, 1, 0, 2, 3])
    m = LightGCN(uid, iid, 4, 4, dim=3, layers=2, generator=torch.Generator().manual_seed(0))
    n = 8
    A = torch.zeros(n, n)
    A[uid, 4 + iid] = 1
    A[4 + iid, uid] = 1
    d = A.sum(1).clamp(min=1)
    N = A / torch.sqrt(d[:, None] * d[None, :])
    E0 = m.ego.detach()
    expect = (E0 + N @ E0 + N @ N @ E0) / 3
    U, V = m.embeddings()
    assert torch.allclose(torch.cat([U, V]), expect, atol=1e-5)
    assert torch.allclose(U[3], E0[3] / 3)  # an isolated user keeps only its ego term


def _world(seed=0, n_u=80, n_i=40, per=12, dim=4):
    rng = np.random.default_rng(seed)
    X, Y = rng.normal(size=(n_u, dim)), rng.normal(size=(n_i, dim))
    us, its = [], []
    for u in range(n_u):
        p = np.exp(2 * X[u] @ Y.T)
        items = rng.choice(n_i, per, replace=False, p=p / p.sum())
        us += [u] * per
        its += list(items)
    us, its = np.array(us), np.array(its)
    valid = np.arange(0, len(us), per)      # first pick of each user held out
    train = np.setdiff1d(np.arange(len(us)), valid)
    return us[train], its[train], us[valid], its[valid], n_u, n_i


def _run(seed=0, epochs=6, **kw):
    tu, ti, vu, vi, n_u, n_i = _world()
    g = torch.Generator().manual_seed(seed)
    model = MF(init_factors(n_u, 8, 0.1, g), init_factors(n_i, 8, 0.1, g))
    pos = PositiveSet(tu, ti, n_i)
    cfg = BPRConfig(epochs=epochs, batch_size=64, lr=0.05, reg=1e-4, eval_every=1, patience=50, **kw)
    run = BPRRun(model, tu, ti, pos, cfg, seed=seed)

    def valid(U, V):
        return float(metrics_from_ranks(rank_full(U, V, vu, vi, pos), ks=(10,))["ndcg@10"].mean())
    return run, valid


def test_training_beats_the_initialisation():
    run, valid = _run(epochs=15)
    U0, V0 = run.core.embeddings()
    before = valid(U0, V0)
    run.fit(valid)
    assert run.best_score > before + 0.05
    assert run.history[-1]["loss"] < run.history[0]["loss"]
    assert run.best_factors is not None and run.epoch == 15


def test_early_stopping_stops_after_patience():
    run, _ = _run(epochs=30)
    scores = iter([0.5, 0.4, 0.3, 0.2] + [0.0] * 30)
    run.cfg = BPRConfig(epochs=30, batch_size=64, lr=0.05, eval_every=1, patience=3)
    run.fit(lambda U, V: next(scores))
    assert run.epoch == 4 and run.best_epoch == 1 and run.best_score == 0.5


def test_checkpoint_resume_reproduces_the_state():
    full, valid = _run(epochs=6)
    full.fit(valid)
    part, _ = _run(epochs=6)
    for _ in range(3):
        part.step(valid)
    state = part.state_dict()
    resumed, _ = _run(epochs=6)                       # fresh process-equivalent: new objects
    resumed.load_state_dict(state)
    resumed.fit(valid)
    for a, b in zip(full.core.state_dict().values(), resumed.core.state_dict().values()):
        assert torch.equal(a, b)
    assert full.best_score == resumed.best_score and full.best_epoch == resumed.best_epoch
    assert [h["loss"] for h in full.history] == [h["loss"] for h in resumed.history]


def test_lr_schedule_anneals_from_lr_to_zero_at_the_epoch_cap():
    cos = BPRConfig(epochs=10, lr=0.1, lr_schedule="cosine")
    lin = BPRConfig(epochs=10, lr=0.1, lr_schedule="linear")
    assert cos.lr_at(0) == lin.lr_at(0) == 0.1
    assert cos.lr_at(5) == pytest.approx(0.05) and lin.lr_at(5) == pytest.approx(0.05)
    assert cos.lr_at(10) == pytest.approx(0.0, abs=1e-12) and lin.lr_at(10) == pytest.approx(0.0)
    assert cos.lr_at(2) > lin.lr_at(2) and cos.lr_at(8) < lin.lr_at(8)
    assert BPRConfig(epochs=10, lr=0.1).lr_at(9) == 0.1          # constant (the default)
    with pytest.raises(ConfigError, match="lr_schedule"):
        BPRConfig(lr_schedule="step")


@pytest.mark.parametrize("bad", [{"epochs": -1}, {"batch_size": 0}, {"eval_every": 0}, {"patience": 0}])
def test_bpr_config_refuses_out_of_range_counts(bad):
    with pytest.raises(ConfigError, match="batch_size >= 1"):
        BPRConfig(**bad)


@pytest.mark.parametrize("optimizer", ["rowsgd", "adam"])
def test_training_uses_the_scheduled_lr_of_each_epoch(optimizer):
    run, valid = _run(epochs=4, lr_schedule="linear", optimizer=optimizer)
    run.fit(valid)
    assert [h["lr"] for h in run.history] == pytest.approx([0.05, 0.0375, 0.025, 0.0125])
    if optimizer == "adam":
        assert run.opt.param_groups[0]["lr"] == pytest.approx(0.0125)
    # an epoch at scheduled lr 0 leaves the factors as they were
    frozen, _ = _run(epochs=1, lr_schedule="linear", optimizer=optimizer)
    P0 = frozen.core.user.weight.detach().clone()
    frozen.epoch = 1                                    # lr_at(1) of a 1-epoch schedule is 0
    frozen.train_epoch()
    assert torch.equal(frozen.core.user.weight, P0)
