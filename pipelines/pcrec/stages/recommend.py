"""recommend stage: top-K unseen target items for every target-domain user.

The model is ``recommend.method`` or, when None, the method with the best mean *validation*
NDCG@10 over seeds (finetune/runs + baselines/runs + peers/runs; the test split is never used
to choose),
and within it the seed with the best validation NDCG@10. Seen items = every known target
interaction of the user (train + validation + test). Output ``topk``: user, rank (1..K), item,
score, with the original string ids.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from components.errors import ConfigError
from components.pcrec.negatives import PositiveSet
from components.pcrec.topk import top_k
from pipelines.pcrec.factors import model_factors
from pipelines.pcrec.target_data import load_target


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
    users = np.arange(td.n_users)
    items, scores, valid = top_k(U, V, users, cfg.k, seen)
    user_name = td.target_users().user.to_numpy()
    item_name = td.target_items().item.to_numpy()
    r, c = np.nonzero(valid)
    out = pd.DataFrame({"user": user_name[users[r]], "rank": (c + 1).astype(np.int64),
                        "item": item_name[items[r, c]], "score": scores[r, c].astype(np.float64)})
    ctx.out.write_table("topk", out)
    ctx.out.stats(method=method, seed=seed, users=int(td.n_users), rows=len(out))
    ctx.log("top-%d for %d users from %s (seed %d, chosen by validation NDCG@10)",
            cfg.k, td.n_users, method, seed)
