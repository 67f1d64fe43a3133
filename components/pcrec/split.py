"""Leave-one-out split by time on the target domain.

For every target-domain user with at least ``min_interactions`` (default 3) target rows, the
last row by time is the test row and the second-to-last the validation row; ties in ``ts`` are
broken by ``iid`` (ascending), so the split is deterministic. Everything else — all
source-domain rows, the earlier target rows, and every row of target users with fewer than
``min_interactions`` rows — goes to train. Those short users are therefore never evaluated.

Scenarios (:func:`apply_scenario`, after the leave-one-out split): ``dense`` keeps train as is;
``sparse`` picks a fraction of the evaluated *shared* users (users that also have source rows)
and keeps only their 1-3 most recent target training rows (the count drawn per user); ``cold``
picks a fraction of them and removes all their target training rows (they are evaluated on
their held-out target rows with no target history). Removed rows are not moved anywhere:
validation and test rows stay as they are, source rows are untouched.

Public API: :func:`leave_one_out`, :func:`apply_scenario`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from components.errors import InputError

REQUIRED_COLUMNS = ("user", "item", "ts", "domain", "uid", "iid")


@dataclass(frozen=True)
class Split:
    """The three parts of a split; all keep the columns of the input table."""

    train: pd.DataFrame
    valid: pd.DataFrame
    test: pd.DataFrame


def leave_one_out(interactions: pd.DataFrame, *, domain: str = "target",
                  min_interactions: int = 3, source: str = "kcore/interactions") -> Split:
    """Split ``interactions`` leave-one-out by time on ``domain``.

    Args:
        interactions: rows with at least the columns ``user, item, ts, domain, uid, iid``.
        domain: the domain whose users are evaluated (``'target'``).
        min_interactions: users with fewer rows in ``domain`` stay wholly in train
            (must be >= 3 so that a user keeps at least one training row).
        source: name of the input, used in error messages.

    Returns:
        :class:`Split` with ``train`` (all other-domain rows + the earlier rows), ``valid``
        (second-to-last row per evaluated user) and ``test`` (last row per evaluated user),
        each sorted by ``(domain, uid, ts, iid)`` with a fresh index.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in interactions.columns]
    if missing:
        raise InputError(f"missing columns {missing}", path=source,
                         fix="run the kcore stage first or supply the columns of kcore/interactions")
    if min_interactions < 3:
        raise InputError(f"min_interactions={min_interactions} < 3 would leave users without "
                         "training rows", param="min_interactions", fix="pass min_interactions >= 3")
    is_dom = (interactions["domain"] == domain).to_numpy()
    if not is_dom.any():
        raise InputError(f"no rows with domain == '{domain}'", path=source, field="domain", param="domain",
                         fix=f"pass the domain the rows are labelled with, or label some rows '{domain}'")

    dom = interactions.loc[is_dom].sort_values(["uid", "ts", "iid"], kind="mergesort")
    uid = dom["uid"].to_numpy()
    # position from the end within each user's (sorted) rows: 0 = last, 1 = second-to-last
    counts = np.bincount(uid)
    n_per_row = counts[uid]
    first = np.r_[0, np.flatnonzero(uid[1:] != uid[:-1]) + 1]
    starts = np.repeat(first, np.diff(np.r_[first, len(uid)]))
    from_end = n_per_row - 1 - (np.arange(len(uid)) - starts)
    evaluated = n_per_row >= min_interactions

    test_mask = evaluated & (from_end == 0)
    valid_mask = evaluated & (from_end == 1)
    train_mask = ~(test_mask | valid_mask)

    order = ["domain", "uid", "ts", "iid"]
    train = pd.concat([interactions.loc[~is_dom], dom.loc[train_mask]], ignore_index=True)
    train = train.sort_values(order, kind="mergesort").reset_index(drop=True)
    valid = dom.loc[valid_mask].reset_index(drop=True)
    test = dom.loc[test_mask].reset_index(drop=True)
    return Split(train=train, valid=valid, test=test)


