"""Synthetic log generator: vectorized :func:`components.data.synthetic.generate_arrays` vs a
naive per-row Python generator of the same model, in the same run.

Both draw the same topic model (user by activity, domain by the user's role, topic from the
user's preferences, item of that topic by popularity, rating, timestamp; repeated
(user, domain, item) rows dropped). The naive one does it row by row with ``random.choices`` /
``bisect`` on precomputed cumulative weights (the set-up is shared numpy code). Sizes scale
with ``--rows`` like the README's 50M-row figure: users = rows / 12, source items = rows / 360,
target items = rows / 720 (50M rows: 4.2M users, 208k items).

Printed: rows/s and CPU-seconds of each (the naive one on ``--naive-rows``, it is ~O(rows) too),
the throughput ratio, and the peak RSS of the process after the vectorized run.

    python benchmarks/bench_synthetic.py [--rows 5000000] [--naive-rows 100000] [--seed 0]

The default (5M rows) takes well under 2 minutes on a loaded 2-core machine; ``--rows 50000000``
reproduces the README's 50M-row figure (needs ~7 GB of memory).
"""
from __future__ import annotations

import argparse
import bisect
import os
import random
import resource
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from components.data.synthetic import _power_weights, generate_arrays  # noqa: E402


def sizes(rows: int) -> dict:
    return {"n_users": max(rows // 12, 10), "n_items_source": max(rows // 360, 10),
            "n_items_target": max(rows // 720, 10)}


def naive(rows: int, *, n_users: int, n_items_source: int, n_items_target: int, n_topics: int = 16,
          shared_fraction: float = 0.5, target_share: float = 0.4, alpha: float = 0.1,
          seed: int = 0) -> list[tuple]:
    """The same model, one row at a time in Python (duplicates rejected with a set)."""
    rng = np.random.default_rng(seed)
    theta = rng.dirichlet(np.full(n_topics, alpha), size=n_users)
    role = rng.choice(3, size=n_users, p=[(1 - shared_fraction) / 2, (1 - shared_fraction) / 2, shared_fraction])
    act_cum = np.cumsum(_power_weights(n_users, 0.8, rng)).tolist()
    items = []  # per domain: per topic (item ids, cumulative popularity)
    for n in (n_items_source, n_items_target):
        topic = rng.integers(0, n_topics, size=n)
        pop = _power_weights(n, 0.9, rng)
        items.append([(np.flatnonzero(topic == k).tolist(), np.cumsum(pop[topic == k]).tolist())
                      for k in range(n_topics)])
    theta_cum = np.cumsum(theta, axis=1).tolist()
    role = role.tolist()
    r = random.Random(seed)
    t0, t1 = 1_600_000_000, 1_600_000_000 + 365 * 86400
    seen: set = set()
    out = []
    while len(out) < rows:
        u = bisect.bisect_right(act_cum, r.random() * act_cum[-1])
        u = min(u, n_users - 1)
        d = 0 if role[u] == 0 else 1 if role[u] == 1 else int(r.random() < target_share)
        tc = theta_cum[u]
        k = min(bisect.bisect_right(tc, r.random() * tc[-1]), n_topics - 1)
        ids, cum = items[d][k]
        if not ids:
            continue
        item = ids[min(bisect.bisect_right(cum, r.random() * cum[-1]), len(ids) - 1)]
        if (u, d, item) in seen:
            continue
        seen.add((u, d, item))
        pref = theta[u][k] * n_topics
        rating = min(5.0, max(1.0, round(2.6 + 1.2 * np.log(max(pref, 1e-3)) / np.log(4.0) + r.gauss(0, 0.6))))
        out.append((u, item, d, rating, r.randrange(t0, t1)))
    return out


def timed(fn, *a, **kw):
    w0, c0 = time.perf_counter(), time.process_time()
    res = fn(*a, **kw)
    return res, time.perf_counter() - w0, time.process_time() - c0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=5_000_000, help="rows of the vectorized run")
    ap.add_argument("--naive-rows", type=int, default=100_000, help="rows of the per-row Python baseline")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    sz = sizes(args.rows)
    log, wall_v, cpu_v = timed(generate_arrays, args.rows, seed=args.seed, **sz)
    assert len(log.user) == args.rows
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB
    rows_n, wall_n, cpu_n = timed(naive, args.naive_rows, seed=args.seed, **sizes(args.naive_rows))
    assert len(rows_n) == args.naive_rows

    rate_v, rate_n = args.rows / cpu_v, args.naive_rows / cpu_n
    print(f"vectorized generate_arrays: {args.rows:,} rows ({sz['n_users']:,} users, "
          f"{sz['n_items_source'] + sz['n_items_target']:,} items): {wall_v:.1f} s wall, "
          f"{cpu_v:.1f} CPU-s, {rate_v:,.0f} rows per CPU-s; peak RSS {peak_gb:.2f} GB")
    print(f"naive per-row Python:        {args.naive_rows:,} rows: {wall_n:.1f} s wall, {cpu_n:.1f} CPU-s, "
          f"{rate_n:,.0f} rows per CPU-s")
    print(f"ratio (rows per CPU-s, vectorized / naive): {rate_v / rate_n:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
