"""Partitions, watermark and snapshot files of `recgen retrain` (plain files, no Ray)."""
from __future__ import annotations

import pandas as pd
import pytest

from components.errors import InputError
from pipelines.retrain.partition_data import monthly_edges, write_partitions
from pipelines.retrain.partitions import build_snapshot, list_partitions, new_partitions


def test_partitions_split_by_time_and_snapshot_is_stable(tmp_path):
    df = pd.DataFrame({"user": ["a", "b", "c", "d"], "item": ["x", "y", "z", "x"], "rating": [1.0] * 4,
                       "ts": [10, 20, 30, 40], "domain": ["source", "target", "target", "source"]})
    parts = write_partitions(df, [25, 35, 100], ["m1", "m2"], tmp_path / "p")
    assert [p.name for p in parts] == ["000-base.csv", "001-m1.csv", "002-m2.csv"]
    assert [len(pd.read_csv(p)) for p in parts] == [2, 1, 1]
    listed = list_partitions(str(tmp_path / "p"), "*.csv")
    assert new_partitions(listed, "000-base.csv") == parts[1:]
    assert new_partitions(listed, None) == parts
    snap = build_snapshot(parts, tmp_path / "s" / "upto.csv")
    assert pd.read_csv(snap).equals(df.sort_values("ts").reset_index(drop=True))
    first = snap.read_bytes()
    assert build_snapshot(parts, snap).read_bytes() == first   # kept, not rewritten
    edges, labels = monthly_edges("2000-12-01", 2)
    assert labels == ["2000-12", "2001-01"] and edges[0] == 975628800


def test_snapshot_rejects_mismatched_header_and_leaves_nothing(tmp_path):
    a, b = tmp_path / "000-a.csv", tmp_path / "001-b.csv"
    a.write_text("user,item,rating,ts,domain\nu,i,1,1,source\n")
    b.write_text("user;item;rating;ts;domain\nu;i;1;2;source\n")
    with pytest.raises(InputError, match="001-b.csv.*same header"):
        build_snapshot([a, b], tmp_path / "snap" / "s.csv")
    assert list((tmp_path / "snap").iterdir()) == []
    with pytest.raises(InputError, match="does not exist"):
        list_partitions(str(tmp_path / "nope"), "*.csv")
