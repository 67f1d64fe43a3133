"""Synthetic generator: determinism, exact size, uniqueness, two domains, power law, signal."""
from __future__ import annotations

import numpy as np
import pytest

from components.data.synthetic import generate, generate_arrays
from components.data.schema import INTERACTIONS_SCHEMA
from components.errors import ConfigError

ARGS = dict(n_users=2000, n_items_source=600, n_items_target=400, n_topics=6, seed=3)


def test_deterministic_exact_size_unique():
    a = generate_arrays(20_000, **ARGS)
    b = generate_arrays(20_000, **ARGS)
    c = generate_arrays(20_000, **{**ARGS, "seed": 4})
    assert len(a) == 20_000
    for f in ("user", "item", "domain", "rating", "ts"):
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    assert not np.array_equal(a.item, c.item)
    key = (a.user * 2 + a.domain) * 600 + a.item
    assert len(np.unique(key)) == len(key)
    assert set(np.unique(a.rating)) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert a.item[a.domain == 1].max() < 400


def test_shape_two_domains_shared_users_power_law():
    a = generate_arrays(20_000, **ARGS)
    src, tgt = set(a.user[a.domain == 0]), set(a.user[a.domain == 1])
    assert len(src & tgt) > 100 and len(src - tgt) > 0 and len(tgt - src) > 0
    deg = np.bincount(a.user)
    deg = deg[deg > 0]
    assert deg.max() > 5 * np.median(deg)  # heavy tail
    item_deg = np.bincount(a.item[a.domain == 0])
    assert item_deg.max() > 5 * np.median(item_deg)


def test_source_behaviour_predicts_target_behaviour():
    """Users with similar source items have more similar target items than random pairs."""
    a = generate_arrays(30_000, **ARGS)
    n_u = a.user.max() + 1
    S = np.zeros((n_u, 600)); T = np.zeros((n_u, 400))
    np.add.at(S, (a.user[a.domain == 0], a.item[a.domain == 0]), 1)
    np.add.at(T, (a.user[a.domain == 1], a.item[a.domain == 1]), 1)
    shared = np.flatnonzero((S.sum(1) >= 5) & (T.sum(1) >= 5))
    S, T = S[shared], T[shared]
    S /= np.linalg.norm(S, axis=1, keepdims=True); T /= np.linalg.norm(T, axis=1, keepdims=True)
    sim_s, sim_t = S @ S.T, T @ T.T
    np.fill_diagonal(sim_s, -1)
    nearest = sim_s.argmax(1)
    near = sim_t[np.arange(len(shared)), nearest].mean()
    rand = sim_t[np.triu_indices(len(shared), 1)].mean()
    assert near > 1.5 * rand


def test_table_and_bad_sizes():
    t = generate(500, **ARGS)
    assert t.schema.equals(INTERACTIONS_SCHEMA) and t.num_rows == 500
    assert t.column("item")[0].as_py()[0] in "st" and t.column("user")[0].as_py().startswith("u")
    with pytest.raises(ConfigError):
        generate_arrays(10**7, n_users=10, n_items_source=10, n_items_target=10)
