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
