"""evaluate stage: test metrics of every trained model under both protocols.

For each (method, seed) of finetune/embeddings and baselines/embeddings, each evaluated target
user's test item is ranked

* ``full``: against all target items except the user's known items (train + validation);
* ``sampled``: against ``evaluate.sampled_negatives`` (99) items the user never interacted
  with, drawn once with ``evaluate.sample_seed`` and shared by every method and seed. A user
  with fewer non-positive items than that (a small catalogue) is ranked against all the
  negatives that exist (``per_user.n_candidates``); the stats and the report say how many.

Outputs ``metrics`` (method, protocol, metric, value, seed) with HR@K, NDCG@K (K in
``evaluate.ks``) and MRR, and ``per_user`` (method, protocol, seed, uid, shared, rank, <metrics>);
``shared`` marks users that also appear in the source domain. Models come from
finetune, baselines and peers (methods ``peer_*``).

The models fan out over the cluster (:mod:`pipelines.core.fanout`; unit = one trained model,
``evaluate.fanout.shard_size`` models per shard); ``per_user`` is written by the shards as
parts, in model order, the same for any shard size or node count.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from components.pcrec.metrics import metrics_from_ranks, rank_full, rank_sampled
from components.pcrec.negatives import PositiveSet, free_counts, sample_candidates
from pipelines.core.fanout import fan_out
from pipelines.core.hints import config_hints
from pipelines.pcrec.factors import model_factors, models
from pipelines.pcrec.target_data import load_target


_TABLES: dict[str, object] = {}   # per worker process: the last factor table read


def _factor_table(artifact):
    if artifact.fingerprint not in _TABLES:
        _TABLES.clear()
        _TABLES[artifact.fingerprint] = artifact.table("embeddings")
    return _TABLES[artifact.fingerprint]


def evaluate_shard(shard, d) -> dict:
    """One shard: both protocols for the models ``shard.items`` ((stage, method, seed) each)."""
    cfg, td = shard.cfg.evaluate, d["td"]
    per_user, rows = [], []
    for stage, m, s in shard.items:
        table = _factor_table(shard.input(stage))
        U, V = model_factors(table, m, s, td.n_users, td.n_items, f"{stage}/embeddings")
        for protocol, ranks in (("full", rank_full(U, V, td.test_u, td.test_i, d["known"])),
                                ("sampled", rank_sampled(U, V, td.test_u, td.test_i, d["cands"]))):
            met = metrics_from_ranks(ranks, ks=tuple(cfg.ks))
            per_user.append(pd.DataFrame({
                "method": m, "protocol": protocol, "seed": s, "uid": td.test_u,
                "shared": d["shared"][td.test_u], "rank": ranks,
                "n_candidates": d["n_cand"][protocol], **met}))
            rows += [{"method": m, "protocol": protocol, "metric": k,
                      "value": float(v.mean()), "seed": s} for k, v in met.items()]
    shard.out.write_table("per_user", pd.concat(per_user, ignore_index=True))
    return {"rows": rows}


def run_evaluate(ctx) -> None:
    cfg = ctx.cfg.evaluate
    td = load_target(ctx)
    known = PositiveSet(np.r_[td.train_u, td.valid_u], np.r_[td.train_i, td.valid_i], td.n_items)
    everything = PositiveSet(np.r_[td.train_u, td.valid_u, td.test_u],
                             np.r_[td.train_i, td.valid_i, td.test_i], td.n_items)
    with config_hints(n="lower evaluate.sampled_negatives"):
        cands = sample_candidates(td.test_u, everything, cfg.sampled_negatives,
                                  np.random.default_rng(cfg.sample_seed), allow_fewer=True)
    shared = np.zeros(td.n_users, bool)
    shared[td.shared_users().target_uid.to_numpy()] = True
    n_cand = {"full": free_counts(td.test_u, known) - 1,   # competitors: the target is not one
              "sampled": np.minimum(free_counts(td.test_u, everything), cfg.sampled_negatives)}
    short = n_cand["sampled"] < cfg.sampled_negatives
    if short.any():
        ctx.log("NOTE: %d of %d evaluated users have fewer than evaluate.sampled_negatives=%d "
                "non-positive items; the sampled protocol ranks them against all they have (min %d)",
                int(short.sum()), len(short), cfg.sampled_negatives, int(n_cand["sampled"].min()))

    # one unit per trained model, fanned out over the cluster (evaluate.fanout); each shard
    # reads its factors from the artifact root and writes its part of per_user there
    units = [(stage, m, int(s)) for stage in ("finetune", "baselines", "peers")
             for m, s in models(ctx.input(stage).table("embeddings", columns=["method", "seed"]))
             .itertuples(index=False)]
    shared_data = {"td": td, "known": known, "cands": cands, "shared": shared, "n_cand": n_cand}
    res = fan_out(ctx, "evaluate", evaluate_shard, len(units), cfg.fanout, items=units, shared=shared_data)
    rows = [r for st in res.stats for r in st["rows"]]
    metrics = pd.DataFrame(rows)
    ctx.out.write_table("metrics", metrics)
    summary = (metrics[metrics.metric == "ndcg@10"].groupby(["protocol", "method"]).value.mean()
               .unstack(0))
    ctx.log("test NDCG@10 (mean over seeds):\n%s", summary.to_string(float_format="%.4f"))
    ctx.out.stats(models=int(metrics[["method", "seed"]].drop_duplicates().shape[0]),
                  evaluated_users=len(td.test_u), shared_evaluated=int(shared[td.test_u].sum()),
                  sampled_negatives=int(cfg.sampled_negatives), sampled_short_users=int(short.sum()),
                  sampled_min_negatives=int(n_cand["sampled"].min()) if len(short) else 0)
