"""pretrain stage: GCC/PCRec contrastive pre-training of a GIN encoder with MoCo, on Ray Train.

Inputs: ``graph`` (the source graph, for the final embeddings) and ``sample`` (``train``:
two views per query per sampled epoch). A ``TorchTrainer`` (``pretrain.trainer``: workers,
GPU) runs :func:`train_loop` data-parallel: every worker takes an equal share of each
epoch's pairs, computes GCC features (with random eigenvector sign flips), and does MoCo
steps (query encoder by DDP-averaged gradients; key encoder by momentum; keys of all
workers are gathered into one queue). Pre-training epoch ``e`` uses sampled epoch
``e % sample.epochs``. Every epoch ends with a checkpoint (model, key encoder, queue,
optimiser, loss curve) under the stage's scratch dir; a re-run after a killed driver, or
Ray Train after a worker failure, resumes from it. All randomness is a function of
``(seed, epoch)``, so a resumed run ends in the same state as an uninterrupted one.

Outputs:
* ``embeddings``: domain ('source'), node_type, idx, embedding (list<float32>, size
  ``pretrain.dim``) of every source user and item (one ego view each, query encoder in
  eval mode). The shared users' rows are what finetune modes (a)/(b) carry over.
* ``encoder.pt`` (GIN state dict of the query encoder) + ``encoder.json`` (its
  hyper-parameters, ``pos_dim`` and the sampler settings), used by ``target_embed``.
* ``curve``: epoch, loss (mean InfoNCE), pairs, seconds, pairs_per_s, workers.
"""
from __future__ import annotations

import time
from dataclasses import asdict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from components.errors import InputError
from components.pcrec.encode import embed_nodes
from components.pcrec.features import subgraph_features
from components.pcrec.gin import GINEncoder
from components.pcrec.moco import MoCo
from components.pcrec.subgraphs import SubgraphBatch
from pipelines.core import train as rt
from pipelines.pcrec.factors import list_column
from pipelines.pcrec.stages.graph import load_graph
from pipelines.pcrec.stages.sample import rwr_config


def build_moco(hp: dict, seed: int) -> MoCo:
    """Query/key GIN encoders + queue from the loop hyper-parameters (same on every worker)."""
    torch.manual_seed(seed)
    enc = GINEncoder(hp["pos_dim"] + 1, hidden=hp["hidden"], out_dim=hp["dim"],
                     num_layers=hp["num_layers"], degree_dim=hp["degree_dim"],
                     max_degree=hp["max_degree"])
    return MoCo(enc, hp["dim"], queue_size=hp["queue_size"], momentum=hp["momentum"],
                temperature=hp["temperature"], generator=torch.Generator().manual_seed(seed + 1))


def epoch_pairs(table: pa.Table, epoch: int) -> tuple[SubgraphBatch, SubgraphBatch]:
    """The (view 0, view 1) batches of one sampled epoch, aligned by query."""
    t = table.filter(pc.equal(table.column("epoch"), epoch))
    out = []
    for v in (0, 1):
        tv = t.filter(pc.equal(t.column("view"), v)).sort_by("query")
        out.append(SubgraphBatch.from_arrow(tv, where=f"sample/train (epoch {epoch}, view {v})"))
    if not torch.equal(out[0].query, out[1].query):
        raise InputError("views 0 and 1 do not cover the same queries", path="sample/train",
                         field="query", fix="re-run the sample stage")
    return out[0], out[1]


def _rank_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _mean_across(x: float) -> float:
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return x
    t = torch.tensor([x], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item()) / dist.get_world_size()


