"""Iterative (k_user, k_item)-core filtering of interaction logs.

The (k_user, k_item)-core of an interaction log is the largest subset of its rows in which every
user has at least ``k_user`` rows and every item at least ``k_item`` rows. It is unique and is
reached by repeatedly removing the rows of under-degree users and items until nothing changes
(the fixpoint). With ``k_user == k_item == k`` and no duplicate rows it is exactly the k-core of
the bipartite user-item graph. Duplicate (user, item) rows count once each (multigraph degree).

Implementation: degrees by ``np.bincount`` once, then per iteration one boolean gather per side
finds the rows of under-degree nodes, the degrees are decremented by the ``bincount`` of just the
removed rows, and an ``alive`` mask is updated. The id arrays are compacted once fewer than 80%
of their rows are alive, so late iterations touch only what is left. No per-row Python.
Dense int64 ids are used in place (no copy); the extra memory is a few bytes per row (masks)
plus one compacted copy of at most 80% of the rows (ids + int32 row index).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from components.errors import InputError

log = logging.getLogger(__name__)


@dataclass
class KCoreResult:
    """``mask``: bool per input row, True = kept. ``iterations``: one dict per iteration with
    ``rows_removed``, ``users_removed``, ``items_removed``, ``rows_left``."""

    mask: np.ndarray
    iterations: list[dict] = field(default_factory=list)

    @property
    def rows_kept(self) -> int:
        return int(self.mask.sum())


def _as_codes(ids: np.ndarray, name: str) -> tuple[np.ndarray, int]:
    """Non-negative compact integer codes for ``ids`` and their count (bincount length)."""
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise InputError(f"{name} must be a 1-D integer array, got shape {ids.shape}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise InputError(f"{name} must be integers, got dtype {ids.dtype}",
                         fix="map ids to integers first (ingest does this: uid / iid)")
    if len(ids) == 0:
        return ids.astype(np.intp), 0
    lo, hi = int(ids.min()), int(ids.max())
    if lo >= 0 and hi < max(4 * len(ids), 1 << 16):  # already dense enough for bincount
        return ids.astype(np.intp, copy=False), hi + 1  # bincount works in intp: no copy for int64
    uniq, inv = np.unique(ids, return_inverse=True)
    return inv.astype(np.intp, copy=False), len(uniq)


def kcore(users: np.ndarray, items: np.ndarray, k_user: int, k_item: int, *,
          on_iteration: Callable[[dict], None] | None = None, what: str = "interactions") -> KCoreResult:
    """Iterate degree filtering to the fixpoint; see the module docstring.

    ``users``/``items``: integer arrays, one entry per interaction row. ``on_iteration`` is
    called with each iteration's statistics (they are also logged at INFO). Raises
    :class:`InputError` if nothing survives, with the input statistics and the k that emptied it.
    """
    if len(users) != len(items):
        raise InputError(f"users and items differ in length ({len(users)} vs {len(items)})")
    if k_user < 0 or k_item < 0:
        raise InputError(f"k must be >= 0, got k_user={k_user}, k_item={k_item}")
    n = len(users)
    u, nu = _as_codes(users, "users")
    v, nv = _as_codes(items, "items")
    if n == 0:
        raise InputError(f"k-core of {what}: the input has no rows")
    du = np.bincount(u, minlength=nu)
    dv = np.bincount(v, minlength=nv)
    start = {"rows": n, "users": int((du > 0).sum()), "items": int((dv > 0).sum()),
             "max_user_degree": int(du.max()), "max_item_degree": int(dv.max())}
    iterations: list[dict] = []
    it = 0
    # State: current arrays u, v (row r of them is original row idx[r]; idx None = identity) and
    # alive (None = every current row alive). Removals only flip `alive`; the arrays are
    # compacted once fewer than 80% of their rows are alive.
    idx: np.ndarray | None = None
    alive: np.ndarray | None = None
    n_alive = n
    while True:
        bad_u = du < k_user
        bad_v = dv < k_item
        n_bad_u = int(np.count_nonzero(bad_u & (du > 0)))
        n_bad_v = int(np.count_nonzero(bad_v & (dv > 0)))
        if n_bad_u == 0 and n_bad_v == 0:
            break
        it += 1
        n_before = n_alive
        drop = bad_u[u]
        drop |= bad_v[v]
        if alive is not None:
            drop &= alive
        removed = np.flatnonzero(drop)  # flatnonzero + take: much faster than boolean indexing
        n_alive -= len(removed)
        du -= np.bincount(u.take(removed), minlength=nu)
        dv -= np.bincount(v.take(removed), minlength=nv)
        del removed
        if alive is None:
            alive = np.logical_not(drop, out=drop)
        else:
            alive ^= drop  # drop is a subset of alive
            del drop
        if n_alive < 0.8 * len(u):
            sel = np.flatnonzero(alive)
            u, v = u.take(sel), v.take(sel)
            idx = sel.astype(np.int32) if idx is None and n < 2**31 else (sel if idx is None else idx[sel])
            alive = None
        stat = {"iteration": it, "rows_removed": int(n_before - n_alive), "users_removed": n_bad_u,
                "items_removed": n_bad_v, "rows_left": int(n_alive)}
        iterations.append(stat)
        log.info("k-core %s (k_user=%d, k_item=%d) iteration %d: removed %d rows (%d users, %d items), %d left",
                 what, k_user, k_item, it, stat["rows_removed"], n_bad_u, n_bad_v, stat["rows_left"])
        if on_iteration is not None:
            on_iteration(stat)
        if n_alive == 0:
            binding = []
            if k_user > start["max_user_degree"]:
                binding.append(f"k_user={k_user} > max user degree {start['max_user_degree']}")
            if k_item > start["max_item_degree"]:
                binding.append(f"k_item={k_item} > max item degree {start['max_item_degree']}")
            why = "; ".join(binding) or f"iterative filtering with k_user={k_user}, k_item={k_item}"
            raise InputError(
                f"k-core of {what} is empty: {why} removed every row after {it} iteration(s); input had "
                f"{start['rows']:,} rows, {start['users']:,} users, {start['items']:,} items, max degree "
                f"user {start['max_user_degree']}, item {start['max_item_degree']}",
                param="k_item" if binding and binding[0].startswith("k_item") else "k_user",
                fix="lower k_user / k_item or use a denser dataset")
    if idx is None:
        mask = alive if alive is not None else np.ones(n, dtype=bool)
    else:
        mask = np.zeros(n, dtype=bool)
        mask[idx if alive is None else idx[alive]] = True
    return KCoreResult(mask, iterations)


def kcore_mask(users: np.ndarray, items: np.ndarray, k_user: int, k_item: int) -> np.ndarray:
    """Bool mask over interaction rows: True for rows in the (k_user, k_item)-core.

    ``users``, ``items``: integer arrays of equal length (any non-negative or negative ints;
    sparse ids are compacted internally). Equals the bipartite graph's k-core when
    ``k_user == k_item`` (on rows without duplicates). Raises :class:`InputError` when the
    core is empty.
    """
    return kcore(users, items, k_user, k_item).mask


def kcore_by_domain(domains: np.ndarray, users: np.ndarray, items: np.ndarray,
                    k: Mapping[str, int | tuple[int, int]], *,
                    on_iteration: Callable[[str, dict], None] | None = None) -> tuple[np.ndarray, dict[str, list[dict]]]:
    """Run :func:`kcore` separately on the rows of each domain.

    ``domains``: array of domain names per row; ``k[domain]``: an int (same k for users and
    items) or ``(k_user, k_item)``. Domains not in ``k`` are kept unfiltered. Returns the combined
    row mask and each domain's iteration log.
    """
    domains = np.asarray(domains)
    mask = np.ones(len(domains), dtype=bool)
    logs: dict[str, list[dict]] = {}
    for d in np.unique(domains).tolist():
        if d not in k:
            continue
        ku, ki = (k[d], k[d]) if isinstance(k[d], (int, np.integer)) else tuple(k[d])
        rows = np.flatnonzero(domains == d)
        cb = (lambda s, d=d: on_iteration(d, s)) if on_iteration else None
        res = kcore(users[rows], items[rows], int(ku), int(ki), on_iteration=cb, what=f"domain '{d}'")
        mask[rows] = res.mask
        logs[str(d)] = res.iterations
    return mask, logs

