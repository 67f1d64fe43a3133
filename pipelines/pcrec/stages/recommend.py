"""recommend stage: top-K unseen target items for every target-domain user.

The model is ``recommend.method`` or, when None, the method with the best mean *validation*
NDCG@10 over seeds (finetune/runs + baselines/runs + peers/runs; the test split is never used
to choose),
and within it the seed with the best validation NDCG@10. Seen items = every known target
interaction of the user (train + validation + test). Output ``topk``: user, rank (1..K), item,
score, with the original string ids.

The users fan out over the cluster (:mod:`pipelines.core.fanout`; unit = one block of
:data:`USER_BLOCK` users, the chunk :func:`components.pcrec.topk.top_k` scores at once;
``recommend.fanout.shard_size`` blocks per shard). The factors and seen sets go to the shards
once through Ray's object store; each shard writes its part of ``topk`` to the artifact root,
so the driver never holds the n_users x K table. Same output for any shard size or node count.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from components.errors import ConfigError
from components.pcrec.negatives import PositiveSet
from components.pcrec.topk import top_k
from pipelines.core.fanout import fan_out
from pipelines.pcrec.factors import model_factors
from pipelines.pcrec.target_data import load_target


USER_BLOCK = 2048   # users scored together (top_k's chunk): a shard holds whole blocks


def choose_model(runs: pd.DataFrame, method: str | None) -> tuple[str, int]:
    """(method, seed) by validation NDCG@10 (``method`` fixed when given)."""
    if method is not None:
        if method not in set(runs.method):
            raise ConfigError(f"recommend.method '{method}' was not trained; "
                              f"choose one of {sorted(set(runs.method))} or null")
    else:
        method = runs.groupby("method").best_valid_ndcg10.mean().idxmax()
    r = runs[runs.method == method].sort_values(["best_valid_ndcg10", "seed"], ascending=[False, True])
    return str(method), int(r.seed.iloc[0])


def run_recommend(ctx) -> None:
    cfg = ctx.cfg.recommend
    td = load_target(ctx)
    runs = pd.concat([ctx.input(s).df("runs").assign(stage=s) for s in ("finetune", "baselines", "peers")])
    method, seed = choose_model(runs, cfg.method)
    stage = runs[runs.method == method].stage.iloc[0]
    U, V = model_factors(ctx.input(stage).table("embeddings"), method, seed, td.n_users,
                         td.n_items, f"{stage}/embeddings")
    seen = PositiveSet(np.r_[td.train_u, td.valid_u, td.test_u],
                       np.r_[td.train_i, td.valid_i, td.test_i], td.n_items)
    shared = {"U": U, "V": V, "seen": seen, "k": cfg.k,
              "user_name": td.target_users().user.to_numpy(), "item_name": td.target_items().item.to_numpy()}
    blocks = [(s, min(s + USER_BLOCK, td.n_users)) for s in range(0, td.n_users, USER_BLOCK)]
    res = fan_out(ctx, "recommend", topk_shard, len(blocks), cfg.fanout, items=blocks, shared=shared)
    rows = sum(s["rows"] for s in res.stats)
    ctx.out.stats(method=method, seed=seed, users=int(td.n_users), rows=rows, shards=len(res.shards))
    ctx.log("top-%d for %d users from %s (seed %d, chosen by validation NDCG@10)",
            cfg.k, td.n_users, method, seed)


def topk_shard(shard, shared) -> dict:
    """One shard: the top-K rows of the users in the blocks ``shard.items`` ((lo, hi) each)."""
    lo, hi = shard.items[0][0], shard.items[-1][1]
    users = np.arange(lo, hi)
    items, scores, valid = top_k(shared["U"], shared["V"], users, shared["k"], shared["seen"],
                                 chunk=USER_BLOCK)
    r, c = np.nonzero(valid)
    out = pd.DataFrame({"user": shared["user_name"][users[r]], "rank": (c + 1).astype(np.int64),
                        "item": shared["item_name"][items[r, c]], "score": scores[r, c].astype(np.float64)})
    shard.out.write_table("topk", out)
    return {"rows": len(out)}
