"""Uniform negative sampling filtered against each user's positives (vectorized).

A :class:`PositiveSet` stores the (user, item) pairs a user is known to like as sorted int64
keys ``user * n_items + item``; membership of a whole batch is one ``np.searchsorted``.
:func:`sample_negatives` draws uniform items (optionally from a per-row item range), and
re-draws only the rows that hit a positive until none do. Rows whose user has no negative
left in the range raise :class:`~components.errors.InputError`.

Public API: :class:`PositiveSet`, :func:`sample_negatives`, :func:`sample_candidates`,
:func:`positive_mask`, :func:`free_counts`.
"""
from __future__ import annotations

import numpy as np

from components.errors import InputError


class PositiveSet:
    """The set of known-positive (user, item) pairs, for fast vectorized membership tests.

    Args:
        users, items: int arrays of equal length (duplicates allowed).
        n_items: size of the item id space (items are ``0..n_items-1``).
        dense_limit: when ``n_users * n_items`` is at most this, membership uses a dense
            boolean table (one gather instead of a binary search; ~5x faster).
    """

    def __init__(self, users: np.ndarray, items: np.ndarray, n_items: int,
                 dense_limit: int = 1 << 25):
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        if users.shape != items.shape:
            raise InputError(f"users ({users.shape}) and items ({items.shape}) differ in length")
        if len(items) and (items.min() < 0 or items.max() >= n_items):
            raise InputError(f"item id outside 0..{n_items - 1}", field="iid",
                             fix="re-index items contiguously (kcore stage)")
        self.n_items = int(n_items)
        self.keys = np.unique(users * self.n_items + items)
        n_users = int(users.max()) + 1 if len(users) else 0
        self.counts = np.bincount(self.keys // self.n_items, minlength=n_users)
        self.dense: np.ndarray | None = None
        if 0 < n_users * self.n_items <= dense_limit:
            self.dense = np.zeros(n_users * self.n_items, dtype=bool)
            self.dense[self.keys] = True

    def contains(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Boolean mask: is ``(users[k], items[k])`` a positive pair."""
        q = np.asarray(users, dtype=np.int64) * self.n_items + np.asarray(items, dtype=np.int64)
        if self.dense is not None:
            inside = q < len(self.dense)
            if inside.all():
                return self.dense[q]
            out = np.zeros(q.shape, dtype=bool)
            out[inside] = self.dense[q[inside]]
            return out
        if len(self.keys) == 0:
            return np.zeros(q.shape, dtype=bool)
        pos = np.searchsorted(self.keys, q)
        pos[pos == len(self.keys)] = 0
        return self.keys[pos] == q

    def items_of(self, user: int) -> np.ndarray:
        """The sorted positive items of one user."""
        lo = np.searchsorted(self.keys, user * self.n_items)
        hi = np.searchsorted(self.keys, (user + 1) * self.n_items)
        return self.keys[lo:hi] - user * self.n_items


def sample_negatives(users: np.ndarray, positives: PositiveSet, rng: np.random.Generator, *,
                     lo: np.ndarray | int = 0, hi: np.ndarray | int | None = None,
                     max_rounds: int = 50) -> np.ndarray:
    """One uniform negative item per entry of ``users``, never a positive of that user.

    Args:
        users: user id per row.
        positives: the pairs to avoid.
        rng: numpy Generator (its state makes the draw reproducible).
        lo, hi: item range ``[lo, hi)`` per row (scalars or arrays); default all items.
        max_rounds: vectorized re-draw rounds before the exact per-row fallback.

    Returns:
        int64 array of negative items, same length as ``users``.
    """
    users = np.asarray(users, dtype=np.int64)
    hi = positives.n_items if hi is None else hi
    lo_a = np.broadcast_to(np.asarray(lo, dtype=np.int64), users.shape)
    span = np.broadcast_to(np.asarray(hi, dtype=np.int64), users.shape) - lo_a
    neg = lo_a + (rng.random(len(users)) * span).astype(np.int64)
    bad = np.flatnonzero(positives.contains(users, neg))
    for _ in range(max_rounds):
        if len(bad) == 0:
            return neg
        neg[bad] = lo_a[bad] + (rng.random(len(bad)) * span[bad]).astype(np.int64)
        bad = bad[positives.contains(users[bad], neg[bad])]
    for k in bad:  # users with almost every item positive: draw from the exact complement
        pos = positives.items_of(int(users[k]))
        free = np.setdiff1d(np.arange(lo_a[k], lo_a[k] + span[k]), pos, assume_unique=True)
        if len(free) == 0:
            raise InputError(f"user {users[k]} has every item in [{lo_a[k]}, {lo_a[k] + span[k]}) "
                             "as a positive; no negative exists",
                             fix="drop such users (raise the k-core threshold on items)")
        neg[k] = free[rng.integers(len(free))]
    return neg


def free_counts(users: np.ndarray, positives: PositiveSet) -> np.ndarray:
    """Number of non-positive items of each user in ``users`` (the negatives that exist)."""
    users = np.asarray(users, dtype=np.int64)
    lo = np.searchsorted(positives.keys, users * positives.n_items)
    hi = np.searchsorted(positives.keys, (users + 1) * positives.n_items)
    return positives.n_items - (hi - lo)


def sample_candidates(users: np.ndarray, positives: PositiveSet, n: int,
                      rng: np.random.Generator, chunk: int = 1024,
                      allow_fewer: bool = False) -> np.ndarray:
    """``n`` distinct negatives per user (shape ``(len(users), n)``), none a positive.

    Uniform without replacement over each user's non-positive items: every item gets a random
    key, positives get +inf, and the ``n`` smallest keys win (``argpartition``, in user chunks
    of ``chunk`` rows). Used by the sampled evaluation protocol (1 positive + ``n`` negatives).

    A user with fewer than ``n`` non-positive items (a small catalogue) raises InputError, or,
    with ``allow_fewer``, gets all of them and ``-1`` in the remaining slots (padding that
    :func:`components.pcrec.metrics.rank_sampled` ignores); :func:`free_counts` counts them.
    """
    users = np.asarray(users, dtype=np.int64)
    n_items = positives.n_items
    out = np.full((len(users), n), -1, dtype=np.int64)
    for s in range(0, len(users), chunk):
        u = users[s:s + chunk]
        keys = rng.random((len(u), n_items))
        mask = positive_mask(u, positives)
        keys[mask] = np.inf
        free = n_items - mask.sum(axis=1)
        if len(u) and free.min() < n and not allow_fewer:
            k = int(np.argmin(free))
            raise InputError(f"user {u[k]} has only {free[k]} non-positive items, "
                             f"{n} sampled negatives requested",
                             param="n",
                             fix="lower n, the number of negatives per user (or pass allow_fewer=True)")
        m = min(n, n_items)   # argpartition needs m <= n_items; slots past m stay -1
        pick = np.argpartition(keys, m - 1, axis=1)[:, :m] if m > 0 else np.empty((len(u), 0), np.int64)
        # the m smallest keys hold every free item before any positive (+inf): those are padding
        pick = np.where(np.take_along_axis(keys, pick, axis=1) == np.inf, -1, pick)
        out[s:s + chunk, :m] = pick
    return out


def positive_mask(users: np.ndarray, positives: PositiveSet) -> np.ndarray:
    """Dense boolean matrix ``(len(users), n_items)``: True where the pair is a positive."""
    users = np.asarray(users, dtype=np.int64)
    n_items = positives.n_items
    lo = np.searchsorted(positives.keys, users * n_items)
    hi = np.searchsorted(positives.keys, (users + 1) * n_items)
    lens = hi - lo
    rows = np.repeat(np.arange(len(users)), lens)
    idx = np.repeat(lo - np.r_[0, np.cumsum(lens)[:-1]], lens) + np.arange(lens.sum())
    cols = positives.keys[idx] - users[rows] * n_items
    mask = np.zeros((len(users), n_items), dtype=bool)
    mask[rows, cols] = True
    return mask
