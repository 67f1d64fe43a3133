"""pretrain stage: GCC/PCRec contrastive pre-training of a GIN encoder with MoCo, on Ray Train.

Inputs: ``graph`` (the source graph, for the final embeddings) and ``sample`` (``train``:
two views per query per sampled epoch). A ``TorchTrainer`` (``pretrain.trainer``: workers,
GPU) runs :func:`train_loop` data-parallel: every worker takes an equal share of each
epoch's pairs, computes GCC features (with random eigenvector sign flips), and does MoCo
steps (query encoder by DDP-averaged gradients; key encoder by momentum; keys of all
workers are gathered into one queue). Pre-training epoch ``e`` uses sampled epoch
``e % sample.epochs``. The queue never serves a query a key of its own node: K is capped below
the source node count (logged) and queued keys carry their node ids, masked per query
(:mod:`components.pcrec.moco`). Every epoch ends with a checkpoint (model, key encoder, queue,
optimiser, loss curve) under the stage's scratch dir; a re-run after a killed driver, or
Ray Train after a worker failure, resumes from it. All randomness is a function of
``(seed, epoch)``, so a resumed run ends in the same state as an uninterrupted one.

Outputs:
* ``embeddings``: domain ('source'), node_type, idx, embedding (list<float32>, size
  ``pretrain.dim``) of every source user and item (one ego view each, query encoder in
  eval mode). The shared users' rows are what finetune modes (a)/(b) carry over.
* ``encoder.pt`` (GIN state dict of the query encoder) + ``encoder.json`` (its
  hyper-parameters, ``pos_dim`` and the sampler settings), used by ``target_embed``.
* ``curve``: epoch, loss (mean InfoNCE), pairs, seconds, pairs_per_s, workers, and
  ``eval_infonce``/``eval_top1``: the consistent-dictionary InfoNCE of the encoder at the end of
  the epoch (:func:`consistent_eval`; ``eval_infonce_untrained`` before any step).

Why two InfoNCE curves: the training loss scores each query against a queue of keys made by
*older* key encoders. While the learning rate is high those keys drift away from the current
queries and are easy negatives; as the LR decays the queue becomes consistent and harder, so the
training loss can rise while the encoder improves (seen on ML-1M, issue 11: training InfoNCE
4.6 -> 5.6 over 150 steps while the consistent InfoNCE fell 6.57 -> 5.70). ``eval_infonce`` scores
the current encoder against a dictionary it made itself, so it measures learning.
"""
from __future__ import annotations

import time
from dataclasses import asdict

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch

from components.errors import ConfigError, InputError
from components.pcrec import diagnostics as D
from components.pcrec.encode import embed_nodes
from components.pcrec.features import subgraph_features
from components.pcrec.gin import GINEncoder
from components.pcrec.moco import MoCo, safe_queue_size
from components.pcrec.sampler import has_edges
from components.pcrec.subgraphs import SubgraphBatch
from pipelines.core import train as rt
from pipelines.pcrec.config import PretrainConfig
from pipelines.pcrec.factors import list_column
from pipelines.pcrec.stages.graph import load_graph
from pipelines.pcrec.stages.sample import rwr_config


def build_moco(cfg: PretrainConfig, seed: int) -> MoCo:
    """Query/key GIN encoders + queue from the ``pretrain`` section (same on every worker)."""
    torch.manual_seed(seed)
    enc = GINEncoder(cfg.pos_dim + 1, hidden=cfg.hidden, out_dim=cfg.dim, num_layers=cfg.num_layers,
                     degree_dim=cfg.degree_dim, max_degree=cfg.max_degree)
    return MoCo(enc, cfg.dim, queue_size=cfg.queue_size, momentum=cfg.momentum,
                temperature=cfg.temperature, generator=torch.Generator().manual_seed(seed + 1))


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


