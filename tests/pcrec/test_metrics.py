"""Ranking metrics, top-K and negative sampling against brute force on tiny cases."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from components.errors import InputError
from components.pcrec.metrics import metrics_from_ranks, rank_full, rank_sampled
from components.pcrec.negatives import PositiveSet, positive_mask, sample_candidates, sample_negatives
from components.pcrec.topk import top_k


def _case(seed, n_u=7, n_i=11, d=3, n_pos=20):
    rng = np.random.default_rng(seed)
    U = rng.normal(size=(n_u, d)).astype(np.float32)
    V = rng.normal(size=(n_i, d)).astype(np.float32)
    pu, pi = rng.integers(0, n_u, n_pos), rng.integers(0, n_i, n_pos)
    return rng, U, V, PositiveSet(pu, pi, n_i), pu, pi


@pytest.mark.parametrize("seed", range(5))
def test_rank_full_matches_brute_force(seed):
    rng, U, V, excl, pu, pi = _case(seed)
    users = np.arange(len(U))
    targets = rng.integers(0, len(V), len(U))
    got = rank_full(U, V, users, targets, excl, chunk=3)
    for u, t, r in zip(users, targets, got):
        s = U[u] @ V.T
        seen = set(pi[pu == u]) - {t}
        better = [j for j in range(len(V)) if j != t and j not in seen and s[j] >= s[t]]
        assert r == len(better)


def test_ties_are_pessimistic_and_exclusion_never_drops_the_target():
    U = np.ones((1, 2), np.float32)
    V = np.zeros((5, 2), np.float32)                 # every item scores 0: a tie everywhere
    excl = PositiveSet(np.array([0, 0]), np.array([1, 2]), 5)
    # target 2 is itself a positive but still ranked; item 1 is excluded; 0, 3, 4 tie with it
    assert rank_full(U, V, [0], [2], excl)[0] == 3
    assert rank_sampled(U, V, [0], [2], np.array([[0, 3, 4]]))[0] == 3


def test_rank_sampled_matches_brute_force():
    rng, U, V, excl, *_ = _case(7)
    users = np.arange(len(U))
    targets = rng.integers(0, len(V), len(U))
    cands = rng.integers(0, len(V), (len(U), 4))
    got = rank_sampled(U, V, users, targets, cands)
    for k, u in enumerate(users):
        s = U[u] @ V.T
        assert got[k] == sum(s[c] >= s[targets[k]] for c in cands[k])


def test_metric_values_from_ranks():
    m = metrics_from_ranks(np.array([0, 4, 9, 19, 30]), ks=(5, 10, 20))
    assert m["hr@5"].tolist() == [1, 1, 0, 0, 0]
    assert m["hr@10"].tolist() == [1, 1, 1, 0, 0]
    assert m["hr@20"].tolist() == [1, 1, 1, 1, 0]
    assert m["ndcg@10"].tolist() == pytest.approx([1, 1 / math.log2(6), 1 / math.log2(11), 0, 0])
    assert m["mrr"].tolist() == pytest.approx([1, 1 / 5, 1 / 10, 1 / 20, 1 / 31])


def test_top_k_excludes_seen_and_matches_brute_force():
    rng, U, V, excl, pu, pi = _case(3)
    items, scores, valid = top_k(U, V, np.arange(len(U)), 4, excl, chunk=2)
    for u in range(len(U)):
        s = U[u] @ V.T
        seen = set(pi[pu == u])
        expect = sorted((j for j in range(len(V)) if j not in seen), key=lambda j: (-s[j], j))[:4]
        assert items[u][valid[u]].tolist() == expect
        assert not seen & set(items[u].tolist())
        assert np.allclose(scores[u][valid[u]], s[expect], atol=1e-5)
    # a user who has seen almost everything gets a shorter list, padded with -1
    full = PositiveSet(np.zeros(10, int), np.arange(10), 11)
    it, _, ok = top_k(U, V, [0], 3, full)
    assert it[0].tolist() == [10, -1, -1] and ok[0].tolist() == [True, False, False]


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 30))
def test_negatives_never_hit_positives(seed, n_items):
    rng = np.random.default_rng(seed)
    n_users = 6
    u = rng.integers(0, n_users, 60)
    i = rng.integers(0, n_items, 60)
    pos = PositiveSet(u, i, n_items)
    users = np.arange(n_users).repeat(20)
    free = np.array([n_items - len(pos.items_of(k)) for k in range(n_users)])
    users = users[free[users] > 0]
    neg = sample_negatives(users, pos, rng)
    assert not pos.contains(users, neg).any()
    assert ((neg >= 0) & (neg < n_items)).all()


def test_negatives_respect_item_ranges_and_report_impossible_users():
    rng = np.random.default_rng(0)
    pos = PositiveSet(np.array([0, 0, 1]), np.array([5, 6, 1]), 10)
    users = np.array([0] * 50 + [1] * 50)
    lo = np.where(users == 0, 5, 0)
    hi = np.where(users == 0, 8, 5)
    neg = sample_negatives(users, pos, rng, lo=lo, hi=hi)
    assert set(neg[users == 0]) == {7}
    assert set(neg[users == 1]) <= {0, 2, 3, 4}
    with pytest.raises(InputError, match="no negative"):
        sample_negatives(np.array([0]), pos, rng, lo=5, hi=7)


def test_sampled_candidates_are_distinct_negatives():
    rng, U, V, excl, pu, pi = _case(1, n_i=30)
    c = sample_candidates(np.arange(len(U)), excl, 8, rng, chunk=3)
    assert c.shape == (len(U), 8)
    assert all(len(set(row)) == 8 for row in c)
    assert not excl.contains(np.repeat(np.arange(len(U)), 8), c.ravel()).any()
    with pytest.raises(InputError, match="29 sampled negatives requested"):   # names n
        sample_candidates(np.arange(len(U)), excl, 29, rng)


def test_positive_mask_matches_membership():
    _, _, _, excl, pu, pi = _case(2)
    m = positive_mask(np.arange(7), excl)
    for u in range(7):
        assert set(np.flatnonzero(m[u])) == set(pi[pu == u])


# ---------------------------------------------------------------- non-finite scores (issue 12)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_target_score_gets_the_worst_rank(bad):
    U = np.array([[1.0, 0.0]], np.float32)
    V = np.array([[0.5, 0], [0.2, 0], [0.1, 0], [0.0, 0], [bad, 0]], np.float32)  # target 4 is bad
    excl = PositiveSet(np.array([0]), np.array([1]), 5)                # item 1 is not a candidate
    assert rank_full(U, V, [0], [4], excl)[0] == 3                     # all of 0, 2, 3 rank above
    assert rank_sampled(U, V, [0], [4], np.array([[0, 2, 3]]))[0] == 3
    m = metrics_from_ranks(rank_full(U, V, [0], [4], excl), ks=(1, 10))
    assert m["ndcg@1"][0] == 0.0                                       # never the old perfect 1.0


def test_non_finite_scores_of_other_items_never_help_the_target():
    U = np.array([[1.0, 0.0]], np.float32)
    V = np.array([[np.nan, 0], [np.inf, 0], [-np.inf, 0], [0.1, 0], [0.5, 0]], np.float32)
    # target 4 (score 0.5) beats item 3 only; the NaN / inf items count as ranked above it
    assert rank_full(U, V, [0], [4])[0] == 3
    assert rank_sampled(U, V, [0], [4], np.array([[0, 1, 2, 3]]))[0] == 3
    # an excluded non-finite item is no competitor at all
    excl = PositiveSet(np.array([0, 0]), np.array([0, 1]), 5)
    assert rank_full(U, V, [0], [4], excl)[0] == 1


def test_all_nan_scores_rank_last_for_every_user():
    U = np.full((3, 2), np.nan, np.float32)
    V = np.ones((6, 2), np.float32)
    users, targets = np.arange(3), np.array([0, 3, 5])
    assert rank_full(U, V, users, targets, chunk=2).tolist() == [5, 5, 5]
    cands = np.array([[1, 2, 3], [0, 1, 2], [0, 1, 2]])
    assert rank_sampled(U, V, users, targets, cands).tolist() == [3, 3, 3]
    m = metrics_from_ranks(rank_full(U, V, users, targets))
    assert m["ndcg@5"].tolist() == [0.0, 0.0, 0.0] and m["hr@5"].sum() == 0  # 5 = worst of 6
