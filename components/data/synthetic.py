"""Seeded synthetic two-domain interaction logs with real signal.

Model (a latent topic model, so there is something to learn and to transfer):

* ``n_topics`` latent topics shared by both domains. Each user has a sparse topic preference
  ``theta_u ~ Dirichlet(alpha)``; each item belongs to one topic of its domain.
* User activity and item popularity follow power laws: user weight ``rank^-user_exponent``,
  item weight within its topic ``rank^-item_exponent`` (ranks randomly permuted).
* Users are ``source`` only, ``target`` only or shared (``shared_fraction``); a shared user's
  rows go to the target domain with probability ``target_share``.
* One interaction: draw a user by activity, a domain, a topic from ``theta_u``, then an item of
  that topic and domain by popularity. Because a shared user's topics are the same in both
  domains, source behaviour predicts target behaviour.
* Rating 1..5 grows with ``theta_u[topic]``; ts uniform in one year.

Everything is vectorized and done in chunks: 50M rows (4.2M users, 208k items) took 126
CPU-seconds and 6.55 GB peak RSS on a loaded 2-core machine, 8.6x the rows per CPU-second of a
per-row Python generator (``python benchmarks/bench_synthetic.py --rows 50000000``).
:func:`generate_arrays` returns integer arrays (for k-core benchmarks);
:func:`generate` returns the canonical Arrow table (string ids ``u<k>``, ``s<k>``, ``t<k>``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from components.data.schema import DOMAINS, INTERACTIONS_SCHEMA
from components.errors import ConfigError


@dataclass
class SyntheticLog:
    """Integer arrays of a synthetic log: ``user`` (global user index), ``item`` (index within
    its domain), ``domain`` (0 source, 1 target), ``rating`` (float64), ``ts`` (int64 s)."""

    user: np.ndarray
    item: np.ndarray
    domain: np.ndarray
    rating: np.ndarray
    ts: np.ndarray

    def __len__(self) -> int:
        return len(self.user)


def _power_weights(n: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    w = np.arange(1, n + 1, dtype=np.float64) ** -exponent
    return w[rng.permutation(n)]


def _first_occurrences(key: np.ndarray) -> np.ndarray:
    """Sorted indices of the first occurrence of each distinct non-negative ``key``."""
    n = len(key)
    row_bits = max(1, int(n - 1).bit_length())
    if n and int(key.max()) < (1 << (63 - row_bits)):  # one unstable sort of key|row
        comp = np.sort((key << row_bits) | np.arange(n, dtype=np.int64))
        k = comp >> row_bits
        first = comp[np.r_[True, k[1:] != k[:-1]]] & ((1 << row_bits) - 1)
    else:
        first = np.unique(key, return_index=True)[1]
    first.sort()
    return first


def generate_arrays(n_interactions: int, *, n_users: int = 10_000, n_items_source: int = 2_000,
                    n_items_target: int = 1_000, n_topics: int = 16, shared_fraction: float = 0.5,
                    target_share: float = 0.4, user_exponent: float = 0.8, item_exponent: float = 0.9,
                    alpha: float = 0.1, unique: bool = True, seed: int = 0,
                    chunk: int = 2_000_000) -> SyntheticLog:
    """Generate a log of exactly ``n_interactions`` rows (see the module docstring).

    ``unique``: no repeated (domain, user, item) rows (oversamples, then drops repeats).
    Same arguments and seed -> identical arrays.
    """
    if n_interactions <= 0 or n_users <= 0 or n_items_source <= 0 or n_items_target <= 0:
        raise ConfigError("synthetic sizes must be positive")
    if not 0.0 <= shared_fraction <= 1.0 or not 0.0 < target_share < 1.0:
        raise ConfigError("shared_fraction must be in [0, 1] and target_share in (0, 1)")
    capacity = n_users * (n_items_source + n_items_target)
    if unique and n_interactions > 0.5 * capacity:
        raise ConfigError(f"{n_interactions} unique interactions need more users/items "
                          f"(at most half of users x items = {capacity // 2})")
    rng = np.random.default_rng(seed)
    n_topics = max(1, n_topics)
    theta = rng.dirichlet(np.full(n_topics, alpha), size=n_users)
    # user roles: 0 source only, 1 target only, 2 shared
    role = rng.choice(3, size=n_users, p=[(1 - shared_fraction) / 2, (1 - shared_fraction) / 2, shared_fraction])
    # user activity: power law, capped so that no user needs more than a fifth of the items
    # (or 1.5x the mean degree when that is larger)
    cap = max(0.2 * min(n_items_source, n_items_target), 1.5 * n_interactions / n_users) / n_interactions
    act_p = _power_weights(n_users, user_exponent, rng)
    for _ in range(20):
        act_p /= act_p.sum()
        if act_p.max() <= cap * 1.001:
            break
        act_p = np.minimum(act_p, cap)
    # items: topic membership and popularity, sorted by (topic) so each topic is a slice
    item_tables = []
    for n_items in (n_items_source, n_items_target):
        topic = np.sort(rng.integers(0, n_topics, size=n_items))
        pop = _power_weights(n_items, item_exponent, rng)
        bounds = np.searchsorted(topic, np.arange(n_topics + 1))
        cdf = np.cumsum(pop)
        item_tables.append((bounds, cdf, rng.permutation(n_items)))  # permuted ids hide the topic order
    t0, t1 = 1_600_000_000, 1_600_000_000 + 365 * 86400

    # probability that one row of a user goes to the target domain (by role)
    p_target = np.choose(role, [0.0, 1.0, target_share]).astype(np.float64)
    theta_cells = np.repeat(theta.astype(np.float64), 2, axis=0)  # rows: (user, domain)
    theta_cells /= theta_cells.sum(axis=1, keepdims=True)
    K = n_topics

    def draw(m: int, r: np.random.Generator):
        # counts per user, split per domain, then per topic: rows come from cell counts
        cnt_u = r.multinomial(m, act_p)
        cnt_t = r.binomial(cnt_u, p_target)
        cnt_cells = np.stack([cnt_u - cnt_t, cnt_t], axis=1).ravel()  # (user, domain)
        active = np.flatnonzero(cnt_cells)
        per_topic = r.multinomial(cnt_cells[active], theta_cells[active])  # (active cells, K)
        cell = np.repeat(np.repeat(active, K) * K + np.tile(np.arange(K), len(active)), per_topic.ravel())
        cell = cell[r.permutation(m)]
        user = cell // (2 * K)
        dom = ((cell // K) % 2).astype(np.int8)
        topic = cell % K
        item = np.empty(m, dtype=np.int64)
        for d in (0, 1):
            sel = np.flatnonzero(dom == d)
            bounds, cdf, perm = item_tables[d]
            lo, hi = bounds[topic[sel]], bounds[topic[sel] + 1]
            empty = hi <= lo  # topic without items in this domain: any item
            lo = np.where(empty, 0, lo)
            hi = np.where(empty, len(cdf), hi)
            base = np.where(lo > 0, cdf[np.maximum(lo - 1, 0)], 0.0)
            target = base + r.random(len(sel)) * (cdf[hi - 1] - base)
            pos = np.clip(np.searchsorted(cdf, target, side="right"), lo, hi - 1)
            item[sel] = perm[pos]
        pref = theta[user, topic] * n_topics  # 1 = average preference
        rating = np.clip(np.rint(2.6 + 1.2 * np.log(np.maximum(pref, 1e-3)) / np.log(4.0)
                                 + r.normal(0, 0.6, m)), 1, 5)
        ts = r.integers(t0, t1, size=m)
        return user.astype(np.int64), item, dom, rating.astype(np.float64), ts.astype(np.int64)

    n_items_max = max(n_items_source, n_items_target)
    cols: tuple | None = None
    for attempt in range(40):
        have = 0 if cols is None else len(cols[0])
        if have >= n_interactions:
            break
        m_total = int((n_interactions - have) * (1.2 * 1.5 ** attempt if unique else 1.0)) + 16
        new = [draw(min(chunk, m_total - s0), rng) for s0 in range(0, m_total, chunk)]
        new = [np.concatenate([p[i] for p in new]) for i in range(5)]
        cols = tuple(new) if cols is None else tuple(np.concatenate([a, b]) for a, b in zip(cols, new))
        if unique:  # keep the first occurrence of each (user, domain, item), in draw order
            first = _first_occurrences((cols[0] * 2 + cols[2]) * n_items_max + cols[1])
            cols = tuple(c[first] for c in cols)
    if cols is None or len(cols[0]) < n_interactions:
        raise ConfigError("could not reach the requested number of unique interactions; "
                          "add users/items or lower the popularity exponents")
    user, item, dom, rating, ts = (c[:n_interactions] for c in cols)
    return SyntheticLog(user, item, dom, rating, ts)


def to_table(log: SyntheticLog) -> pa.Table:
    """The canonical Arrow table of a :class:`SyntheticLog` (ids ``u<k>``, ``s<k>`` / ``t<k>``)."""
    def prefixed(prefix, values):
        return pc.binary_join_element_wise(pa.scalar(prefix), pc.cast(pa.array(values), pa.string()), "")
    dom = np.asarray(log.domain)
    item = pc.if_else(pa.array(dom == 0), prefixed("s", log.item), prefixed("t", log.item))
    names = pc.if_else(pa.array(dom == 0), pa.scalar(DOMAINS[0]), pa.scalar(DOMAINS[1]))
    return pa.table({"user": prefixed("u", log.user), "item": item, "rating": pa.array(log.rating, pa.float64()),
                     "ts": pa.array(log.ts, pa.int64()), "domain": names}, schema=INTERACTIONS_SCHEMA)


def generate(n_interactions: int, **kwargs) -> pa.Table:
    """Canonical Arrow table of a synthetic log; ``kwargs`` as for :func:`generate_arrays`."""
    return to_table(generate_arrays(n_interactions, **kwargs))
