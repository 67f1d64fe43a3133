"""The target-domain arrays every rec stage needs, read from kcore + split artifacts."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from components.errors import InputError


@dataclass
class TargetData:
    """Target domain in integer ids (``uid``/``iid`` of kcore, contiguous)."""

    n_users: int
    n_items: int
    train_u: np.ndarray
    train_i: np.ndarray
    valid_u: np.ndarray
    valid_i: np.ndarray
    test_u: np.ndarray
    test_i: np.ndarray
    users: pd.DataFrame      # all kcore users (domain, user, uid)
    items: pd.DataFrame      # all kcore items (domain, item, iid)

    def target_users(self) -> pd.DataFrame:
        return self.users[self.users.domain == "target"].sort_values("uid")

    def target_items(self) -> pd.DataFrame:
        return self.items[self.items.domain == "target"].sort_values("iid")

    def shared_users(self) -> pd.DataFrame:
        """``(user, source_uid, target_uid)`` of users present in both domains."""
        s = self.users[self.users.domain == "source"][["user", "uid"]]
        t = self.users[self.users.domain == "target"][["user", "uid"]]
        return s.merge(t, on="user", suffixes=("_s", "_t")).rename(
            columns={"uid_s": "source_uid", "uid_t": "target_uid"})


def _check(df: pd.DataFrame, n: int, col: str, where: str) -> None:
    if len(df) and (df[col].min() < 0 or df[col].max() >= n):
        raise InputError(f"{col} outside 0..{n - 1}", path=where, field=col,
                         fix="kcore ids must be contiguous per domain; re-run from kcore")


def load_target(ctx) -> TargetData:
    """Read kcore/users, kcore/items and split/{train,valid,test} of the target domain."""
    users = ctx.input("kcore").df("users")
    items = ctx.input("kcore").df("items")
    n_u = int((users.domain == "target").sum())
    n_i = int((items.domain == "target").sum())
    if n_u == 0 or n_i == 0:
        raise InputError("no target-domain users or items", path="kcore/users",
                         fix="check the domain assignment (data.domain; data.ml1m.target for the "
                             "ML-1M recipe) and the k-core threshold kcore.k_target")
    sp = ctx.input("split")
    cols = ["domain", "uid", "iid"]
    tr = sp.df("train", columns=cols)
    tr = tr[tr.domain == "target"]
    va, te = sp.df("valid", columns=cols), sp.df("test", columns=cols)
    for name, df in (("split/train", tr), ("split/valid", va), ("split/test", te)):
        _check(df, n_u, "uid", name)
        _check(df, n_i, "iid", name)
    a = lambda s: s.to_numpy(dtype=np.int64)  # noqa: E731
    return TargetData(n_u, n_i, a(tr.uid), a(tr.iid), a(va.uid), a(va.iid), a(te.uid), a(te.iid),
                      users, items)