def rank_batches(n: int, batch_size: int, rank: int, world: int, gen: torch.Generator):
    """Index batches of one worker for an epoch of ``n`` pairs: a seeded permutation,
    split into equal shares (same number and sizes of steps on every worker)."""
    perm = torch.randperm(n, generator=gen)
    share = n // world
    if share == 0:
        return []
    steps = max(1, share // batch_size)
    bs = share // steps
    mine = perm[rank * share: rank * share + steps * bs]
    return list(mine.split(bs))


def train_loop(config: dict) -> None:
    """Per-worker MoCo training loop (run by ``TorchTrainer``)."""
    import ray

    hp = config["hp"]
    torch.set_num_threads(max(1, int(hp["threads"])))
    table = ray.get(config["data_ref"])
    n_sampled = int(pc.max(table.column("epoch")).as_py()) + 1
    rank, world = _rank_world()
    device = torch.device("cpu")
    if hp["use_gpu"]:
        import ray.train.torch as rtt
        device = rtt.get_device()
    moco = build_moco(hp, config["seed"])
    opt = torch.optim.Adam(moco.encoder_q.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"])
    start, curve = 0, []
    state = rt.load_checkpoint()
    if state is not None:
        moco.load_state_dict(state["moco"])
        opt.load_state_dict(state["opt"])
        start, curve = state["epoch"] + 1, list(state["curve"])
    moco.to(device)
    model = moco
    if world > 1:
        # the queue is kept identical by all-gathering keys; broadcasting it (and BN stats)
        # from rank 0 at every step would only cost time
        model = torch.nn.parallel.DistributedDataParallel(
            moco, device_ids=[device] if device.type == "cuda" else None, broadcast_buffers=False)
    model.train()
    for epoch in range(start, hp["epochs"]):
        t0 = time.perf_counter()
        v0, v1 = epoch_pairs(table, epoch % n_sampled)
        gen = torch.Generator().manual_seed(config["seed"] * 7919 + epoch)
        fgen = torch.Generator().manual_seed(config["seed"] * 104729 + epoch * 31 + rank)
        losses, pairs = [], 0
        for idx in rank_batches(len(v0), hp["batch_size"], rank, world, gen):
            q, k = v0.select(idx), v1.select(idx)
            fq = subgraph_features(q, hp["pos_dim"], sign_flip=True, generator=fgen).to(device)
            fk = subgraph_features(k, hp["pos_dim"], sign_flip=True, generator=fgen).to(device)
            loss = model((q.to_dgl(), fq.x, fq.degree), (k.to_dgl(), fk.x, fk.degree))
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
            pairs += len(idx)
        secs = time.perf_counter() - t0
        row = {"epoch": epoch, "loss": _mean_across(float(np.mean(losses)) if losses else float("nan")),
               "pairs": pairs * world, "seconds": secs, "pairs_per_s": pairs * world / max(secs, 1e-9),
               "workers": world}
        curve.append(row)
        rt.report(row, {"moco": moco.state_dict(), "opt": opt.state_dict(), "epoch": epoch,
                        "curve": curve})


def loop_hparams(ctx) -> dict:
    """The hyper-parameters ``train_loop`` needs, from the config."""
    cfg = ctx.cfg.pretrain
    return {"dim": cfg.dim, "hidden": cfg.hidden, "num_layers": cfg.num_layers,
            "degree_dim": cfg.degree_dim, "max_degree": cfg.max_degree, "pos_dim": cfg.pos_dim,
            "queue_size": cfg.queue_size, "momentum": cfg.momentum,
            "temperature": cfg.temperature, "lr": cfg.lr, "weight_decay": cfg.weight_decay,
            "epochs": cfg.epochs, "batch_size": cfg.batch_size, "threads": cfg.threads,
            "use_gpu": cfg.trainer.use_gpu}


def embedding_table(domain: str, g, emb: torch.Tensor) -> pa.Table:
    """``domain, node_type, idx, embedding`` rows for all nodes of ``g`` (node order)."""
    return pa.table({"domain": pa.array([domain] * g.num_nodes),
                     "node_type": pa.array(g.node_type()),
                     "idx": pa.array(g.node_idx().astype(np.int64)),
                     "embedding": list_column(emb.numpy())})


def run_pretrain(ctx) -> None:
    """Stage body (kind="driver": it starts a Ray Train TorchTrainer)."""
    import ray

    cfg = ctx.cfg.pretrain
    table = ctx.input("sample").table("train")
    hp = loop_hparams(ctx)
    ctx.log("pre-training on %d view pairs per sampled epoch x %d epochs, %d worker(s)",
            table.num_rows // 2 // max(1, ctx.cfg.sample.epochs), cfg.epochs, cfg.trainer.num_workers)
    result = rt.fit(ctx, train_loop, {"hp": hp, "seed": ctx.seed, "data_ref": ray.put(table)},
                    cfg.trainer, name="moco")
    state = rt.final_state(result)
    moco = build_moco(hp, ctx.seed)
    moco.load_state_dict(state["moco"])
    encoder = moco.encoder_q
    g = load_graph(ctx.input("graph"), "source")
    rwr = rwr_config(ctx.cfg.sample)
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)   # this runs in the driver: do not oversubscribe the CPUs
    try:
        emb = embed_nodes(encoder, g, torch.arange(g.num_nodes), rwr, cfg.pos_dim, seed=ctx.seed,
                          batch_size=cfg.embed_batch_size,
                          progress=lambda it: ctx.progress(it, desc="embed source"))
    finally:
        torch.set_num_threads(threads)
    ctx.out.write_table("embeddings", embedding_table("source", g, emb))
    torch.save(encoder.state_dict(), ctx.out.path("encoder.pt"))
    ctx.out.write_json("encoder", {"gin": encoder.hparams, "pos_dim": cfg.pos_dim,
                                   "sampler": asdict(rwr), "seed": ctx.seed})
    curve = state["curve"]
    ctx.out.write_table("curve", pa.Table.from_pylist(curve))
    ctx.out.stats(epochs=len(curve), final_loss=curve[-1]["loss"] if curve else None,
                  embedded_nodes=g.num_nodes,
                  pairs_per_s=float(np.mean([r["pairs_per_s"] for r in curve])) if curve else None)
    ctx.log("InfoNCE per epoch: %s", ", ".join(f"{r['loss']:.3f}" for r in curve))
