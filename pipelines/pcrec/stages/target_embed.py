"""target_embed stage: the pre-trained encoder applied to target-domain ego subgraphs.

Transfer mode (c) of PCRec: the GIN encoder pre-trained on the source graph embeds every
target user and item from its r-ego view of the *target* graph (built from split/train
only, so held-out interactions are never seen), with the sampler settings and positional
feature size it was trained with (``encoder.json``). Modes (a)/(b) also use these vectors
for nodes that have no source embedding (target-only users, target items).

Output ``embeddings``: domain ('target'), node_type, idx, embedding (list<float32>).
"""
from __future__ import annotations

import json

import torch

from components.errors import InputError
from components.pcrec.encode import embed_nodes
from components.pcrec.gin import GINEncoder
from components.pcrec.sampler import RWRConfig
from pipelines.pcrec.stages.graph import load_graph
from pipelines.pcrec.stages.pretrain import embedding_table
from pipelines.core.train import load_state


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


def run_target_embed(ctx) -> None:
    """Stage body: embed all target-domain nodes with the pre-trained encoder."""
    cfg = ctx.cfg.target_embed
    enc, meta = load_encoder(ctx.input("pretrain"))
    g = load_graph(ctx.input("graph"), "target")
    rwr = RWRConfig(**meta["sampler"])
    emb = embed_nodes(enc, g, torch.arange(g.num_nodes), rwr, int(meta["pos_dim"]),
                      seed=ctx.seed, batch_size=cfg.batch_size,
                      progress=lambda it: ctx.progress(it, desc="embed target"))
    ctx.out.write_table("embeddings", embedding_table("target", g, emb))
    ctx.out.stats(users=g.num_users, items=g.num_items, dim=int(emb.shape[1]))
    ctx.log("embedded %d target users and %d items (dim %d)", g.num_users, g.num_items,
            emb.shape[1])
