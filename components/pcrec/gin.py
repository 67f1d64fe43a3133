"""GIN subgraph encoder (as in GCC) with two interchangeable execution paths.

``GINEncoder`` maps a batch of subgraphs to one L2-normalised vector per subgraph:

    h0 = [positional features, seed flag, degree embedding]
    h_l = ReLU(BN(GINConv_l(h_{l-1})))            l = 1..L   (sum aggregator, MLP update)
    z  = Linear(concat_l sum_nodes(h_l))          readout over all layers
    out = z / ||z||

Execution paths (same parameters, same result):

* ``"dgl"``: ``dgl.nn.GINConv`` on the batched ``DGLGraph`` (CPU; PyPI DGL is CPU-only);
* ``"sparse"``: the same ``GINConv`` modules' ``eps`` and ``apply_func`` applied to a
  neighbour sum computed as ``torch.sparse`` CSR @ dense, with the CSR taken from the
  batched graph (``adj_tensors('csc')``: rows = destination nodes) and moved to the
  features' device. This is what runs on CUDA.

``path="auto"`` (default) uses ``"dgl"`` when the features are on the graph's device
and ``"sparse"`` otherwise.
"""
from __future__ import annotations

import warnings

import torch
from torch import nn

from components.errors import ConfigError


def _mlp(i: int, h: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(i, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Linear(h, h))


def sparse_adjacency(g, device) -> torch.Tensor:
    """Sparse CSR (N, N) with ``A[dst, src] = 1`` from a DGL graph, on ``device``."""
    indptr, indices, _ = g.adj_tensors("csc")
    n = g.num_nodes()
    vals = torch.ones(indices.numel(), device=device)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(indptr.to(device), indices.to(device), vals, (n, n),
                                       check_invariants=False)


class GINEncoder(nn.Module):
    """GCC-style GIN encoder of subgraph batches.

    Args:
        in_dim: width of ``x`` (positional features + seed flag).
        hidden: hidden width of every GIN layer.
        out_dim: output dimension (embedding size).
        num_layers: number of GIN layers.
        degree_dim: width of the degree embedding (0 disables it).
        max_degree: degrees above are clamped.
        path: ``"auto"``, ``"dgl"`` or ``"sparse"``.
    """

    def __init__(self, in_dim: int, hidden: int = 64, out_dim: int = 64, num_layers: int = 3,
                 degree_dim: int = 16, max_degree: int = 128, path: str = "auto"):
        super().__init__()
        from dgl.nn import GINConv

        if path not in ("auto", "dgl", "sparse"):
            raise ConfigError(f"GIN path must be auto|dgl|sparse, got {path!r}")
        self.path, self.max_degree = path, max_degree
        self.hparams = {"in_dim": in_dim, "hidden": hidden, "out_dim": out_dim,
                        "num_layers": num_layers, "degree_dim": degree_dim,
                        "max_degree": max_degree}
        self.degree_emb = nn.Embedding(max_degree + 1, degree_dim) if degree_dim > 0 else None
        dims = [in_dim + degree_dim] + [hidden] * num_layers
        self.convs = nn.ModuleList(GINConv(_mlp(dims[i], hidden), "sum") for i in range(num_layers))
        self.norms = nn.ModuleList(nn.BatchNorm1d(hidden) for _ in range(num_layers))
        self.readout = nn.Linear(hidden * num_layers, out_dim)

    @classmethod
    def from_hparams(cls, hparams: dict, path: str = "auto") -> "GINEncoder":
        """Rebuild an encoder from :attr:`hparams` (e.g. read from ``encoder.json``)."""
        keys = ("in_dim", "hidden", "out_dim", "num_layers", "degree_dim", "max_degree")
        return cls(**{k: int(hparams[k]) for k in keys}, path=path)

    def _inputs(self, x: torch.Tensor, degree: torch.Tensor) -> torch.Tensor:
        if self.degree_emb is None:
            return x
        return torch.cat([x, self.degree_emb(degree.clamp(max=self.max_degree))], dim=1)

    def resolve_path(self, g, device) -> str:
        """The path used for a graph ``g`` and features on ``device``."""
        if self.path != "auto":
            return self.path
        return "dgl" if torch.device(device) == g.device else "sparse"

    def forward(self, g, x: torch.Tensor, degree: torch.Tensor) -> torch.Tensor:
        """Encode a batched DGL graph ``g`` (on CPU) with node features ``x`` and
        ``degree`` (any device). Returns (batch_size, out_dim), L2-normalised."""
        path = self.resolve_path(g, x.device)
        h = self._inputs(x, degree)
        adj = sparse_adjacency(g, x.device) if path == "sparse" else None
        gid = torch.repeat_interleave(torch.arange(g.batch_size, device=x.device),
                                      g.batch_num_nodes().to(x.device))
        pooled = []
        for conv, norm in zip(self.convs, self.norms):
            if adj is None:
                h = conv(g, h)
            else:
                h = conv.apply_func((1 + conv.eps) * h + torch.sparse.mm(adj, h))
            h = torch.relu(norm(h))
            pooled.append(torch.zeros(g.batch_size, h.shape[1], device=h.device,
                                      dtype=h.dtype).index_add_(0, gid, h))
        z = self.readout(torch.cat(pooled, dim=1))
        return nn.functional.normalize(z, p=2, dim=1)
