"""sample stage: the positive pairs (two RWR r-ego views per query) for pre-training.

For each of ``sample.epochs`` epochs, ``sample.queries_per_epoch`` query nodes (users and
items, drawn without replacement with probability ~ degree^``sample.query_degree_power``;
all nodes when null) of the *source* graph get two
independent views by :func:`components.pcrec.sampler.sample_views` (random walk with
restart kept within ``sample.r`` hops, at most ``sample.max_nodes`` nodes). Sampling runs in
vectorized batches of ``sample.batch_size`` queries.

The batches fan out over the cluster (:mod:`pipelines.core.fanout`; unit = one batch,
``sample.fanout.shard_size`` batches per shard task). A view depends only on (seed, epoch,
query, view), and a batch is the same whichever shard computes it, so ``train`` (read back in
shard order) is identical for any shard size or node count. Each shard reads the graph from
the artifact root and writes its part of ``train`` there.

Output ``train``: one row per view — epoch, view (0|1), query (source node id), nodes
(list<int64>, global node ids, query first), src/dst (list<int32>, local indices of the
induced undirected edges, src < dst). ``pretrain`` reads it; node features are computed
there (they include random sign flips that must differ per epoch).
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa
import torch

from components.pcrec.sampler import RWRConfig, draw_queries, sample_views
from pipelines.core.fanout import fan_out
from pipelines.core.hints import config_hints
from pipelines.pcrec.stages.graph import load_graph


def rwr_config(cfg) -> RWRConfig:
    """The sampler parameters of a ``sample`` config section."""
    with config_hints(r="set sample.r to 1, 2 or 3", restart_prob="set sample.restart_prob in [0, 1)",
                      max_nodes="set sample.max_nodes >= 2, sample.num_walkers >= 1 and "
                                "sample.walk_length >= 1",
                      min_steps="set sample.min_steps >= 1"):
        return RWRConfig(r=cfg.r, restart_prob=cfg.restart_prob, max_nodes=cfg.max_nodes,
                         num_walkers=cfg.num_walkers, walk_length=cfg.walk_length,
                         degree_budget=cfg.degree_budget, min_steps=cfg.min_steps)


_GRAPHS: dict[str, object] = {}   # per worker process: the source graph of a graph artifact


def _source_graph(artifact):
    g = _GRAPHS.get(artifact.fingerprint)
    if g is None:
        _GRAPHS.clear()
        g = _GRAPHS[artifact.fingerprint] = load_graph(artifact, "source")
    return g


def sample_shard(shard, _shared) -> dict:
    """One shard: the view pairs of the batches ``shard.items`` (``(epoch, queries)`` each)."""
    cfg = shard.cfg.sample
    g = _source_graph(shard.input("graph"))
    rwr = rwr_config(cfg)
    parts, sizes = [], []
    for epoch, q in shard.items:
        views = sample_views(g, torch.from_numpy(q), rwr, seed=shard.seed + 1_000_003 * epoch)
        for v, b in enumerate(views):
            parts.append(b.to_arrow(epoch=np.full(len(b), epoch, np.int32),
                                    view=np.full(len(b), v, np.int8)))
            sizes.append(b.num_nodes.to(torch.float64))
    shard.out.write_table("train", pa.concat_tables(parts))
    n = torch.cat(sizes)
    return {"views": int(n.numel()), "nodes": float(n.sum()), "capped": int((n >= cfg.max_nodes).sum())}


def run_sample(ctx) -> None:
    """Stage body: sample all epochs' view pairs; shards write the parts of table ``train``."""
    cfg = ctx.cfg.sample
    g = load_graph(ctx.input("graph"), "source")
    rwr_config(cfg)   # bad sampler settings fail here, before any shard starts
    jobs = []
    for e in range(cfg.epochs):
        q = draw_queries(g, cfg.queries_per_epoch, ctx.seed, e, cfg.query_degree_power)
        jobs += [(e, q[i:i + cfg.batch_size]) for i in range(0, len(q), cfg.batch_size)]
    del g
    res = fan_out(ctx, "sample", sample_shard, len(jobs), cfg.fanout, items=jobs)
    views = sum(s["views"] for s in res.stats)
    mean_nodes = sum(s["nodes"] for s in res.stats) / max(1, views)
    ctx.out.stats(views=views, epochs=cfg.epochs, mean_nodes=mean_nodes,
                  capped_fraction=sum(s["capped"] for s in res.stats) / max(1, views),
                  shards=len(res.shards), nodes=len(res.nodes))
    ctx.log("%d views (%d epochs), mean %.1f nodes per view", views, cfg.epochs, mean_nodes)
