"""Bipartite user-item graphs for PCRec.

One domain's interactions become one *homogeneous* undirected graph (both edge
directions stored): users are nodes ``0..U-1`` and items are nodes ``U..U+I-1``.
The same layout is used by the sampler (CSR arrays), the GIN encoder (DGL graphs)
and the graph tables written by the pipeline.

Public API
----------
* :class:`BipartiteGraph` – node layout + symmetric CSR of one domain.
* :func:`build_bipartite` – from integer ``uid``/``iid`` arrays.
* :func:`from_edge_table` – rebuild from a ``graph/edges`` table (``src``, ``dst``).
* :func:`shared_user_index` – users present in both domains.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from components.errors import InputError

USER, ITEM = "user", "item"


@dataclass(frozen=True)
class BipartiteGraph:
    """A user-item graph in homogeneous layout with a symmetric CSR.

    Attributes:
        num_users: U; user ``u`` is node ``u``.
        num_items: I; item ``i`` is node ``U + i``.
        indptr: int64 tensor (N+1,), CSR row pointers (rows = nodes).
        indices: int64 tensor (2E,), neighbours, sorted within each row.
    """

    num_users: int
    num_items: int
    indptr: torch.Tensor
    indices: torch.Tensor

    @property
    def num_nodes(self) -> int:
        return self.num_users + self.num_items

    @property
    def num_edges(self) -> int:
        """Number of directed edges (twice the number of distinct interactions)."""
        return int(self.indices.numel())

    def degrees(self) -> torch.Tensor:
        """Degree of every node (int64, length N)."""
        return self.indptr[1:] - self.indptr[:-1]

    def edges(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Directed edge list ``(src, dst)`` in CSR order (both directions)."""
        src = torch.repeat_interleave(torch.arange(self.num_nodes), self.degrees())
        return src, self.indices

    def item_node(self, iid) -> torch.Tensor:
        """Node id of item index/indices ``iid``."""
        return torch.as_tensor(iid, dtype=torch.int64) + self.num_users

    def node_type(self) -> np.ndarray:
        """Array of ``'user'``/``'item'`` per node."""
        return np.where(np.arange(self.num_nodes) < self.num_users, USER, ITEM)

    def node_idx(self) -> np.ndarray:
        """uid for user nodes, iid for item nodes."""
        n = np.arange(self.num_nodes)
        return np.where(n < self.num_users, n, n - self.num_users)

    def to_dgl(self):
        """The graph as a ``dgl.DGLGraph`` (CPU, both directions)."""
        import dgl

        src, dst = self.edges()
        return dgl.graph((src, dst), num_nodes=self.num_nodes)


def _csr(src: np.ndarray, dst: np.ndarray, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    key = np.unique(src.astype(np.int64) * n + dst.astype(np.int64))  # sorted, dedup
    s, d = key // n, key % n
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(s, minlength=n), out=indptr[1:])
    return torch.from_numpy(indptr), torch.from_numpy(d.astype(np.int64))


def build_bipartite(uid, iid, num_users: int | None = None, num_items: int | None = None,
                    *, where: str = "interactions") -> BipartiteGraph:
    """Build the symmetric bipartite graph of one domain.

    Args:
        uid, iid: integer arrays of equal length (one row per interaction;
            duplicates are merged).
        num_users, num_items: sizes of the id spaces (default: max id + 1), so
            that users/items without interactions still get a node.
        where: name used in error messages (file or table).

    Raises:
        InputError: negative ids, ids outside the given sizes, or length mismatch.
    """
    uid = np.asarray(uid, dtype=np.int64)
    iid = np.asarray(iid, dtype=np.int64)
    if uid.shape != iid.shape:
        raise InputError("uid and iid columns differ in length", path=where,
                         fix="pass one uid and one iid per interaction")
    U = int(uid.max()) + 1 if num_users is None and uid.size else int(num_users or 0)
    I = int(iid.max()) + 1 if num_items is None and iid.size else int(num_items or 0)
    for name, arr, size in (("uid", uid, U), ("iid", iid, I)):
        bad = np.flatnonzero((arr < 0) | (arr >= size))
        if bad.size:
            raise InputError(f"id {arr[bad[0]]} outside 0..{size - 1}", path=where,
                             row=int(bad[0]), field=name,
                             fix="re-index ids to be contiguous per domain (run kcore)")
    items = iid + U
    src = np.concatenate([uid, items])
    dst = np.concatenate([items, uid])
    indptr, indices = _csr(src, dst, U + I)
    return BipartiteGraph(U, I, indptr, indices)


def from_edge_table(src, dst, num_users: int, num_items: int) -> BipartiteGraph:
    """Rebuild a :class:`BipartiteGraph` from a directed edge list (as in ``graph/edges``)."""
    indptr, indices = _csr(np.asarray(src), np.asarray(dst), num_users + num_items)
    return BipartiteGraph(int(num_users), int(num_items), indptr, indices)


def node_table(g: BipartiteGraph, domain: str) -> pd.DataFrame:
    """``graph/nodes`` rows: domain, node, node_type, idx, degree."""
    return pd.DataFrame({
        "domain": domain,
        "node": np.arange(g.num_nodes, dtype=np.int64),
        "node_type": g.node_type(),
        "idx": g.node_idx().astype(np.int64),
        "degree": g.degrees().numpy().astype(np.int64),
    })


def edge_table(g: BipartiteGraph, domain: str) -> pd.DataFrame:
    """``graph/edges`` rows: domain, src, dst (both directions)."""
    src, dst = g.edges()
    return pd.DataFrame({"domain": domain, "src": src.numpy(), "dst": dst.numpy()})


def shared_user_index(users: pd.DataFrame, source: str = "source",
                      target: str = "target") -> pd.DataFrame:
    """Users present in both domains.

    Args:
        users: table with columns ``domain, user, uid`` (e.g. ``kcore/users``).

    Returns:
        DataFrame ``user, source_uid, target_uid`` sorted by ``source_uid``.
    """
    missing = {"domain", "user", "uid"} - set(users.columns)
    if missing:
        raise InputError(f"missing columns {sorted(missing)}", path="users table",
                         fix="pass kcore/users (domain, user, uid)")
    s = users[users["domain"] == source][["user", "uid"]].rename(columns={"uid": "source_uid"})
    t = users[users["domain"] == target][["user", "uid"]].rename(columns={"uid": "target_uid"})
    out = s.merge(t, on="user", how="inner").sort_values("source_uid", kind="stable")
    return out.reset_index(drop=True).astype({"source_uid": "int64", "target_uid": "int64"})
