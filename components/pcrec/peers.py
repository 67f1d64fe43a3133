"""Strong simple peers of the PCRec models: popularity, ItemKNN, EASE and ALS (pure numpy/scipy).

Every model is returned as a **factor pair** ``(U, V)`` whose dot product ``U @ V.T`` is the
user x item score matrix, so the pipeline's factor tables, evaluation (both protocols) and
top-K code serve them unchanged:

* popularity: ``U = 1`` (one column), ``V = item training counts``;
* item-item models (ItemKNN, EASE): ``U = X`` (the binary user x item training matrix, dense)
  and ``V = W.T`` (``W``: item x item weights), so ``U @ V.T = X @ W``;
* ALS: the learned user and item factors (``implicit``'s CPU ALS).

Definitions:

* **ItemKNN** (Sarwar et al. 2001; shrunk cosine as in RecBole / Dacrema et al. 2019):
  ``sim(i, j) = <x_i, x_j> / (||x_i|| ||x_j|| + shrink)`` over the item columns of ``X``,
  ``sim(j, j) = 0``; ``W[i, j] = sim(i, j)`` when ``i`` is one of the ``k`` most similar items
  of ``j`` (ties: lower item id first), else 0. ``score(u, j) = sum_{i in I_u} W[i, j]``.
* **EASE** (Steck 2019): ``P = (X.T X + lam I)^-1``, ``B = I - P diag(1 / diag(P))``, i.e.
  ``B[i, j] = -P[i, j] / P[j, j]`` and ``B[j, j] = 0`` — the closed form of
  ``min_B ||X - X B||^2 + lam ||B||^2`` subject to ``diag(B) = 0``.

Public API: :func:`interaction_matrix`, :func:`popularity`, :func:`itemknn`, :func:`ease`,
:func:`item_item_factors`, :func:`als`, :func:`linear_map` / :func:`emcdr_users` (EMCDR-style
cross-domain baseline: ALS per domain, ridge map of user factors learned on shared users).
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from components.errors import ConfigError


def interaction_matrix(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> sp.csr_matrix:
    """Binary ``(n_users, n_items)`` CSR matrix (float32) of the (user, item) pairs (repeats count once)."""
    users = np.asarray(users, dtype=np.int64)
    items = np.asarray(items, dtype=np.int64)
    X = sp.csr_matrix((np.ones(len(users), np.float32), (users, items)), shape=(n_users, n_items))
    X.sum_duplicates()
    X.data[:] = 1.0
    return X


def popularity(X: sp.spmatrix) -> tuple[np.ndarray, np.ndarray]:
    """``(U, V)`` with ``U @ V.T = the training count of each item`` for every user."""
    counts = np.asarray(X.sum(axis=0), dtype=np.float32).reshape(-1, 1)
    return np.ones((X.shape[0], 1), np.float32), counts


def itemknn(X: sp.spmatrix, k: int, shrink: float = 0.0, chunk: int = 1024) -> sp.csr_matrix:
    """ItemKNN weights ``W`` (``n_items x n_items`` CSR, float32; module docstring).

    The item-item Gram matrix is built ``chunk`` target columns at a time, so memory is
    ``n_items * chunk`` floats, not ``n_items^2``.
    """
    if k < 1 or shrink < 0:
        raise ConfigError(f"itemknn: need k >= 1 and shrink >= 0 (got k={k}, shrink={shrink})")
    X = sp.csc_matrix(X, dtype=np.float64)
    n = X.shape[1]
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=0)).ravel())
    k = min(k, max(n - 1, 0))
    rows, cols, vals = [], [], []
    XT = X.T.tocsr()
    for s in range(0, n, chunk):
        e = min(s + chunk, n)
        G = np.asarray((XT @ X[:, s:e]).todense())                     # (n, e - s)
        sim = G / (norms[:, None] * norms[None, s:e] + shrink + 1e-12)
        sim[np.arange(s, e), np.arange(e - s)] = 0.0                   # no self-similarity
        if k == 0:
            continue
        # k largest per column; ties broken by the lower item id (stable sort on -sim)
        order = np.argsort(-sim, axis=0, kind="stable")[:k]            # (k, e - s)
        top = np.take_along_axis(sim, order, axis=0)
        keep = top > 0
        rows.append(order[keep])
        cols.append(np.broadcast_to(np.arange(s, e), order.shape)[keep])
        vals.append(top[keep])
    if not rows:
        return sp.csr_matrix((n, n), dtype=np.float32)
    W = sp.csr_matrix((np.concatenate(vals).astype(np.float32),
                       (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
    return W


def ease(X: sp.spmatrix, lam: float) -> np.ndarray:
    """EASE item-item weights ``B`` (dense ``n_items x n_items``, float32; module docstring)."""
    if lam <= 0:
        raise ConfigError(f"ease: need lambda > 0 (got {lam})")
    G = np.asarray((X.T @ X).todense(), dtype=np.float64)
    G[np.diag_indices_from(G)] += lam
    P = np.linalg.inv(G)
    B = -P / np.diag(P)[None, :]
    B[np.diag_indices_from(B)] = 0.0
    return B.astype(np.float32)


def item_item_factors(X: sp.spmatrix, W, cols: slice | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(U, V) = (X dense, W[:, cols].T)``: scores ``X @ W`` of the items in ``cols`` (all by default)."""
    W = W[:, cols] if cols is not None else W
    W = W.toarray() if sp.issparse(W) else np.asarray(W)
    return np.asarray(X.todense(), dtype=np.float32), np.ascontiguousarray(W.T, dtype=np.float32)


