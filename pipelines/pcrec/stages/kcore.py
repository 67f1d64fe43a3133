"""kcore: per-domain (k_user, k_item)-core of the ingested interactions, ids re-indexed.

Outputs: ``interactions`` (same columns as ingest's, uid/iid contiguous per domain again),
``users``, ``items`` (id maps), and the per-iteration log ``kcore_log.json``.
"""
from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from components.data.ingest import domain_stats, format_stats, index_ids
from components.graph.kcore import kcore_by_domain
from pipelines.core.hints import config_hints

_LOWER_K = "lower the k (config kcore.*) or use a denser dataset"


def run_kcore(ctx) -> None:
    table = ctx.input("ingest").table("interactions")
    k = ctx.cfg.kcore.k()
    ctx.log("k-core per domain (k_user, k_item): %s", k)
    domains = table.column("domain").to_numpy(zero_copy_only=False)
    uid = table.column("uid").to_numpy()
    iid = table.column("iid").to_numpy()
    with config_hints(k_user=_LOWER_K, k_item=_LOWER_K):
        mask, logs = kcore_by_domain(
            domains, uid, iid, k,
            on_iteration=lambda d, s: ctx.log("%s iteration %d: removed %d rows (%d users, %d items), %d left",
                                              d, s["iteration"], s["rows_removed"], s["users_removed"],
                                              s["items_removed"], s["rows_left"]))
    kept = table.filter(pa.array(mask))
    inter, users, items = index_ids(kept)
    ctx.out.write_table("interactions", inter)
    ctx.out.write_table("users", users)
    ctx.out.write_table("items", items)
    ctx.out.write_json("kcore_log", {"k": {d: list(v) for d, v in k.items()}, "iterations": logs})
    stats = domain_stats(inter)
    per_domain_removed = {d: int(pc.sum(pc.equal(table.column("domain"), d)).as_py() or 0)
                          - stats[d]["interactions"] for d in ("source", "target")}
    ctx.out.stats(rows_in=table.num_rows, rows=inter.num_rows, removed=table.num_rows - inter.num_rows,
                  removed_per_domain=per_domain_removed,
                  iterations={d: len(v) for d, v in logs.items()}, **stats)
    ctx.log("%s", format_stats(stats, "after k-core:"))
