"""A batch of small subgraphs (r-ego views), stored flat, and its Parquet/Arrow form.

:class:`SubgraphBatch` is what the sampler produces, what the ``sample`` stage writes,
what :mod:`components.pcrec.features` turns into node features and what the GIN
encoder consumes (via :meth:`SubgraphBatch.to_dgl` or :meth:`SubgraphBatch.csr`).

Layout (``S`` subgraphs):

* ``query`` (S,): global node id of each subgraph's seed (query node);
* ``node_ptr`` (S+1,) and ``nodes``: global node ids of subgraph ``s`` are
  ``nodes[node_ptr[s]:node_ptr[s+1]]``; the first one is always the seed;
* ``edge_ptr`` (S+1,), ``src``, ``dst``: undirected edges, stored once with
  ``src < dst`` as *local* indices (0-based within the subgraph).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import torch

from components.errors import InputError


def _ptr(counts: torch.Tensor) -> torch.Tensor:
    ptr = torch.zeros(counts.numel() + 1, dtype=torch.int64)
    torch.cumsum(counts, 0, out=ptr[1:])
    return ptr


def _segment_ids(ptr: torch.Tensor) -> torch.Tensor:
    return torch.repeat_interleave(torch.arange(ptr.numel() - 1), ptr[1:] - ptr[:-1])


@dataclass
class SubgraphBatch:
    """Flat batch of subgraphs (see module docstring for the layout)."""

    query: torch.Tensor
    node_ptr: torch.Tensor
    nodes: torch.Tensor
    edge_ptr: torch.Tensor
    src: torch.Tensor
    dst: torch.Tensor

    def __len__(self) -> int:
        return int(self.query.numel())

    @property
    def num_nodes(self) -> torch.Tensor:
        """Node count per subgraph (S,)."""
        return self.node_ptr[1:] - self.node_ptr[:-1]

    @property
    def num_edges(self) -> torch.Tensor:
        """Undirected edge count per subgraph (S,)."""
        return self.edge_ptr[1:] - self.edge_ptr[:-1]

    def node_graph_ids(self) -> torch.Tensor:
        """Subgraph index of every entry of ``nodes``."""
        return _segment_ids(self.node_ptr)

    def directed_edges(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Both directions of every edge as *batch-global* node positions (0..sum n_s-1)."""
        off = self.node_ptr[:-1].repeat_interleave(self.num_edges)
        s, d = self.src.long() + off, self.dst.long() + off
        return torch.cat([s, d]), torch.cat([d, s])

    def degrees(self) -> torch.Tensor:
        """Degree of every node inside its own subgraph."""
        _, d = self.directed_edges()
        return torch.bincount(d, minlength=int(self.node_ptr[-1]))

    def seed_positions(self) -> torch.Tensor:
        """Batch-global position of each subgraph's seed node."""
        return self.node_ptr[:-1]

    def to_dgl(self):
        """A batched ``dgl.DGLGraph`` on CPU (both edge directions, sorted by destination)."""
        import dgl

        s, d = self.directed_edges()
        order = torch.argsort(d * int(self.node_ptr[-1]) + s)
        g = dgl.graph((s[order], d[order]), num_nodes=int(self.node_ptr[-1]))
        g.set_batch_num_nodes(self.num_nodes)
        g.set_batch_num_edges(2 * self.num_edges)
        return g

    def slice(self, a: int, b: int) -> "SubgraphBatch":
        """Subgraphs ``a..b-1`` as a new batch."""
        n0, n1 = int(self.node_ptr[a]), int(self.node_ptr[b])
        e0, e1 = int(self.edge_ptr[a]), int(self.edge_ptr[b])
        return SubgraphBatch(self.query[a:b].clone(), self.node_ptr[a:b + 1] - n0,
                             self.nodes[n0:n1].clone(), self.edge_ptr[a:b + 1] - e0,
                             self.src[e0:e1].clone(), self.dst[e0:e1].clone())

    def select(self, idx) -> "SubgraphBatch":
        """Subgraphs at positions ``idx`` (any order) as a new batch."""
        idx = torch.as_tensor(idx, dtype=torch.int64)
        nn, ne = self.num_nodes[idx], self.num_edges[idx]
        nsel = _ranges(self.node_ptr[idx], nn)
        esel = _ranges(self.edge_ptr[idx], ne)
        return SubgraphBatch(self.query[idx], _ptr(nn), self.nodes[nsel], _ptr(ne),
                             self.src[esel], self.dst[esel])

    # ---------------------------------------------------------------- arrow io
    def to_arrow(self, **columns) -> pa.Table:
        """One row per subgraph: extra ``columns`` (arrays of length S), ``query``,
        ``nodes`` (list<int64>), ``src``/``dst`` (list<int32>, local, undirected)."""
        def lst(ptr, values, typ):
            return pa.ListArray.from_arrays(pa.array(ptr.numpy().astype(np.int32)),
                                            pa.array(values.numpy(), type=typ))
        cols = {k: pa.array(np.asarray(v)) for k, v in columns.items()}
        cols.update(query=pa.array(self.query.numpy()),
                    nodes=lst(self.node_ptr, self.nodes, pa.int64()),
                    src=lst(self.edge_ptr, self.src.to(torch.int32), pa.int32()),
                    dst=lst(self.edge_ptr, self.dst.to(torch.int32), pa.int32()))
        return pa.table(cols)

    @classmethod
    def from_arrow(cls, table: pa.Table, where: str = "subgraph table") -> "SubgraphBatch":
        """Inverse of :meth:`to_arrow` (extra columns are ignored)."""
        missing = {"query", "nodes", "src", "dst"} - set(table.column_names)
        if missing:
            raise InputError(f"missing columns {sorted(missing)}", path=where,
                             fix="re-run the sample stage")

        def unlist(name, dtype):
            col = table.column(name).combine_chunks()
            lens = torch.from_numpy(col.value_lengths().to_numpy(zero_copy_only=False).astype(np.int64))
            vals = col.flatten().to_numpy(zero_copy_only=False).astype(dtype)
            return _ptr(lens), torch.from_numpy(vals)

        node_ptr, nodes = unlist("nodes", np.int64)
        edge_ptr, src = unlist("src", np.int64)
        edge_ptr2, dst = unlist("dst", np.int64)
        if not torch.equal(edge_ptr, edge_ptr2):
            raise InputError("src and dst lists differ in length", path=where, field="src/dst",
                             fix="re-run the sample stage")
        query = torch.from_numpy(table.column("query").to_numpy().astype(np.int64))
        return cls(query, node_ptr, nodes, edge_ptr, src, dst)


def _ranges(starts: torch.Tensor, lens: torch.Tensor) -> torch.Tensor:
    """Concatenation of ``arange(s, s+l)`` for each (s, l), vectorized."""
    total = int(lens.sum())
    if total == 0:
        return torch.zeros(0, dtype=torch.int64)
    ptr = _ptr(lens)
    rel = torch.arange(total) - ptr[:-1].repeat_interleave(lens)
    return starts.repeat_interleave(lens) + rel


def concat(batches: list[SubgraphBatch]) -> SubgraphBatch:
    """Concatenate batches (in order)."""
    nn = torch.cat([b.num_nodes for b in batches])
    ne = torch.cat([b.num_edges for b in batches])
    return SubgraphBatch(torch.cat([b.query for b in batches]), _ptr(nn),
                         torch.cat([b.nodes for b in batches]), _ptr(ne),
                         torch.cat([b.src for b in batches]), torch.cat([b.dst for b in batches]))