def train_loop(config: dict) -> None:
    """Per-worker MoCo training loop (run by Ray Train through :func:`pipelines.core.train.fit`)."""
    import ray

    cfg: PretrainConfig = config["cfg"]
    s = rt.Session(config["seed"], cfg.threads, use_gpu=cfg.trainer.use_gpu)
    table = ray.get(config["data_ref"])
    gdeg = config.get("graph_degree")
    if cfg.degree_input == "graph" and gdeg is None:
        raise ConfigError("pretrain.degree_input is 'graph' but the training loop got no graph_degree "
                          "(the source graph's node degrees)", param="pretrain.degree_input")
    n_sampled = int(pc.max(table.column("epoch")).as_py()) + 1
    moco = build_moco(cfg, config["seed"])
    opt = torch.optim.Adam(moco.encoder_q.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    start, curve = s.restore(moco=moco, opt=opt)
    # the queue is kept identical by all-gathering keys (equal batch sizes on every rank);
    # broadcasting it (and BN stats) from rank 0 at every step would only cost time
    model = s.prepare(moco, broadcast_buffers=False)
    model.train()
    # steps per epoch: every sampled epoch has the same number of pairs
    per_epoch = len(s.shard(len(epoch_pairs(table, 0)[0]), cfg.batch_size, 0, equal_sizes=True))
    total = per_epoch * cfg.epochs
    ev = eval_pairs(table, cfg.diagnostics.eval_pairs)
    ev0 = (consistent_eval(moco.encoder_q, ev, cfg, gdeg, s.to_device) if ev is not None and start == 0
           else {})
    for epoch in range(start, cfg.epochs):
        t0 = time.perf_counter()
        v0, v1 = epoch_pairs(table, epoch % n_sampled)
        fgen = torch.Generator().manual_seed(s.rank_seed(epoch))
        losses, norms, lrs, pairs = [], [], [], 0
        for i, idx in enumerate(s.shard(len(v0), cfg.batch_size, epoch, equal_sizes=True)):
            lr = cfg.lr * lr_factor(epoch * per_epoch + i, total, cfg.warmup_fraction, cfg.lr_schedule)
            loss, norm = moco_step(model, moco, opt, v0.select(idx), v1.select(idx), cfg, lr, fgen,
                                   s.to_device, gdeg)
            losses.append(loss)
            norms.append(norm)
            lrs.append(lr)
            pairs += len(idx)
        secs = time.perf_counter() - t0
        row = {"epoch": epoch, "loss": s.all_mean(float(np.mean(losses)) if losses else float("nan")),
               "pairs": pairs * s.world, "steps": len(losses), "seconds": secs,
               "pairs_per_s": pairs * s.world / max(secs, 1e-9),
               "steps_per_s": len(losses) / max(secs, 1e-9), "workers": s.world,
               "grad_norm": float(np.mean(norms)) if norms else float("nan"), "lr_end": float(lrs[-1]) if lrs else float(cfg.lr)}
        if ev is not None:
            e = consistent_eval(moco.encoder_q, ev, cfg, gdeg, s.to_device)
            row.update(eval_infonce=e["infonce"], eval_top1=e["top1"], eval_chance=e["chance"],
                       eval_pairs=e["pairs"], **({"eval_infonce_untrained": ev0["infonce"],
                                                  "eval_top1_untrained": ev0["top1"]} if ev0 else {}))
        curve.append({**row, "step_loss": [s.all_mean(v) for v in losses] if s.world > 1 else losses})
        s.report(row, s.state(epoch, curve, moco=model, opt=opt),
                 progress=f"MoCo epoch {epoch + 1}/{cfg.epochs}: InfoNCE {row['loss']:.3f} "
                          f"(ln(K+1) = {np.log(cfg.queue_size + 1):.2f})"
                          + (f"; consistent InfoNCE {row['eval_infonce']:.3f} (ln N = {row['eval_chance']:.2f})"
                             if "eval_infonce" in row else ""))


def eval_pairs(table: pa.Table, n: int) -> tuple[SubgraphBatch, SubgraphBatch] | None:
    """The first ``n`` view pairs (by query) of sampled epoch 0, or None for ``n`` < 2."""
    if n < 2:
        return None
    v0, v1 = epoch_pairs(table, 0)
    n = min(n, len(v0))
    return (v0.slice(0, n), v1.slice(0, n)) if n >= 2 else None


@torch.no_grad()
def consistent_eval(encoder, pairs: tuple[SubgraphBatch, SubgraphBatch], cfg: PretrainConfig,
                    graph_degree=None, to_device=lambda x: x, chunk: int = 256) -> dict:
    """InfoNCE of ``encoder`` (eval mode, no sign flips) with a consistent dictionary: view 0 of
    each of the N pairs against view 1 of all N (its own is the positive, the N - 1 others are
    negatives), temperature ``cfg.temperature``; ``top1`` = share whose own view 1 scores
    highest. A random encoder scores about ln N (``chance``)."""
    was = encoder.training
    encoder.eval()
    try:
        z = []
        for b in pairs:
            out = []
            for a in range(0, len(b), chunk):
                bb = b.slice(a, min(a + chunk, len(b)))
                f = to_device(subgraph_features(bb, cfg.pos_dim, graph_degree=graph_degree))
                out.append(encoder(bb.to_dgl(), f.x, f.degree).float().cpu())
            z.append(torch.cat(out))
    finally:
        encoder.train(was)
    n = z[0].shape[0]
    logits = z[0] @ z[1].t() / cfg.temperature
    target = torch.arange(n)
    return {"infonce": float(torch.nn.functional.cross_entropy(logits, target)),
            "top1": float((logits.argmax(1) == target).float().mean()), "chance": float(np.log(n)),
            "pairs": n}


def moco_step(model, moco: MoCo, opt, q: SubgraphBatch, k: SubgraphBatch, cfg: PretrainConfig,
              lr: float, fgen: torch.Generator, to_device=lambda x: x,
              graph_degree: torch.Tensor | None = None) -> tuple[float, float]:
    """One MoCo update at learning rate ``lr``: GCC features (random sign flips) of both views,
    InfoNCE (own stale keys masked), backward, gradient clipping at ``cfg.grad_clip``, Adam step.
    ``model`` is ``moco`` or its DDP wrapper; ``graph_degree``: whole-graph degrees when
    ``cfg.degree_input == "graph"``. Returns (loss, gradient norm before clipping)."""
    if cfg.degree_input == "graph" and graph_degree is None:
        raise ConfigError("pretrain.degree_input is 'graph' but moco_step got no graph_degree",
                          param="pretrain.degree_input")
    for group in opt.param_groups:
        group["lr"] = lr
    fq = to_device(subgraph_features(q, cfg.pos_dim, sign_flip=True, generator=fgen, graph_degree=graph_degree))
    fk = to_device(subgraph_features(k, cfg.pos_dim, sign_flip=True, generator=fgen, graph_degree=graph_degree))
    loss = model((q.to_dgl(), fq.x, fq.degree), (k.to_dgl(), fk.x, fk.degree),
                 to_device(q.query))   # query node ids: own stale keys are masked
    opt.zero_grad()
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(moco.encoder_q.parameters(),
                                          cfg.grad_clip if cfg.grad_clip > 0 else float("inf"))
    opt.step()
    return float(loss.detach()), float(norm)


def lr_factor(step: int, total: int, warmup_fraction: float, schedule: str) -> float:
    """Multiplier of ``pretrain.lr`` at ``step`` of ``total``: linear warmup over the first
    ``warmup_fraction`` of the steps, then constant or cosine decay to 0."""
    warm = int(round(warmup_fraction * total))
    if step < warm:
        return (step + 1) / warm
    if schedule == "constant":
        return 1.0
    return float(0.5 * (1.0 + np.cos(np.pi * min(1.0, (step - warm) / max(1, total - warm)))))


def plateau_stats(loss: np.ndarray) -> tuple[float, float, float]:
    """(mean of the first 10% of steps, mean of the last 10%, relative drop of the last 10%
    against the 10% before it: near 0 = plateau)."""
    n = max(1, len(loss) // 10)
    first, last = float(loss[:n].mean()), float(loss[-n:].mean())
    prev = float(loss[-2 * n:-n].mean()) if len(loss) >= 2 * n else first
    return first, last, (prev - last) / max(abs(prev), 1e-12)


def encoder_diagnostics(ctx, cfg: PretrainConfig, g, rwr, emb: torch.Tensor,
                        views: torch.Tensor) -> list[dict]:
    """Rows (encoder, metric, value) for the trained encoder and an untrained one (the same
    initialisation, before any step), on the same nodes: alignment of two views, uniformity,
    effective rank and mean cosine of the embeddings, view retrieval (is a node's other view its
    nearest neighbour?) and source link-prediction AUC by cosine: ``link_auc`` against random
    user-item pairs, ``link_auc_matched`` against degree-matched non-edges (the probe edges' items
    shuffled among their users)."""
    n = min(cfg.diagnostics.nodes, g.num_nodes)
    gen = torch.Generator().manual_seed(ctx.seed + 17)
    nodes = torch.sort(torch.randperm(g.num_nodes, generator=gen)[:n]).values
    untrained = build_moco(cfg, ctx.seed).encoder_q
    u_emb, u_views = embed_nodes(untrained, g, nodes, rwr, cfg.pos_dim, seed=ctx.seed,
                                 batch_size=cfg.embed_batch_size, num_views=2, return_views=True,
                                 degree_input=cfg.degree_input)
    # probe pairs: edges among the sampled nodes' incident edges vs random user-item pairs
    src, dst = g.edges()
    keep = (src < dst)
    src, dst = src[keep], dst[keep]
    pick = torch.randperm(src.numel(), generator=gen)[:cfg.diagnostics.probe_pairs]
    ps, pd_ = src[pick], dst[pick]
    ns = torch.randint(0, g.num_users, (pick.numel(),), generator=gen)
    nd = torch.randint(g.num_users, g.num_nodes, (pick.numel(),), generator=gen)
    # degree-matched negatives: the probe edges' items shuffled among their users (same degree
    # marginals as the edges; pairs that are edges dropped). Random pairs favour low-degree
    # nodes, so against them the AUC also measures "does the score rise with degree"
    ms, md = ps, pd_[torch.randperm(pick.numel(), generator=gen)]
    nonedge = ~has_edges(g, ms * (g.num_nodes + 1) + md)
    ms, md = ms[nonedge], md[nonedge]
    probe_nodes = torch.unique(torch.cat([ps, pd_, ns, nd]))
    u_probe = embed_nodes(untrained, g, probe_nodes, rwr, cfg.pos_dim, seed=ctx.seed,
                          batch_size=cfg.embed_batch_size, num_views=2, degree_input=cfg.degree_input)
    pos_of = torch.full((g.num_nodes,), -1, dtype=torch.int64)
    pos_of[probe_nodes] = torch.arange(probe_nodes.numel())
    rows = []
    for name, e_all, e_sub, v_sub, probe in (
            ("trained", emb, emb[nodes], views[:, nodes] if views.shape[0] >= 2 else None, emb[probe_nodes]),
            ("untrained", None, u_emb, u_views, u_probe)):
        m = {"alignment": D.alignment(v_sub[0], v_sub[1]) if v_sub is not None else float("nan"),
             "uniformity": D.uniformity(e_sub), "effective_rank": D.effective_rank(e_sub),
             "effective_rank_uncentred": D.effective_rank(e_sub, centre=False),
             "mean_cosine": D.mean_cosine(e_sub),
             "link_auc": D.link_auc(probe, pos_of[ps], pos_of[pd_], pos_of[ns], pos_of[nd]),
             "link_auc_matched": D.link_auc(probe, pos_of[ps], pos_of[pd_], pos_of[ms], pos_of[md])}
        if v_sub is not None:
            r = D.view_retrieval(v_sub[0], v_sub[1], k=10)
            m.update({"view_top1": r["top1"], "view_top10": r["top10"], "view_top1_chance": r["chance_top1"]})
        rows += [{"encoder": name, "metric": k, "value": float(v), "nodes": int(n)} for k, v in m.items()]
    ctx.log("diagnostics (trained | untrained): %s", "; ".join(
        f"{r['metric']} {r['value']:.3f} | {u['value']:.3f}"
        for r, u in zip([r for r in rows if r["encoder"] == "trained"],
                        [r for r in rows if r["encoder"] == "untrained"])))
    return rows


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
    g = load_graph(ctx.input("graph"), "source")
    K = safe_queue_size(cfg.queue_size, g.num_nodes)
    if K != cfg.queue_size:
        ctx.log("NOTE: MoCo queue capped at K=%d (pretrain.queue_size=%d >= %d source nodes would "
                "queue each node's own stale keys as its negatives)", K, cfg.queue_size, g.num_nodes)
        cfg = cfg.model_copy(update={"queue_size": K})
    ctx.log("pre-training on %d view pairs per sampled epoch x %d epochs, %d worker(s)",
            table.num_rows // 2 // max(1, ctx.cfg.sample.epochs), cfg.epochs, cfg.trainer.num_workers)
    gdeg = g.degrees() if cfg.degree_input == "graph" else None
    result = rt.fit(ctx, train_loop, {"cfg": cfg, "seed": ctx.seed, "data_ref": ray.put(table),
                                      "graph_degree": gdeg}, cfg.trainer, name="moco")
    state = rt.final_state(result)
    moco = build_moco(cfg, ctx.seed)
    moco.load_state_dict(state["moco"])
    encoder = moco.encoder_q
    rwr = rwr_config(ctx.cfg.sample)
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)   # this runs in the driver: do not oversubscribe the CPUs
    try:
        emb, views = embed_nodes(encoder, g, torch.arange(g.num_nodes), rwr, cfg.pos_dim, seed=ctx.seed,
                                 batch_size=cfg.embed_batch_size, num_views=cfg.embed_views,
                                 return_views=True, degree_input=cfg.degree_input,
                                 progress=lambda it: ctx.progress(it, desc="embed source"))
        diag = encoder_diagnostics(ctx, cfg, g, rwr, emb, views) if cfg.diagnostics.enabled else None
    finally:
        torch.set_num_threads(threads)
    ctx.out.write_table("embeddings", embedding_table("source", g, emb))
    if diag is not None:
        ctx.out.write_table("diagnostics", pa.Table.from_pylist(diag))
    torch.save(encoder.state_dict(), ctx.out.path("encoder.pt"))
    ctx.out.write_json("encoder", {"gin": encoder.hparams, "pos_dim": cfg.pos_dim,
                                   "degree_input": cfg.degree_input,
                                   "sampler": asdict(rwr), "seed": ctx.seed,
                                   "queue_size": cfg.queue_size})
    curve = state["history"]
    steps = [{"step": i, "epoch": r["epoch"], "loss": v}
             for i, (r, v) in enumerate((r, v) for r in curve for v in r.get("step_loss", []))]
    curve = [{k: v for k, v in r.items() if k != "step_loss"} for r in curve]
    ctx.out.write_table("curve", pa.Table.from_pylist(curve))
    if steps:
        ctx.out.write_table("steps", pa.Table.from_pylist(steps))
        ctx.log("InfoNCE first/last 10%% of steps: %.3f -> %.3f; ln(K+1) = %.3f",
                *plateau_stats(np.array([r["loss"] for r in steps]))[:2], np.log(cfg.queue_size + 1))
    ctx.out.stats(epochs=len(curve), final_loss=curve[-1]["loss"] if curve else None,
                  embedded_nodes=g.num_nodes,
                  pairs_per_s=float(np.mean([r["pairs_per_s"] for r in curve])) if curve else None)
    ctx.log("InfoNCE per epoch: %s", ", ".join(f"{r['loss']:.3f}" for r in curve))
    if curve and "eval_infonce" in curve[-1]:
        ctx.log("consistent InfoNCE per epoch (untrained %s; ln N = %.2f): %s",
                f"{curve[0].get('eval_infonce_untrained', float('nan')):.3f}", curve[-1]["eval_chance"],
                ", ".join(f"{r['eval_infonce']:.3f}" for r in curve))