def als(X: sp.spmatrix, factors: int, regularization: float, iterations: int, alpha: float = 1.0,
        seed: int = 0, threads: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Implicit-feedback ALS (Hu, Koren & Volinsky 2008) with ``implicit``'s CPU solver.

    ``threads`` caps both implicit's own threads and the BLAS pool during the fit (implicit
    warns, and slows down, when BLAS runs several threads inside its loop).
    Returns ``(user_factors, item_factors)`` as float32 arrays.
    """
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    threads = max(int(threads), 1)
    with threadpool_limits(limits=1, user_api="blas"):   # implicit checks the BLAS pool on init
        model = AlternatingLeastSquares(factors=int(factors), regularization=float(regularization),
                                        alpha=float(alpha), iterations=int(iterations),
                                        num_threads=threads, random_state=int(seed))
        model.fit(sp.csr_matrix(X, dtype=np.float32), show_progress=False)
    return (np.asarray(model.user_factors, dtype=np.float32),
            np.asarray(model.item_factors, dtype=np.float32))


def linear_map(Xs: np.ndarray, Yt: np.ndarray, reg: float) -> np.ndarray:
    """Ridge regression ``[Xs, 1] @ M ~ Yt`` (closed form; the bias row is not penalised).

    The mapping step of EMCDR (Man et al. 2017) in its linear form: ``Xs`` = source-domain user
    factors and ``Yt`` = target-domain user factors of the same (shared) users. Returns ``M``
    of shape ``(Xs.shape[1] + 1, Yt.shape[1])``; apply with :func:`apply_map`.
    """
    Xs, Yt = np.asarray(Xs, np.float64), np.asarray(Yt, np.float64)
    if Xs.shape[0] != Yt.shape[0] or Xs.shape[0] == 0:
        raise ConfigError(f"Xs and Yt need the same, non-zero number of rows (got {Xs.shape[0]} and "
                          f"{Yt.shape[0]})", param="Xs")
    if reg < 0:
        raise ConfigError(f"reg must be >= 0, got {reg}", param="reg")
    A = np.hstack([Xs, np.ones((Xs.shape[0], 1))])
    pen = np.full(A.shape[1], float(reg))
    pen[-1] = 0.0
    return np.linalg.solve(A.T @ A + np.diag(pen) + 1e-9 * np.eye(A.shape[1]), A.T @ Yt)


def apply_map(Xs: np.ndarray, M: np.ndarray) -> np.ndarray:
    """``[Xs, 1] @ M`` as float32."""
    Xs = np.asarray(Xs, np.float64)
    return (np.hstack([Xs, np.ones((Xs.shape[0], 1))]) @ M).astype(np.float32)


def emcdr_users(Us: np.ndarray, Ut: np.ndarray, has_target: np.ndarray, shared_s: np.ndarray,
                shared_t: np.ndarray, map_reg: float) -> np.ndarray:
    """Target user factors of an EMCDR-style baseline (Man et al. 2017, linear map).

    ``Us`` / ``Ut``: user factors fitted separately on the source and the target domain (e.g.
    :func:`als`); ``shared_s[k]`` (source id) and ``shared_t[k]`` (target id) are the same user;
    ``has_target``: bool per target user, True when it has target training rows. A ridge map
    (:func:`linear_map`, weight ``map_reg``) from source to target factors is learned on the
    shared users with target rows, and the shared users without any get the mapped vector;
    everyone else keeps ``Ut``. Returns the new target user factors (float32).
    """
    shared_s, shared_t = np.asarray(shared_s, np.int64), np.asarray(shared_t, np.int64)
    has_target = np.asarray(has_target, bool)
    fit_rows, cold = has_target[shared_t], ~has_target[shared_t]
    U = np.array(Ut, dtype=np.float32, copy=True)
    if fit_rows.any() and cold.any():
        M = linear_map(Us[shared_s[fit_rows]], Ut[shared_t[fit_rows]], map_reg)
        U[shared_t[cold]] = apply_map(Us[shared_s[cold]], M)
    return U
