"""Leave-one-out split: last = test, second-to-last = valid, ties by iid, short users in train."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from components.errors import InputError
from components.pcrec.split import leave_one_out


def _table(rows):
    df = pd.DataFrame(rows, columns=["domain", "uid", "iid", "ts"])
    df["user"] = "u" + df["uid"].astype(str)
    df["item"] = df["domain"].str[0] + df["iid"].astype(str)
    df["rating"] = 1.0
    return df


def test_last_is_test_second_last_is_valid_with_ties_by_iid():
    df = _table([
        ("target", 0, 5, 10), ("target", 0, 3, 30), ("target", 0, 1, 20), ("target", 0, 2, 30),
        ("target", 1, 0, 1), ("target", 1, 1, 2),                      # only 2 rows: train only
        ("source", 0, 0, 99), ("source", 7, 1, 100),
    ])
    s = leave_one_out(df)
    # user 0 sorted: (10,5), (20,1), (30,2), (30,3) -> test iid 3, valid iid 2
    assert s.test[["uid", "iid"]].values.tolist() == [[0, 3]]
    assert s.valid[["uid", "iid"]].values.tolist() == [[0, 2]]
    tgt_train = s.train[s.train.domain == "target"]
    assert sorted(map(tuple, tgt_train[["uid", "iid"]].values)) == [(0, 1), (0, 5), (1, 0), (1, 1)]
    assert (s.train.domain == "source").sum() == 2
    assert list(s.train.columns) == list(df.columns)


def test_partition_is_exact_on_random_data():
    rng = np.random.default_rng(0)
    n = 500
    df = _table(list(zip(["target"] * n, rng.integers(0, 40, n), rng.integers(0, 30, n),
                         rng.integers(0, 50, n))))
    s = leave_one_out(df)
    assert len(s.train) + len(s.valid) + len(s.test) == n
    assert s.test.uid.is_unique and s.valid.uid.is_unique
    assert set(s.test.uid) == set(s.valid.uid)
    counts = df.groupby("uid").size()
    assert set(s.test.uid) == set(counts[counts >= 3].index)
    for u, g in df.groupby("uid"):
        if len(g) < 3:
            continue
        g = g.sort_values(["ts", "iid"])
        t = s.test[s.test.uid == u].iloc[0]
        v = s.valid[s.valid.uid == u].iloc[0]
        assert (t.ts, t.iid) == tuple(g[["ts", "iid"]].iloc[-1])
        assert (v.ts, v.iid) == tuple(g[["ts", "iid"]].iloc[-2])
        assert s.train[(s.train.uid == u)].ts.max() <= v.ts


def test_bad_input_raises_input_error():
    with pytest.raises(InputError, match="missing columns"):
        leave_one_out(pd.DataFrame({"uid": [0]}))
    with pytest.raises(InputError, match="domain"):
        leave_one_out(_table([("source", 0, 0, 1)]))


def _two_domains(seed=0, n=1500):
    rng = np.random.default_rng(seed)
    tgt = list(zip(["target"] * n, rng.integers(0, 40, n), rng.integers(0, 60, n), rng.integers(0, 10**6, n)))
    src = list(zip(["source"] * 300, rng.integers(0, 20, 300), rng.integers(0, 30, 300), rng.integers(0, 99, 300)))
    df = _table(tgt + src).drop_duplicates(["domain", "uid", "iid"]).reset_index(drop=True)
    return df


@pytest.mark.parametrize("scenario", ["dense", "sparse", "cold"])
def test_scenario_splits_hold_out_and_thin_only_target_train_rows(scenario):
    from components.pcrec.split import apply_scenario

    df = _two_domains()
    base = leave_one_out(df)
    s, groups = apply_scenario(base, scenario, fraction=0.5, keep=(1, 3), seed=1)
    # valid/test untouched; a user's held-out items never appear among their training rows
    pd.testing.assert_frame_equal(s.valid, base.valid)
    pd.testing.assert_frame_equal(s.test, base.test)
    tr = s.train[s.train.domain == "target"]
    train_pairs = set(zip(tr.uid, tr.iid))
    held = set(zip(s.valid.uid, s.valid.iid)) | set(zip(s.test.uid, s.test.iid))
    assert not train_pairs & held
    # source rows untouched; train only loses rows
    pd.testing.assert_frame_equal(s.train[s.train.domain == "source"].reset_index(drop=True),
                                  base.train[base.train.domain == "source"].reset_index(drop=True))
    assert set(map(tuple, s.train[["domain", "uid", "iid"]].values)) <= \
        set(map(tuple, base.train[["domain", "uid", "iid"]].values))
    # one row per evaluated user; thinned users are shared (u0..u19 have source rows)
    assert sorted(groups.uid) == sorted(s.test.uid)
    assert groups.shared.tolist() == (groups.uid < 20).tolist()
    thinned = groups[groups.group == scenario]
    counts = tr.groupby("uid").size()
    if scenario == "dense":
        assert len(thinned) == 0 and len(s.train) == len(base.train)
        return
    n_shared = int(groups.shared.sum())
    assert len(thinned) == round(0.5 * n_shared) and thinned.shared.all()
    left = thinned.uid.map(counts).fillna(0).astype(int)
    assert (left == thinned.train_rows).all()
    if scenario == "cold":
        assert (left == 0).all()                      # cold users: zero target training rows
    else:
        assert left.between(1, 3).all()
        btr = base.train[base.train.domain == "target"]
        for u in thinned.uid:                         # the most recent rows are the ones kept
            kept = tr[tr.uid == u].sort_values(["ts", "iid"])
            allr = btr[btr.uid == u].sort_values(["ts", "iid"])
            assert kept[["iid", "ts"]].values.tolist() == allr[["iid", "ts"]].values[-len(kept):].tolist()
    others = groups[groups.group != scenario]
    bcounts = base.train[base.train.domain == "target"].groupby("uid").size()
    assert (others.uid.map(counts) == others.uid.map(bcounts)).all()
