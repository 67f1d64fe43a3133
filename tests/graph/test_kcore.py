"""k-core: equality with brute-force references on random graphs, errors, per-domain helper."""
from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from components.errors import InputError
from components.graph.kcore import kcore, kcore_by_domain, kcore_mask


def brute_force(users, items, k_user, k_item):
    """Reference: remove one under-degree row at a time until none is left (pure Python)."""
    alive = list(range(len(users)))
    changed = True
    while changed:
        changed = False
        du, di = {}, {}
        for r in alive:
            du[users[r]] = du.get(users[r], 0) + 1
            di[items[r]] = di.get(items[r], 0) + 1
        for r in alive:
            if du[users[r]] < k_user or di[items[r]] < k_item:
                alive.remove(r)
                changed = True
                break
    mask = np.zeros(len(users), dtype=bool)
    mask[alive] = True
    return mask


rows = st.lists(st.tuples(st.integers(0, 7), st.integers(0, 6)), min_size=1, max_size=60)


@settings(max_examples=60, deadline=None)
@given(rows=rows, k_user=st.integers(0, 4), k_item=st.integers(0, 4))
def test_matches_brute_force(rows, k_user, k_item):
    users = np.array([r[0] for r in rows])
    items = np.array([r[1] for r in rows])
    ref = brute_force(users.tolist(), items.tolist(), k_user, k_item)
    if not ref.any():
        with pytest.raises(InputError):
            kcore_mask(users, items, k_user, k_item)
        return
    got = kcore_mask(users, items, k_user, k_item)
    assert got.dtype == bool and got.shape == users.shape
    np.testing.assert_array_equal(got, ref)


@settings(max_examples=40, deadline=None)
@given(edges=st.sets(st.tuples(st.integers(0, 9), st.integers(0, 9)), min_size=1, max_size=50),
       k=st.integers(1, 4))
def test_equals_bipartite_graph_kcore(edges, k):
    edges = sorted(edges)
    users = np.array([e[0] for e in edges])
    items = np.array([e[1] for e in edges])
    g = nx.Graph()
    g.add_edges_from((("u", u), ("i", i)) for u, i in edges)
    core = set(nx.k_core(g, k).nodes)
    expected = np.array([("u", u) in core and ("i", i) in core for u, i in edges])
    if not expected.any():
        with pytest.raises(InputError):
            kcore_mask(users, items, k, k)
        return
    np.testing.assert_array_equal(kcore_mask(users, items, k, k), expected)


def test_core_property_and_iteration_log():
    rng = np.random.default_rng(0)
    n = 5000
    users = (rng.pareto(1.2, n) * 10).astype(np.int64) % 400
    items = (rng.pareto(1.0, n) * 5).astype(np.int64) % 300
    res = kcore(users, items, 5, 3)
    m = res.mask
    assert 0 < m.sum() < n
    du = np.bincount(users[m])
    di = np.bincount(items[m])
    assert du[du > 0].min() >= 5 and di[di > 0].min() >= 3
    assert sum(s["rows_removed"] for s in res.iterations) == n - m.sum()
    assert res.iterations[-1]["rows_left"] == m.sum()
    # sparse / negative ids give the same answer as their dense codes
    np.testing.assert_array_equal(kcore_mask(users * 1_000_003 - 7, items - 10**12, 5, 3), m)


def test_empty_core_raises_with_statistics():
    users = np.array([0, 0, 1, 1, 2])
    items = np.array([0, 1, 0, 1, 2])
    with pytest.raises(InputError) as e:
        kcore_mask(users, items, 3, 3)
    msg = str(e.value)
    assert "empty" in msg and "k_user=3" in msg and "5 rows" in msg and "max degree user 2" in msg
    with pytest.raises(InputError, match="integers"):
        kcore_mask(np.array([0.5]), np.array([1]), 1, 1)


def test_by_domain_uses_each_domains_k_and_names_the_domain():
    # source: a 2x2 biclique (survives k=2); target: a path (dies at k=2, survives k=1)
    domains = np.array(["source"] * 4 + ["target"] * 2)
    users = np.array([0, 0, 1, 1, 0, 1])
    items = np.array([0, 1, 0, 1, 0, 1])
    mask, logs = kcore_by_domain(domains, users, items, {"source": 2, "target": (1, 1)})
    assert mask.all() and set(logs) == {"source", "target"}
    with pytest.raises(InputError, match="domain 'target'"):
        kcore_by_domain(domains, users, items, {"source": 2, "target": 2})
    mask, _ = kcore_by_domain(domains, users, items, {"source": (2, 2)})
    assert mask.all()  # domains without a k are kept as they are
