"""target_embed stage: the pre-trained encoder applied to target-domain ego subgraphs.

Transfer mode (c) of PCRec: the GIN encoder pre-trained on the source graph embeds every
target user and item from its r-ego view of the *target* graph (built from split/train
only, so held-out interactions are never seen), with the sampler settings, positional
feature size and degree input (whole-graph degrees are the *target* graph's) it was trained
with (``encoder.json``; an encoder.json without ``degree_input`` means in-view degrees). Modes (a)/(b) also use these vectors
for nodes that have no source embedding (target-only users, target items).

Output ``embeddings``: domain ('target'), node_type, idx, embedding (list<float32>).

The nodes fan out over the cluster (:mod:`pipelines.core.fanout`; unit = one batch of
``target_embed.batch_size`` nodes, ``target_embed.fanout.shard_size`` batches per shard). A
view is seeded per node and every batch is the same whichever shard encodes it, so the table
is identical for any shard size or node count. Each shard loads the encoder and the target
graph from the artifact root and writes its part of ``embeddings`` there.
"""
from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import torch

from components.errors import InputError
from components.pcrec.encode import embed_nodes
from components.pcrec.gin import GINEncoder
from components.pcrec.sampler import RWRConfig
from pipelines.core.fanout import fan_out
from pipelines.core.train import load_state
from pipelines.pcrec.factors import list_column
from pipelines.pcrec.stages.graph import load_graph


def load_encoder(artifact) -> tuple[GINEncoder, dict]:
    """The pre-trained encoder (eval mode) and its ``encoder.json`` from a pretrain artifact."""
    with open(artifact.path("encoder.json")) as f:
        meta = json.load(f)
    try:
        enc = GINEncoder.from_hparams(meta["gin"])
        enc.load_state_dict(load_state(artifact.path("encoder.pt")))
    except (KeyError, RuntimeError) as e:
        raise InputError(f"cannot load the pre-trained encoder: {e}", path=artifact.dir,
                         fix="re-run the pretrain stage") from e
    return enc.eval(), meta


_CACHE: dict[tuple, tuple] = {}   # per worker process: (encoder, meta, target graph)


def _loaded(pretrain, graph):
    key = (pretrain.fingerprint, graph.fingerprint)
    if key not in _CACHE:
        _CACHE.clear()
        enc, meta = load_encoder(pretrain)
        _CACHE[key] = (enc, meta, load_graph(graph, "target"))
    return _CACHE[key]


def embed_shard(shard, _shared) -> dict:
    """One shard: embeddings of the target nodes in the batches ``shard.items`` ((lo, hi) each)."""
    enc, meta, g = _loaded(shard.input("pretrain"), shard.input("graph"))
    lo, hi = shard.items[0][0], shard.items[-1][1]
    emb = embed_nodes(enc, g, torch.arange(lo, hi), RWRConfig(**meta["sampler"]), int(meta["pos_dim"]),
                      seed=shard.seed, batch_size=shard.cfg.target_embed.batch_size,
                      degree_input=meta.get("degree_input", "subgraph"))
    shard.out.write_table("embeddings", pa.table({
        "domain": pa.array(["target"] * (hi - lo)),
        "node_type": pa.array(np.asarray(g.node_type())[lo:hi]),
        "idx": pa.array(g.node_idx()[lo:hi].astype(np.int64)),
        "embedding": list_column(emb.numpy())}))
    return {"nodes": hi - lo, "dim": int(emb.shape[1])}


def run_target_embed(ctx) -> None:
    """Stage body: embed all target-domain nodes with the pre-trained encoder (in shards)."""
    cfg = ctx.cfg.target_embed
    load_encoder(ctx.input("pretrain"))   # a broken encoder fails here, before any shard starts
    g = load_graph(ctx.input("graph"), "target")
    batches = [(s, min(s + cfg.batch_size, g.num_nodes)) for s in range(0, g.num_nodes, cfg.batch_size)]
    res = fan_out(ctx, "target_embed", embed_shard, len(batches), cfg.fanout, items=batches)
    dim = res.stats[0]["dim"] if res.stats else 0
    ctx.out.stats(users=g.num_users, items=g.num_items, dim=dim, shards=len(res.shards))
    ctx.log("embedded %d target users and %d items (dim %d)", g.num_users, g.num_items, dim)
