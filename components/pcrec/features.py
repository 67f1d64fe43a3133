"""GCC node features of sampled subgraphs, computed for a whole batch at once.

For every node of every subgraph (Qiu et al., GCC, KDD 2020):

* **positional features**: the top-``pos_dim`` eigenvectors of the subgraph's
  normalised adjacency ``D^-1/2 A D^-1/2`` (equivalently, the eigenvectors of the
  normalised Laplacian with the smallest eigenvalues), rows L2-normalised, zero-padded
  when the subgraph has fewer nodes; optionally each eigenvector's sign is flipped at
  random (the sign is arbitrary, so this is a free augmentation);
* **seed flag**: 1 for the query node, 0 elsewhere;
* **degree**: an integer index the encoder embeds. ``degree_input="subgraph"`` (GCC): the
  node's degree inside the sampled view. ``degree_input="graph"``: the node's degree in the
  *whole* graph, log-binned (:func:`log_degree_bin`, 8 bins per doubling). A view's in-subgraph
  degrees are cut by the walk (a hub seen through a 30-step walk looks like a degree-10 node), so
  two views of one node disagree and nodes cannot be told apart: on the ML-1M Comedy source graph
  an encoder trained 150 steps with in-subgraph degrees retrieved a node's other view (top-1 of
  1024) 1.4% of the time; with whole-graph degrees 7.7% untrained and 10.3% trained (issue 11). The
  whole-graph degree is still a structural feature (no node identity), computed on whichever
  graph the encoder is applied to (source for pre-training, target for ``target_embed``).

The eigendecompositions run as one batched ``torch.linalg.eigh`` on zero-padded
dense matrices; padding rows get a large diagonal so their eigenvectors sort last and
never mix with a real subgraph's.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from components.errors import ConfigError
from components.pcrec.subgraphs import SubgraphBatch

_PAD_EIG = -10.0  # eigenvalue given to padding slots (real ones lie in [-1, 1])


@dataclass
class NodeFeatures:
    """Inputs of the GIN encoder for one batch.

    Attributes:
        x: float32 (N, pos_dim + 1): positional features then the seed flag.
        degree: int64 (N,): in-subgraph degree.
    """

    x: torch.Tensor
    degree: torch.Tensor

    def to(self, device) -> "NodeFeatures":
        return NodeFeatures(self.x.to(device), self.degree.to(device))


def positional_features(batch: SubgraphBatch, pos_dim: int, *, sign_flip: bool = False,
                        generator: torch.Generator | None = None) -> torch.Tensor:
    """Laplacian-eigenvector positional features (N, pos_dim), see module docstring."""
    S = len(batch)
    n = batch.num_nodes
    m = int(n.max()) if S else 0
    N = int(batch.node_ptr[-1])
    if S == 0 or m == 0 or pos_dim == 0:
        return torch.zeros((N, pos_dim))
    gid = batch.node_graph_ids()
    local = torch.arange(N) - batch.node_ptr[:-1].repeat_interleave(n)
    s, d = batch.directed_edges()
    k = min(pos_dim, m)
    signs = (torch.randint(0, 2, (S, 1, k), generator=generator).to(torch.float32) * 2 - 1
             if sign_flip else None)
    # eigendecompositions in size buckets (multiples of 16 nodes): a batch with one large view
    # does not pad every small one to its size (eigh costs ~ size^3)
    bucket = ((n + 15) // 16) * 16
    sg = torch.empty(S, dtype=torch.int64)          # subgraph -> row within its bucket
    feat_all = torch.zeros((N, k))
    for b in torch.unique(bucket).tolist():
        sel = torch.nonzero(bucket == b).squeeze(1)
        sg[sel] = torch.arange(sel.numel())
        nodes_in = torch.isin(gid, sel)
        es = nodes_in[s]
        A = torch.zeros((sel.numel(), b, b), dtype=torch.float32)  # float32: ~1.5x faster eigh
        A[sg[gid[s[es]]], local[s[es]], local[d[es]]] = 1.0
        deg = A.sum(-1)
        dinv = deg.clamp(min=1.0).rsqrt()
        M = dinv[:, :, None] * A * dinv[:, None, :]
        pad = torch.arange(b)[None, :] >= n[sel][:, None]           # (S_b, b)
        M = M + torch.diag_embed(pad.to(M.dtype) * _PAD_EIG)
        _, vec = torch.linalg.eigh(M)                             # ascending eigenvalues
        kb = min(k, b)
        vec = vec.flip(-1)[:, :, :kb]                             # largest first
        if signs is not None:
            vec = vec * signs[sel][:, :, :kb]
        rows = torch.nonzero(nodes_in).squeeze(1)
        feat_all[rows, :kb] = vec[sg[gid[rows]], local[rows]]
    feat = torch.nn.functional.normalize(feat_all, p=2, dim=1)   # (N, k)
    if k < pos_dim:
        feat = torch.nn.functional.pad(feat, (0, pos_dim - k))
    return feat


DEGREE_INPUTS = ("graph", "subgraph")


def log_degree_bin(degree: torch.Tensor) -> torch.Tensor:
    """``floor(8 * log2(1 + degree))`` (int64): 8 bins per doubling, 0 for degree 0; a
    degree-128 clamp of the encoder then covers degrees up to 2^16."""
    return torch.floor(8.0 * torch.log2(1.0 + degree.to(torch.float64))).to(torch.int64)


def subgraph_features(batch: SubgraphBatch, pos_dim: int, *, sign_flip: bool = False,
                      generator: torch.Generator | None = None,
                      graph_degree: torch.Tensor | None = None) -> NodeFeatures:
    """All encoder inputs of a batch: positional features + seed flag, and degrees.

    ``graph_degree`` (degree of every node of the whole graph, indexed by global node id):
    when given, the degree input is :func:`log_degree_bin` of it (``degree_input="graph"``);
    otherwise the in-subgraph degree (GCC)."""
    pos = positional_features(batch, pos_dim, sign_flip=sign_flip, generator=generator)
    seed = torch.zeros((pos.shape[0], 1))
    seed[batch.seed_positions()] = 1.0
    if graph_degree is None:
        degree = batch.degrees()
    else:
        graph_degree = torch.as_tensor(graph_degree)
        if batch.nodes.numel() and int(batch.nodes.max()) >= graph_degree.numel():
            raise ConfigError(f"graph_degree has {graph_degree.numel()} entries but the batch has node id "
                              f"{int(batch.nodes.max())}", param="graph_degree")
        degree = log_degree_bin(graph_degree[batch.nodes])
    return NodeFeatures(torch.cat([pos, seed], dim=1), degree)
