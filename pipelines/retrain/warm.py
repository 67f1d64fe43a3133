"""Warm start from the champion: export its factors by id string, add them to finetune.

The champion's factors are keyed by *user / item strings* (ids are re-indexed by every
kcore run, strings are stable), exported once per champion version to a Parquet file. The
retrain pipeline is the base pipeline with its ``finetune`` stage composed with two extra
runs on top of the configured modes:

* ``champion`` — the champion's factors exactly as deployed (no training; users / items it
  never saw get zero vectors), so it is scored on the *same, newest* holdout as the candidate;
* ``warm_start`` — BPR fine-tuning initialised from the champion's factors (users / items it
  never saw start from the seed's random init; a learned item bias restarts at 0).

The export file is an external input of the stage, so its bytes are part of the fingerprint.
"""
from __future__ import annotations

import dataclasses
import os
import uuid
from functools import partial
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from components.errors import ConfigError, InputError
from pipelines.core.artifacts import Store
from pipelines.core.stage import Pipeline

CHAMPION, WARM = "champion", "warm_start"


def export_champion(store: Store, pipeline: str, ref: dict, out: Path) -> Path:
    """Write the champion's target-domain factors (node_type, key, embedding) to ``out``."""
    if out.exists():
        return out
    from pipelines.pcrec.factors import matrix, select

    emb = store.artifact(pipeline, "finetune", ref["finetune"]).table("embeddings")
    kc = store.artifact(pipeline, "kcore", ref["kcore"])
    rows = []
    for node_type, table, key, idcol in (("user", "users", "user", "uid"), ("item", "items", "item", "iid")):
        ids = kc.df(table)
        ids = ids[ids.domain == "target"].sort_values(idcol)
        sel = select(emb, method=ref["method"], seed=int(ref["seed"]), node_type=node_type)
        mat, ok = matrix(sel, len(ids), f"finetune/embeddings ({ref['method']})")
        keys = ids[key].to_numpy()
        rows.append(pa.table({"node_type": [node_type] * int(ok.sum()),
                              "key": pa.array(keys[ok].astype(str)),
                              "embedding": pa.array(list(mat[ok]), type=pa.list_(pa.float32()))}))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp-{uuid.uuid4().hex}")
    pq.write_table(pa.concat_tables(rows), tmp)
    os.replace(tmp, out)
    return out


def champion_factors(td, path: str):
    """``(users, items, user_mask, item_mask)``: the champion's factors in the current target
    id space, full width (with the folded item-bias column if the model had one); rows of
    users / items the champion never saw are zero and unmasked."""
    t = pq.read_table(path).to_pandas()
    width = len(t.embedding.iloc[0]) if len(t) else 0
    out = []
    for node_type, ids, col, idcol, n in (("user", td.target_users(), "user", "uid", td.n_users),
                                          ("item", td.target_items(), "item", "iid", td.n_items)):
        part = t[t.node_type == node_type]
        pos = dict(zip(ids[col].astype(str), ids[idcol].astype(int)))
        rows = np.array([pos.get(k, -1) for k in part.key], dtype=np.int64)
        keep = rows >= 0
        mat = np.zeros((n, width), np.float32)
        if keep.any():
            mat[rows[keep]] = np.stack(part.embedding.to_numpy()[keep]).astype(np.float32)
        mask = np.zeros(n, bool)
        mask[rows[keep]] = True
        out += [mat, mask]
    U, mu, V, mv = out
    if not mu.any() or not mv.any():
        raise InputError("the champion shares no users or no items with the new data", path=path,
                         fix="retrain from scratch with warm_start: false")
    return U, V, mu, mv


def run_finetune_with_champion(ctx, champion_path: str, warm: bool) -> None:
    """The finetune stage plus the ``champion`` (and, if ``warm``, ``warm_start``) runs."""
    import torch

    from components.pcrec.negatives import PositiveSet
    from pipelines.pcrec.bpr_runs import RunSpec, run_all, valid_ndcg10, write_results
    from pipelines.pcrec.stages import finetune as ft
    from pipelines.pcrec.target_data import load_target

    cfg = ctx.cfg.finetune
    td = load_target(ctx)
    U, V, mu, mv = champion_factors(td, champion_path)
    d = cfg.factors
    if U.shape[1] not in (d, d + 1):
        raise ConfigError(f"champion factors have width {U.shape[1]} but finetune.factors is {d}; "
                          "keep finetune.factors unchanged between retrains or set warm_start: false")
    ctx.log("champion factors cover %d/%d users, %d/%d items", int(mu.sum()), td.n_users,
            int(mv.sum()), td.n_items)
    inits: dict = {}
    if any(m != "bpr_mf" for m in cfg.modes):
        inits, _ = ft.transfer_inits(td, ctx.input("pretrain").table("embeddings"),
                                     ctx.input("target_embed").table("embeddings"),
                                     cfg.factors, cfg.pretrained_scale, cfg.modes,
                                     cfg.init_geometry, cfg.init_std)
    # Warm start: the champion's factors (its item bias, if any, restarts at 0).
    inits[CHAMPION] = (U[:, :d], V[:, :d], mu, mv)
    bpr = ft.bpr_config(cfg.train)
    specs = ft.make_specs(cfg)   # a finetune.grid is not searched again here: its first point is used
    if warm:
        specs += [RunSpec(method=WARM, seed=int(s), bpr=bpr, init=CHAMPION, init_std=cfg.init_std)
                  for s in cfg.seeds]
    data = {"train_u": td.train_u, "train_i": td.train_i, "n_users": td.n_users,
            "n_items": td.n_items, "factors": cfg.factors, "valid_u": td.valid_u, "valid_i": td.valid_i}
    results = run_all(ctx, specs, data, inits, trainer=cfg.trainer, threads=cfg.threads,
                      checkpoint_every=cfg.checkpoint_every, name="finetune")
    # The champion as deployed (exact factors, bias included; unseen users / items score 0).
    Ut, Vt = torch.as_tensor(U), torch.as_tensor(V)
    score = valid_ndcg10(td.valid_u, td.valid_i, PositiveSet(td.train_u, td.train_i, td.n_items))(Ut, Vt)
    spec = RunSpec(method=CHAMPION, seed=int(cfg.seeds[0]), bpr=bpr, train=False)
    results.append({"spec": dataclasses.asdict(spec), "U": U, "V": V, "best_epoch": 0,
                    "best_valid_ndcg10": score, "wall_s": 0.0,
                    "history": [{"epoch": 0, "loss": float("nan"), "train_s": 0.0, "valid_ndcg10": score}]})
    write_results(ctx, results)
    ctx.out.stats(runs=len(results), champion_export=os.path.basename(champion_path),
                  champion_users=int(mu.sum()), champion_items=int(mv.sum()))


def _external(cfg, base_fn, path: str) -> list[str]:
    return [*(base_fn(cfg) if base_fn else []), path]


def with_champion(base: Pipeline, champion_path: Path | None, warm: bool) -> Pipeline:
    """``base`` with its finetune stage composed with the champion runs (unchanged if None)."""
    if champion_path is None:
        return base
    stages = []
    for s in base.stages:
        if s.name == "finetune":
            s = dataclasses.replace(
                s, run=partial(run_finetune_with_champion, champion_path=str(champion_path), warm=warm),
                external_inputs=partial(_external, base_fn=s.external_inputs, path=str(champion_path)),
                description=s.description + " (+ champion / warm_start runs)")
        stages.append(s)
    return Pipeline(base.name, base.config_cls, stages, base.description)
