"""finetune stage: BPR-MF on the target domain under the PCRec transfer modes.

Inputs: kcore (id maps), split (train/valid), pretrain (source-domain embeddings),
target_embed (encoder embeddings of target-domain ego subgraphs). One Ray Train TorchTrainer
fit trains every ``(mode, seed)`` of ``finetune.modes x finetune.seeds`` (see
:mod:`pipelines.pcrec.bpr_runs`), with early stopping on validation NDCG@10 (full ranking,
train positives excluded). The test split is never read here.

Transfer modes (how each node type is initialised; "random" = N(0, init_std^2) from the run's
seed, identical across modes for the same seed):

=================  =========================  ===================  =======================
mode               shared users               target-only users    target items
=================  =========================  ===================  =======================
``direct``   (a)   source pre-trained emb.    target_embed emb.    target_embed emb.
                   -- NO training: the pre-trained vectors are the final factors --
``pretrain_init``  source pre-trained emb.    target_embed emb.    target_embed emb.
             (b)   then BPR fine-tuning of all factors
``generated_init`` target_embed emb.          target_embed emb.    target_embed emb.
             (c)   then BPR fine-tuning (encoder applied to target ego subgraphs)
``bpr_mf``   (d)   random                     random               random (plain BPR-MF)
=================  =========================  ===================  =======================

Source knowledge reaches the target in (a)/(b) through the shared users' source-graph
embeddings, and in (c) through the encoder weights (pre-trained on the source graph). All
pre-trained vectors come from the same encoder, so they live in one space and can be mixed.
A node with no pre-trained vector at all (not embedded upstream) falls back to random; the
count is logged and recorded in the stage stats. Pre-trained rows are first reshaped by
``finetune.init_geometry`` (raw / center / whiten, :func:`pipelines.pcrec.factors.init_geometry`)
and then multiplied by ``finetune.pretrained_scale``.

Per-mode grid (``finetune.grid``, a list of lr/reg overrides of ``finetune.train``): each trained
mode runs every point with the first seed of ``finetune.seeds`` and keeps the point with the
best validation NDCG@10; the other seeds then train at that point (the first seed's run is
reused). ``direct`` trains nothing and has no grid. The test split plays no part.

Outputs: ``embeddings`` (method, seed, node_type, idx, embedding), ``curves`` (method, seed,
epoch, loss, train_s, valid_ndcg10), ``runs`` (method, seed, best_epoch, best_valid_ndcg10, ...),
``grid`` (method, point, lr, reg, valid_ndcg10, best_epoch, epochs_run, chosen; empty without a grid).
"""
from __future__ import annotations

import numpy as np

from components.errors import ConfigError
from components.pcrec.bpr import BPRConfig
from pipelines.pcrec.bpr_runs import RunSpec, run_all, write_results
from pipelines.pcrec.factors import init_geometry, matrix, select
from pipelines.pcrec.target_data import TargetData, load_target

MODES = ("direct", "pretrain_init", "generated_init", "bpr_mf")


def bpr_config(train_cfg) -> BPRConfig:
    """The component config of a ``BPRTrainConfig`` section (same fields)."""
    return BPRConfig(**train_cfg.model_dump())


def transfer_inits(td: TargetData, src_table, tgt_table, factors: int, scale: float,
                   modes, geometry: str = "raw", init_std: float = 0.1) -> tuple[dict, dict]:
    """Initial factor matrices of the pre-trained modes (see module docstring) and stats.
    ``geometry``: :func:`pipelines.pcrec.factors.init_geometry` of each user/item matrix (RMS
    norm ``init_std * sqrt(factors)``), then times ``scale``.

    Returns ``(inits, stats)`` where ``inits[name] = (users, items, user_mask, item_mask)``:
    ``'transfer'`` for modes (a)/(b), ``'generated'`` for mode (c).
    """
    need_src = bool({"direct", "pretrain_init"} & set(modes))
    Tu, tu_ok = matrix(select(tgt_table, domain="target", node_type="user"), td.n_users,
                       "target_embed/embeddings")
    Ti, ti_ok = matrix(select(tgt_table, domain="target", node_type="item"), td.n_items,
                       "target_embed/embeddings")
    dims = {Tu.shape[1], Ti.shape[1]} - {0}
    shared = td.shared_users()
    stats = {"target_users": td.n_users, "target_items": td.n_items, "shared_users": len(shared),
             "users_without_target_embed": int((~tu_ok).sum()),
             "items_without_target_embed": int((~ti_ok).sum())}
    inits = {}

    def geo(mat, ok):
        return init_geometry(mat, ok, geometry, init_std * np.sqrt(factors)) * scale

    if "generated_init" in modes:
        inits["generated"] = (geo(Tu, tu_ok), geo(Ti, ti_ok), tu_ok, ti_ok)
    if need_src:
        n_src = int((td.users.domain == "source").sum())
        S, s_ok = matrix(select(src_table, domain="source", node_type="user"), n_src,
                         "pretrain/embeddings")
        dims |= {S.shape[1]} - {0}
        su = shared.source_uid.to_numpy()
        tu = shared.target_uid.to_numpy()
        has = s_ok[su]
        U = Tu.copy() if Tu.shape[1] else np.zeros((td.n_users, S.shape[1]), np.float32)
        U[tu[has]] = S[su[has]]
        u_ok = tu_ok.copy()
        u_ok[tu[has]] = True
        inits["transfer"] = (geo(U, u_ok), geo(Ti, ti_ok) if Ti.shape[1] else
                             np.zeros((td.n_items, U.shape[1]), np.float32), u_ok, ti_ok)
        stats["shared_users_with_source_embed"] = int(has.sum())
    if dims and dims != {factors}:
        raise ConfigError(f"pre-trained embeddings have size {sorted(dims)} but finetune.factors "
                          f"is {factors}; set finetune.factors to {sorted(dims)[0]}")
    return inits, stats


