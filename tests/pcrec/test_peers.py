"""Peers (components/pcrec/peers.py) against brute force on tiny matrices."""
from __future__ import annotations

import numpy as np
import pytest

from components.pcrec import peers
from components.pcrec.metrics import rank_full


def _X(seed, n_users=12, n_items=7, p=0.35):
    rng = np.random.default_rng(seed)
    D = (rng.random((n_users, n_items)) < p)
    D[0, :] = False
    D[0, 1] = True                                   # one user with a single item
    u, i = np.nonzero(D)
    return peers.interaction_matrix(u, i, n_users, n_items), D.astype(np.float64)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("lam", [0.5, 5.0])
def test_ease_matches_constrained_least_squares(seed, lam):
    X, D = _X(seed)
    B = peers.ease(X, lam)
    n = D.shape[1]
    for j in range(n):   # column j: ridge regression of x_j on the other columns
        o = [i for i in range(n) if i != j]
        A = D[:, o]
        b = np.linalg.solve(A.T @ A + lam * np.eye(n - 1), A.T @ D[:, j])
        np.testing.assert_allclose(B[o, j], b, rtol=1e-4, atol=1e-5)
        assert B[j, j] == 0
    U, V = peers.item_item_factors(X, B)
    np.testing.assert_allclose(U @ V.T, D @ B, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 3])
@pytest.mark.parametrize("k,shrink", [(2, 0.0), (3, 2.0), (10, 0.5)])
def test_itemknn_matches_brute_force(seed, k, shrink):
    X, D = _X(seed)
    n = D.shape[1]
    W = peers.itemknn(X, k, shrink, chunk=3).toarray()    # chunks smaller than the catalogue
    ref = np.zeros((n, n))
    for j in range(n):
        sims = []
        for i in range(n):
            if i == j:
                continue
            num = float(D[:, i] @ D[:, j])
            den = np.sqrt(D[:, i].sum()) * np.sqrt(D[:, j].sum()) + shrink + 1e-12
            sims.append((num / den, i))
        sims.sort(key=lambda t: (-t[0], t[1]))
        for s, i in sims[:k]:
            if s > 0:
                ref[i, j] = s
    np.testing.assert_allclose(W, ref, rtol=1e-5, atol=1e-7)
    U, V = peers.item_item_factors(X, W)
    brute = np.array([[sum(ref[i, j] for i in np.flatnonzero(D[u])) for j in range(n)]
                      for u in range(D.shape[0])])
    np.testing.assert_allclose(U @ V.T, brute, rtol=1e-5, atol=1e-6)


def test_popularity_ranks_by_training_count():
    u = np.array([0, 1, 2, 3, 0, 1, 2, 0, 1, 4])
    i = np.array([2, 2, 2, 2, 0, 0, 0, 3, 3, 1])     # counts: item2 4, item0 3, item3 2, item1 1, item4 0
    X = peers.interaction_matrix(u, i, 6, 5)
    U, V = peers.popularity(X)
    np.testing.assert_array_equal(V.ravel(), [3, 1, 4, 2, 0])
    users = np.full(5, 5)                            # user 5 has no training items: pure ranking
    ranks = rank_full(U, V, users, np.arange(5))
    np.testing.assert_array_equal(ranks, [1, 3, 0, 2, 4])


def test_als_shapes_and_seed():
    X, _ = _X(0, n_users=30, n_items=10, p=0.4)
    U, V = peers.als(X, factors=4, regularization=0.1, iterations=3, seed=1, threads=1)
    assert U.shape == (30, 4) and V.shape == (10, 4) and np.isfinite(U).all()
    U2, _ = peers.als(X, factors=4, regularization=0.1, iterations=3, seed=1, threads=1)
    np.testing.assert_allclose(U, U2, rtol=1e-5, atol=1e-6)


def test_emcdr_maps_only_cold_shared_users_and_recovers_a_linear_map():
    rng = np.random.default_rng(0)
    Us = rng.normal(size=(30, 4)).astype(np.float32)
    M = rng.normal(size=(4, 3))
    Ut = (Us[:20] @ M + 0.5).astype(np.float32)          # target users 0..19 = source users 0..19
    Ut = np.vstack([Ut, rng.normal(size=(5, 3)).astype(np.float32)])   # 20..24: target-only
    has_t = np.ones(25, bool)
    has_t[[3, 7, 21]] = False                            # 3, 7 cold shared; 21 cold, not shared
    U = peers.emcdr_users(Us, Ut, has_t, np.arange(20), np.arange(20), map_reg=0.0)
    np.testing.assert_allclose(U[[3, 7]], Us[[3, 7]] @ M + 0.5, rtol=1e-4, atol=1e-4)
    keep = np.setdiff1d(np.arange(25), [3, 7])
    np.testing.assert_array_equal(U[keep], Ut[keep])
    with pytest.raises(Exception, match="Xs"):
        peers.linear_map(Us[:3], Ut[:2], 1.0)
