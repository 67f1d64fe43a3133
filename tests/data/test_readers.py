"""Readers: every format, malformed rows with reasons and line numbers, file-level errors."""
from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from components.data.readers import read_interactions, read_item_categories
from components.errors import InputError

FIX = Path(__file__).resolve().parents[2] / "data" / "fixtures"


def rejects_of(r):
    return [(x["line"], x["reason"]) for x in r.rejects.to_pylist()]


def test_canonical_csv_fast_path():
    r = read_interactions(FIX / "tiny.csv")
    assert r.rejects.num_rows == 0 and r.table.num_rows == 360
    assert r.table.schema.field("rating").type == pa.float64()
    assert r.table.schema.field("ts").type == pa.int64()
    assert set(r.table.column("domain").to_pylist()) == {"source", "target"}


def test_malformed_csv_every_reason_with_line_numbers():
    r = read_interactions(FIX / "malformed.csv")
    assert rejects_of(r) == [
        (4, "wrong field count (expected 5, got 3)"),
        (6, "non-numeric rating"),
        (8, "wrong field count (expected 5, got 6)"),
        (9, "empty user id"),
        (10, "empty item id"),
        (11, "non-numeric ts"),
    ]
    raw = {x["line"]: x["raw"] for x in r.rejects.to_pylist()}
    assert raw[6] == "u3,s2,five,1600000400,source" and raw[4] == "u2,s1,3"
    assert set(r.rejects.column("file").to_pylist()) == {str(FIX / "malformed.csv")}
    # blank line 7 is skipped silently; an empty rating is a null rating, not a reject
    good = r.table.to_pylist()
    assert [(g["user"], g["item"]) for g in good] == [("u1", "s1"), ("u1", "s2"), ("u2", "t1"), ("u5", "t1"),
                                                      ("u5", "s1")]
    assert good[3]["rating"] is None and good[4]["ts"] == 1600001000


def test_tsv_with_column_map(tmp_path):
    p = tmp_path / "ratings.tsv"
    p.write_text("userId\tmovieId\tscore\twhen\tcat\n7\t42\t4.5\t100\tx\n8\t43\t\t101.0\ty\n9\t44\t3\t1e3\tz\n")
    r = read_interactions(p, columns={"user": "userId", "item": "movieId", "rating": "score", "ts": "when",
                                      "domain": None, "category": "cat"})
    assert r.rejects.num_rows == 0
    assert r.table.column("user").to_pylist() == ["7", "8", "9"]
    assert r.table.column("ts").to_pylist() == [100, 101, 1000]
    assert r.table.column("rating").to_pylist() == [4.5, None, 3.0]
    assert r.table.column("category").to_pylist() == ["x", "y", "z"]


def test_amazon_jsonl_fast_and_slow_paths(tmp_path):
    r = read_interactions(FIX / "amazon.jsonl")
    assert r.table.num_rows == 6 and r.rejects.num_rows == 0
    assert r.table.slice(0, 1).to_pylist()[0] == {"user": "A1", "item": "B001", "rating": 5.0, "ts": 1400000000}
    lines = (FIX / "amazon.jsonl").read_text().splitlines()
    bad = lines[:2] + ["{not json", '{"reviewerID": "A9", "asin": "B9", "overall": "abc", "unixReviewTime": 1}',
                       "", '{"asin": "B1", "overall": 4, "unixReviewTime": 5}', "[1, 2]"] + lines[2:]
    p = tmp_path / "reviews.jsonl"
    p.write_text("\n".join(bad) + "\n")
    r = read_interactions(p)
    assert r.table.num_rows == 6
    got = rejects_of(r)
    assert got[0][0] == 3 and got[0][1].startswith("invalid JSON")
    assert got[1:] == [(4, "non-numeric rating"), (6, "empty user id"), (7, "invalid JSON (not an object)")]


def test_parquet_with_map_and_row_rejects(tmp_path):
    p = tmp_path / "x.parquet"
    pq.write_table(pa.table({"u": ["a", "b", "c"], "i": ["x", "y", ""], "r": ["5", "bad", "3"],
                             "t": pa.array([1, 2, 3], pa.int32())}), p)
    r = read_interactions(p, columns={"user": "u", "item": "i", "rating": "r", "ts": "t", "domain": None})
    assert r.table.column("user").to_pylist() == ["a"]
    assert rejects_of(r) == [(2, "non-numeric rating"), (3, "empty item id")]
    assert json.loads(r.rejects.column("raw")[0].as_py())["rating"] == "bad"


def test_recbole_atomic_files():
    r = read_interactions(FIX / "tiny.inter")
    assert r.table.num_rows == 40 and r.rejects.num_rows == 0
    assert r.table.column("user")[0].as_py() == "m_1"
    assert all(not s.endswith("\r") for s in r.table.column("item").to_pylist())
    cats = read_item_categories(FIX / "tiny.item")
    row = {x["item"]: x["category"] for x in cats.to_pylist()}
    assert row['Funny Sad "Film" (1992)'] == "Comedy Drama"  # no quote processing, no \r


@pytest.mark.parametrize("content,needle", [
    (None, "file not found"),
    ("", "empty input"),
    ("user,item,rating,ts,domain\n", "empty input: no data rows"),
    ("user,rating,ts,domain\nu,1,2,source\n", "missing column(s) ['item (for item)']"),
])
def test_file_level_errors_name_the_file(tmp_path, content, needle):
    p = tmp_path / "in.csv"
    if content is not None:
        p.write_text(content)
    with pytest.raises(InputError) as e:
        read_interactions(p)
    assert needle in str(e.value) and str(p) in str(e.value)


def test_unknown_extension_and_unknown_column_key(tmp_path):
    p = tmp_path / "x.dat"
    p.write_text("a")
    with pytest.raises(InputError, match="fmt") as e:  # the component names its argument; the stage, data.format
        read_interactions(p)
    assert e.value.param == "fmt"
    with pytest.raises(InputError, match="unknown canonical column 'usr'"):
        read_interactions(FIX / "tiny.csv", columns={"usr": "user"})


def test_negative_and_fractional_timestamps_are_rejects_with_a_reason(tmp_path):
    """ts is whole seconds since the Unix epoch (issue 12): no silent flooring or pre-1970 values."""
    p = tmp_path / "ts.csv"
    p.write_text("user,item,rating,ts,domain\nu1,i1,5,100,source\nu2,i2,4,-5,source\n"
                 "u3,i3,3,100.5,target\nu4,i4,2,1e3,target\nu5,i5,1,-0.5,target\n")
    r = read_interactions(p)
    assert rejects_of(r) == [(3, "negative ts"), (4, "fractional ts"), (6, "negative ts")]
    assert r.table.column("ts").to_pylist() == [100, 1000]
    q = tmp_path / "ts.parquet"
    pq.write_table(pa.table({"user": ["a", "b"], "item": ["x", "y"], "rating": [1.0, 2.0],
                             "ts": [1.25, 7.0], "domain": ["source", "source"]}), q)
    r = read_interactions(q)
    assert rejects_of(r) == [(1, "fractional ts")] and r.table.column("ts").to_pylist() == [7]
