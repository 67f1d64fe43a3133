"""Ingest: id maps, duplicate policies, threshold, domain rules, reject fraction, the stages."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from components.data.ingest import (DomainRule, apply_threshold, assign_domains, deduplicate, domain_stats,
                                    index_ids, ingest)
from components.data.readers import ReadResult, read_interactions, read_item_categories
from components.data.schema import REJECTS_SCHEMA, validate_interactions
from components.errors import InputError

FIX = Path(__file__).resolve().parents[2] / "data" / "fixtures"


def table(rows):
    user, item, rating, ts, domain = zip(*rows)
    return pa.table({"user": list(user), "item": list(item), "rating": pa.array(rating, pa.float64()),
                     "ts": pa.array(ts, pa.int64()), "domain": list(domain)})


def test_id_mapping_round_trip_and_reindex():
    t = validate_interactions(read_interactions(FIX / "tiny.csv").table)
    inter, users, items = index_ids(t)
    for d in ("source", "target"):
        sub = inter.filter(pc.equal(inter.column("domain"), d))
        for col, n in (("uid", pc.count_distinct(sub.column("user")).as_py()),
                       ("iid", pc.count_distinct(sub.column("item")).as_py())):
            assert sorted(set(sub.column(col).to_pylist())) == list(range(n))  # contiguous per domain
    # round trip: (domain, uid) -> user and (domain, iid) -> item give back the strings
    umap = {(r["domain"], r["uid"]): r["user"] for r in users.to_pylist()}
    imap = {(r["domain"], r["iid"]): r["item"] for r in items.to_pylist()}
    for r in inter.to_pylist():
        assert umap[(r["domain"], r["uid"])] == r["user"] and imap[(r["domain"], r["iid"])] == r["item"]
    again, _, _ = index_ids(inter)
    assert again.equals(inter)  # idempotent
    # after dropping rows, re-indexing is contiguous again and keeps the relative order
    kept = inter.filter(pa.array(np.arange(inter.num_rows) % 3 != 0))
    re, _, _ = index_ids(kept)
    for d in ("source", "target"):
        m = pc.equal(re.column("domain"), d)
        uids = re.filter(m).column("uid").to_numpy()
        old = kept.filter(m).column("uid").to_numpy()
        assert sorted(set(uids)) == list(range(len(set(uids))))
        assert (np.argsort(old, kind="stable") == np.argsort(uids, kind="stable")).all()


DUPS = table([("a", "x", 3.0, 10, "source"), ("a", "x", 5.0, 30, "source"), ("a", "x", 4.0, 20, "source"),
              ("a", "x", 1.0, 5, "target"), ("b", "x", 2.0, 1, "source")])


@pytest.mark.parametrize("policy,expected", [
    ("first", [3.0, 1.0, 2.0]), ("last", [5.0, 1.0, 2.0]), ("max", [5.0, 1.0, 2.0]), ("drop", [1.0, 2.0])])
def test_duplicate_policies(policy, expected):
    out, removed = deduplicate(DUPS, policy)
    assert out.column("rating").to_pylist() == expected
    assert removed == DUPS.num_rows - len(expected)


def test_max_policy_prefers_rating_over_time_and_threshold_drops_nulls():
    t = table([("a", "x", 5.0, 1, "source"), ("a", "x", 2.0, 9, "source")])
    assert deduplicate(t, "max")[0].column("ts").to_pylist() == [1]
    assert deduplicate(t, "last")[0].column("ts").to_pylist() == [9]
    t = table([("a", "x", 5.0, 1, "source"), ("b", "x", None, 2, "source"), ("c", "x", 3.0, 3, "source")])
    out, removed = apply_threshold(t, 4)
    assert out.column("user").to_pylist() == ["a"] and removed == 2
    assert apply_threshold(t, None)[0].num_rows == 3


@pytest.mark.parametrize("overlap,expect", [("source", "source"), ("target", "target"), ("drop", None)])
def test_domain_from_categories_overlap_rule(overlap, expect):
    r = read_interactions(FIX / "tiny.inter")
    cats = read_item_categories(FIX / "tiny.item")
    rule = DomainRule(by="category", sep=" ", source=("Comedy",), target=("Drama",), overlap=overlap)
    out, dropped = assign_domains(r.table, rule, item_categories=cats)
    dom = {i: d for i, d in zip(out.column("item").to_pylist(), out.column("domain").to_pylist())}
    both = 'Funny Sad "Film" (1992)'
    assert dom.get(both) == expect
    assert dom["Laugh Riot (1994)"] == "source" and dom["War Story (1997)"] == "target"
    assert "Space Film (1993)" not in dom  # neither genre: dropped
    n_space = r.table.column("item").to_pylist().count("Space Film (1993)")
    n_both = r.table.column("item").to_pylist().count(both)
    assert dropped == n_space + (n_both if overlap == "drop" else 0)


def test_domain_from_column_values_and_file():
    t = table([("a", "x", 1.0, 1, "Books"), ("a", "y", 1.0, 1, "movies"), ("b", "z", 1.0, 1, "music")])
    out, dropped = assign_domains(t, DomainRule(values={"books": "source", "Movies": "target"}))
    assert out.column("domain").to_pylist() == ["source", "target"] and dropped == 1
    with pytest.raises(InputError, match="rule.values") as e:  # the component names its own argument
        assign_domains(t, DomainRule())
    assert e.value.param == "rule.values"
    out, _ = assign_domains(t, DomainRule(by="file"), file_domain="target")
    assert set(out.column("domain").to_pylist()) == {"target"}
    with pytest.raises(InputError, match="file_domain") as e:
        assign_domains(t, DomainRule(by="file"), file_domain=None)
    assert e.value.param == "file_domain"


def test_reject_fraction_fails_with_counts_and_examples():
    r = read_interactions(FIX / "malformed.csv")  # 6 of 11 rows rejected
    with pytest.raises(InputError) as e:
        ingest([r], DomainRule(), max_reject_fraction=0.5)
    msg = str(e.value)
    assert "6 of 11 rows rejected" in msg and "non-numeric rating: 1" in msg and "malformed.csv:4" in msg
    res = ingest([r], DomainRule(), max_reject_fraction=0.6)
    assert res.rejects.num_rows == 6 and res.interactions.num_rows == 5
    assert res.rejects.schema.equals(REJECTS_SCHEMA)


def test_ingest_end_to_end_statistics():
    reads = [read_interactions(FIX / "tiny.csv")]
    dup = ReadResult("again", reads[0].table.slice(0, 10), REJECTS_SCHEMA.empty_table())
    res = ingest(reads + [dup], DomainRule(), duplicates="first")
    st = res.stats
    assert st["duplicates_removed"] == 10 and st["rows"] == 360
    assert st["source"]["interactions"] + st["target"]["interactions"] == 360
    assert st["shared_users"] == 21 == domain_stats(res.interactions)["shared_users"]
    assert 0 < st["target"]["density"] < 1
    with pytest.raises(InputError, match="implicit-feedback threshold"):
        ingest(reads, DomainRule(), implicit_threshold=6)
