"""Leave-one-out split by time on the target domain.

For every target-domain user with at least ``min_interactions`` (default 3) target rows, the
last row by time is the test row and the second-to-last the validation row; ties in ``ts`` are
broken by ``iid`` (ascending), so the split is deterministic. Everything else — all
source-domain rows, the earlier target rows, and every row of target users with fewer than
``min_interactions`` rows — goes to train. Those short users are therefore never evaluated.

Public API: :func:`leave_one_out`.
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
