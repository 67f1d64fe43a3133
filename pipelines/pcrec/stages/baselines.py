"""baselines stage: LightGCN on the target only, and MF on source + target merged (joint).

* ``lightgcn``: LightGCN (DGL message passing) on the target training graph, BPR + L2 on the
  ego embeddings, same early stopping as finetune (validation NDCG@10).
* ``joint_mf``: one MF over the union of both domains — users merged by their string id (a
  shared user has ONE vector), source and target items side by side — trained with BPR on all
  training rows of both domains. With ``negatives_within_domain`` each negative is drawn from
  the positive's own domain. Validation and the written factors use the target items only.
  This is the joint training the PCRec paper argues against (the source can dominate).

Each method trains its seeds under its own Ray Train TorchTrainer fit (one
:func:`pipelines.pcrec.bpr_runs.run_all` call per method, so two fits for both methods); the
stage writes the same tables as finetune (``embeddings``, ``curves``, ``runs``), in target ids.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd

from pipelines.pcrec.bpr_runs import RunSpec, run_all, write_results
from pipelines.pcrec.stages.finetune import bpr_config
from pipelines.pcrec.target_data import TargetData, load_target


def joint_data(ctx, td: TargetData, within_domain: bool, factors: int) -> dict:
    """Training arrays of the merged (source + target) MF, in joint ids."""
    tr = ctx.input("split").df("train", columns=["domain", "user", "uid", "iid"])
    users = td.users
    names = pd.Index(users.user.unique())
    joint_uid = {d: np.full(int((users.domain == d).sum()), -1, dtype=np.int64)
                 for d in ("source", "target")}
    for d, g in users.groupby("domain"):
        if d in joint_uid:
            joint_uid[d][g.uid.to_numpy()] = names.get_indexer(g.user)
    n_src_items = int((td.items.domain == "source").sum())
    is_t = (tr.domain == "target").to_numpy()
    u = np.where(is_t, joint_uid["target"][np.where(is_t, tr.uid, 0)],
                 joint_uid["source"][np.where(is_t, 0, tr.uid)])
    i = tr.iid.to_numpy(np.int64) + np.where(is_t, n_src_items, 0)
    n_items = n_src_items + td.n_items
    if within_domain:
        lo = np.where(is_t, n_src_items, 0).astype(np.int64)
        hi = np.where(is_t, n_items, n_src_items).astype(np.int64)
    else:
        lo, hi = None, None
    return {"train_u": u, "train_i": i, "n_users": len(names), "n_items": n_items,
            "factors": factors, "valid_u": joint_uid["target"][td.valid_u], "valid_i": td.valid_i,
            "item_lo": lo, "item_hi": hi, "item_slice": (n_src_items, n_items),
            "out_users": joint_uid["target"]}


def joint_budget(bpr, target_pairs: int, joint_pairs: int):
    """``bpr`` with its epochs (and evaluation interval) scaled by ``target_pairs / joint_pairs``.

    ``baselines.joint_mf.budget: updates``: joint MF then makes as many positive-pair updates
    (epochs x training pairs) as a target-only run with ``bpr``'s epochs, rounded to the nearest
    epoch; an annealed schedule spans the scaled epochs.
    """
    if bpr.epochs == 0:   # no training asked for: none with the merged pairs either
        return bpr
    epochs = max(1, round(bpr.epochs * target_pairs / max(joint_pairs, 1)))
    return replace(bpr, epochs=epochs, eval_every=max(1, min(bpr.eval_every, epochs)))


def run_baselines(ctx) -> None:
    """Stage body (kind="driver")."""
    cfg, ft = ctx.cfg.baselines, ctx.cfg.finetune
    seeds = cfg.seeds if cfg.seeds is not None else ft.seeds
    td = load_target(ctx)
    target = {"train_u": td.train_u, "train_i": td.train_i, "n_users": td.n_users,
              "n_items": td.n_items, "factors": ft.factors, "valid_u": td.valid_u,
              "valid_i": td.valid_i}
    results = []
    for method in cfg.methods:
        if method == "lightgcn":
            bpr = bpr_config(cfg.lightgcn.train)
            specs = [RunSpec(method="lightgcn", seed=int(s), bpr=bpr, model="lightgcn",
                             init_std=ft.init_std, layers=cfg.lightgcn.layers) for s in seeds]
            data = target
        else:
            bpr = bpr_config(cfg.joint_mf.train or ft.train)
            data = joint_data(ctx, td, cfg.joint_mf.negatives_within_domain, ft.factors)
            if cfg.joint_mf.budget == "updates":   # as many pair updates as a target-only run
                bpr = joint_budget(bpr, len(td.train_u), len(data["train_u"]))
            specs = [RunSpec(method="joint_mf", seed=int(s), bpr=bpr, model="mf",
                             init_std=ft.init_std, item_bias=ft.item_bias) for s in seeds]
            ctx.log("joint MF: %d users, %d items, %d training pairs, %d epochs (budget: %s)",
                    data["n_users"], data["n_items"], len(data["train_u"]), bpr.epochs,
                    cfg.joint_mf.budget)
        results += run_all(ctx, specs, data, {}, trainer=cfg.trainer, threads=cfg.threads,
                           checkpoint_every=cfg.checkpoint_every, name=method)
    write_results(ctx, results)
    ctx.out.stats(runs=len(results))