INIT_OF = {"direct": "transfer", "pretrain_init": "transfer", "generated_init": "generated", "bpr_mf": None}


def grid_points(cfg) -> list[dict]:
    """The finetune.train overrides of each grid point (``[{}]``: no grid)."""
    return [p.model_dump(exclude_none=True) for p in cfg.grid] or [{}]


def _spec(cfg, mode: str, seed: int, point: int | None) -> RunSpec:
    over = grid_points(cfg)[point] if point is not None else {}
    return RunSpec(method=mode, seed=int(seed), bpr=bpr_config(cfg.train.model_copy(update=over)),
                   model="mf", init=INIT_OF[mode], train=(mode != "direct"), init_std=cfg.init_std,
                   item_bias=cfg.item_bias and mode != "direct",
                   variant=f"g{point}" if point is not None else "")


def make_specs(cfg, chosen: dict[str, int] | None = None) -> list[RunSpec]:
    """One RunSpec per (mode, seed), modes in the configured order; with a grid, at the point
    ``chosen[mode]`` of each trained mode."""
    gridded = len(cfg.grid) > 0
    return [_spec(cfg, m, s, (chosen or {}).get(m, 0) if gridded and m != "direct" else None)
            for m in cfg.modes for s in cfg.seeds]


def grid_specs(cfg) -> list[RunSpec]:
    """The selection runs: every grid point of every trained mode, first seed only."""
    return [_spec(cfg, m, cfg.seeds[0], k) for m in cfg.modes if m != "direct"
            for k in range(len(cfg.grid))]


def choose_points(results: list[dict]) -> tuple[dict[str, int], "pd.DataFrame"]:
    """Per mode, the grid point with the best validation NDCG@10 (first of equals), and the
    table of every point's score."""
    import pandas as pd

    rows = []
    for r in results:
        k = int(r["spec"]["variant"][1:])
        rows.append({"method": r["spec"]["method"], "point": k,
                     "lr": r["spec"]["bpr"]["lr"], "reg": r["spec"]["bpr"]["reg"],
                     "seed": int(r["spec"]["seed"]), "valid_ndcg10": float(r["best_valid_ndcg10"]),
                     "best_epoch": int(r["best_epoch"]),
                     "epochs_run": len([h for h in r["history"] if h["epoch"] > 0]),
                     "epoch_cap": int(r["spec"]["bpr"]["epochs"])})
    df = pd.DataFrame(rows)
    chosen = {}
    for m, g in df.groupby("method", sort=False):
        ok = g[np.isfinite(g.valid_ndcg10)]
        chosen[m] = int((ok if len(ok) else g).sort_values(["valid_ndcg10", "point"],
                                                           ascending=[False, True]).point.iloc[0])
    df["chosen"] = [chosen[m] == k for m, k in zip(df.method, df.point)]
    return chosen, df


def run_finetune(ctx) -> None:
    """Stage body (kind="driver": it starts a Ray Train TorchTrainer)."""
    cfg = ctx.cfg.finetune
    bad = [m for m in cfg.modes if m not in MODES]
    if bad:
        raise ConfigError(f"finetune.modes: unknown {bad}; choose from {list(MODES)}")
    td = load_target(ctx)
    pre_modes = [m for m in cfg.modes if m != "bpr_mf"]
    inits, stats = {}, {"target_users": td.n_users, "target_items": td.n_items}
    if pre_modes:
        inits, stats = transfer_inits(td, ctx.input("pretrain").table("embeddings"),
                                      ctx.input("target_embed").table("embeddings"),
                                      cfg.factors, cfg.pretrained_scale, cfg.modes,
                                      cfg.init_geometry, cfg.init_std)
    ctx.log("target: %d users, %d items, %d train pairs, %d validation users; init stats %s",
            td.n_users, td.n_items, len(td.train_u), len(td.valid_u), stats)
    data = {"train_u": td.train_u, "train_i": td.train_i, "n_users": td.n_users,
            "n_items": td.n_items, "factors": cfg.factors, "valid_u": td.valid_u,
            "valid_i": td.valid_i}
    chosen, grid = None, None
    if cfg.grid and [m for m in cfg.modes if m != "direct"]:
        sel = run_all(ctx, grid_specs(cfg), data, inits, trainer=cfg.trainer, threads=cfg.threads,
                      checkpoint_every=cfg.checkpoint_every, name="finetune")
        chosen, grid = choose_points(sel)
        for m, k in chosen.items():
            g = grid[(grid.method == m)].sort_values("point")
            ctx.log("grid %-15s chose point %d (lr %g, reg %g): valid NDCG@10 %s", m, k,
                    g.lr.iloc[k], g.reg.iloc[k], ", ".join(f"{v:.4f}" for v in g.valid_ndcg10))
    specs = make_specs(cfg, chosen)   # the first seed's runs at the chosen points are reused
    results = run_all(ctx, specs, data, inits, trainer=cfg.trainer, threads=cfg.threads,
                      checkpoint_every=cfg.checkpoint_every, name="finetune")
    write_results(ctx, results)
    if grid is not None:
        ctx.out.write_table("grid", grid)
    ctx.out.stats(runs=len(results), train_pairs=int(len(td.train_u)), **stats)
