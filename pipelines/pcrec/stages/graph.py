"""graph stage: per-domain bipartite user-item graphs and the shared-user index.

Inputs: ``kcore`` (users/items id maps, for the node counts) and ``split`` (``train``: all
source rows + the target rows that are not held out, so the target graph never sees a
validation or test interaction).

Outputs (see /tmp/schemas.md):
* ``edges``: domain, src, dst — both directions of every distinct user-item pair;
  users are nodes ``0..U-1``, items ``U..U+I-1`` of their domain;
* ``nodes``: domain, node, node_type ('user'|'item'), idx (uid or iid), degree;
* ``shared_users``: user, source_uid, target_uid.

:func:`load_graph` rebuilds a :class:`components.pcrec.graph.BipartiteGraph` from these.
"""
from __future__ import annotations

import pandas as pd

from components.errors import InputError
from components.pcrec.graph import (BipartiteGraph, build_bipartite, edge_table, from_edge_table,
                                    node_table, shared_user_index)

DOMAINS = ("source", "target")


def run_graph(ctx) -> None:
    """Stage body: build both domains' graphs from split/train."""
    users = ctx.input("kcore").df("users")
    items = ctx.input("kcore").df("items")
    train = ctx.input("split").df("train", columns=["domain", "uid", "iid"])
    edges, nodes, stats = [], [], {}
    for dom in DOMAINS:
        n_u = int((users.domain == dom).sum())
        n_i = int((items.domain == dom).sum())
        rows = train[train.domain == dom]
        if n_u == 0 or n_i == 0 or rows.empty:
            raise InputError(f"domain '{dom}' has no users, items or training rows",
                             path="split/train", field="domain",
                             fix="check the domain assignment (data.domain; data.ml1m.source / "
                                 "data.ml1m.target for the ML-1M recipe) and the k-core thresholds "
                                 "(kcore.k_source / kcore.k_target)")
        g = build_bipartite(rows.uid.to_numpy(), rows.iid.to_numpy(), n_u, n_i,
                            where=f"split/train ({dom})")
        edges.append(edge_table(g, dom))
        nodes.append(node_table(g, dom))
        stats[f"{dom}_users"], stats[f"{dom}_items"] = n_u, n_i
        stats[f"{dom}_edges"] = g.num_edges // 2
        ctx.log("%s graph: %d users, %d items, %d edges", dom, n_u, n_i, g.num_edges // 2)
    shared = shared_user_index(users)
    if len(shared) == 0:
        raise InputError("no user appears in both domains after k-core, so nothing can carry "
                         "knowledge from the source to the target", path="kcore/users",
                         field="user", fix="cross-domain transfer needs shared users: check that "
                         "both domains use the same user ids, the domain assignment (data.*), "
                         "and that kcore.k_source / k_target do not remove them")
    ctx.out.write_table("edges", pd.concat(edges, ignore_index=True))
    ctx.out.write_table("nodes", pd.concat(nodes, ignore_index=True))
    ctx.out.write_table("shared_users", shared)
    ctx.out.stats(shared_users=len(shared), **stats)
    ctx.log("%d shared users", len(shared))


def load_graph(artifact, domain: str) -> BipartiteGraph:
    """The :class:`BipartiteGraph` of ``domain`` from a ``graph`` stage artifact."""
    if domain not in DOMAINS:
        raise InputError(f"unknown domain {domain!r}", field="domain", fix=f"use one of {DOMAINS}")
    nodes = artifact.df("nodes", columns=["domain", "node_type"])
    nodes = nodes[nodes.domain == domain]
    e = artifact.table("edges").to_pandas()
    e = e[e.domain == domain]
    n_u = int((nodes.node_type == "user").sum())
    n_i = int((nodes.node_type == "item").sum())
    return from_edge_table(e.src.to_numpy(), e.dst.to_numpy(), n_u, n_i)