def shared_users(interactions: pd.DataFrame, domain: str = "target") -> np.ndarray:
    """Raw ``user`` ids that have rows in ``domain`` and in some other domain."""
    dom = interactions["domain"] == domain
    return np.intersect1d(interactions.loc[dom, "user"].unique(), interactions.loc[~dom, "user"].unique())


def apply_scenario(split: Split, scenario: str, *, fraction: float = 0.5, keep: tuple[int, int] = (1, 3),
                   seed: int = 0, domain: str = "target") -> tuple[Split, pd.DataFrame]:
    """Thin the target training rows of some shared users (see the module docstring).

    Args:
        split: a leave-one-out split.
        scenario: ``"dense"`` (no change), ``"sparse"`` or ``"cold"``.
        fraction: share of the evaluated shared users that are thinned.
        keep: ``sparse``: each thinned user keeps ``k`` most recent target training rows, ``k``
            uniform in ``[keep[0], keep[1]]``.
        seed: seed of the user choice and of ``k``.
        domain: the evaluated domain.

    Returns:
        ``(split with the new train, groups)``: ``groups`` has one row per evaluated user of
        ``domain`` (``uid``, ``user``, ``shared`` bool, ``group`` = scenario name for thinned users,
        ``"shared"`` / ``"target-only"`` for the others, ``train_rows`` = target training rows
        left).
    """
    if scenario not in ("dense", "sparse", "cold"):
        raise InputError(f"unknown scenario {scenario!r}", param="scenario", fix="use dense, sparse or cold")
    if not 0.0 <= fraction <= 1.0:
        raise InputError(f"fraction={fraction} is not in [0, 1]", param="fraction", fix="pass 0 <= fraction <= 1")
    lo, hi = int(keep[0]), int(keep[1])
    if not 1 <= lo <= hi:
        raise InputError(f"keep={keep} needs 1 <= keep[0] <= keep[1]", param="keep",
                         fix="pass e.g. keep=(1, 3)")
    train = split.train
    all_rows = pd.concat([train, split.valid, split.test], ignore_index=True)
    shared = shared_users(all_rows, domain)
    ev = split.test[["uid", "user"]].drop_duplicates("uid").sort_values("uid").reset_index(drop=True)
    ev["shared"] = ev.user.isin(shared).to_numpy()
    ev["group"] = np.where(ev.shared, "shared", "target-only")
    is_dom = (train["domain"] == domain).to_numpy()
    if scenario != "dense":
        rng = np.random.default_rng([seed, 0x5CE])
        cand = ev.uid[ev.shared].to_numpy()
        picked = np.sort(rng.choice(cand, size=int(round(fraction * len(cand))), replace=False))
        ev.loc[ev.uid.isin(picked), "group"] = scenario
        dom = train.loc[is_dom]
        if scenario == "cold":
            drop = dom.uid.isin(picked).to_numpy()
        else:
            k = pd.Series(rng.integers(lo, hi + 1, size=len(picked)), index=picked)
            # rows from the end (train is sorted by domain, uid, ts, iid): 0 = most recent
            from_end = dom.groupby("uid").cumcount(ascending=False).to_numpy()
            limit = dom.uid.map(k).to_numpy()
            drop = dom.uid.isin(picked).to_numpy() & (from_end >= np.nan_to_num(limit, nan=np.inf))
        keep_mask = np.ones(len(train), dtype=bool)
        keep_mask[np.flatnonzero(is_dom)[drop]] = False
        train = train.loc[keep_mask].reset_index(drop=True)
        is_dom = (train["domain"] == domain).to_numpy()
    counts = train.loc[is_dom].groupby("uid").size()
    ev["train_rows"] = ev.uid.map(counts).fillna(0).astype(np.int64).to_numpy()
    return Split(train=train, valid=split.valid, test=split.test), ev
