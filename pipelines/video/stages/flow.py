"""flow: optical flow of every clip at decode.resize, clipped and quantised to uint8, cached.

Fans out over the clips (:mod:`pipelines.core.fanout`; unit = one clip of the ingest index,
``flow.fanout.shard_size`` clips per shard task, ``flow.fanout.num_cpus`` each). Each shard
decodes its clips on whatever node it runs, reads rendered videos from the ingest artifact at
the artifact root, and writes ``flow/<clip>.npy`` plus its part of ``flow_index`` straight to
the artifact root; the stage commits once every shard is written. Flow is deterministic per
clip, so the output is the same for any shard size or node count.
"""
from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
import pyarrow as pa

from components.errors import InputError
from components.video.decode import read_all_frames
from components.video.flow import compute_flow, quantize_flow
from components.video.transforms import short_side_size
from pipelines.core.fanout import fan_out

FLOW_SCHEMA = pa.schema([("video_id", pa.string()), ("file", pa.string()), ("pairs", pa.int64())])


def flow_shard(shard, _shared) -> dict:
    """One shard: flow of the clips ``shard.items`` (rows ``shard.lo..hi`` of the index)."""
    cfg = shard.cfg
    side = cfg.decode.resize
    ingest = shard.input("ingest")
    rows, errors = [], []
    for i, r in zip(shard.units, shard.items.itertuples(index=False)):
        path = r.path if os.path.isabs(r.path) else ingest.path(r.path)
        try:
            frames = read_all_frames(path, size=short_side_size(r.height, r.width, side),   # as ClipDataset
                                     max_frames=r.frame_start + r.num_frames, backend=cfg.decode.backend)
        except InputError as exc:
            errors.append(f"{r.video_id}: {exc}")
            continue
        frames = frames[r.frame_start:r.frame_start + r.num_frames]
        q = quantize_flow(compute_flow(frames, cfg.flow.method), cfg.flow.bound)
        rows.append((r.video_id, shard.out.save_npy(f"flow/{i:06d}.npy", q), len(q)))
    shard.out.write_table("flow_index", pd.DataFrame(rows, columns=FLOW_SCHEMA.names), schema=FLOW_SCHEMA)
    return {"errors": errors[:3], "n_errors": len(errors), "pairs": int(sum(r[2] for r in rows))}


def run_flow(ctx) -> None:
    cfg = ctx.cfg
    if not cfg.flow.enabled:
        ctx.out.write_table("flow_index", FLOW_SCHEMA.empty_table())
        ctx.out.stats(enabled=False)
        return
    index = ctx.input("ingest").df("index", columns=["video_id", "path", "frame_start", "num_frames",
                                                            "height", "width"])
    t0 = time.perf_counter()
    res = fan_out(ctx, "flow", flow_shard, len(index), cfg.flow.fanout, items=index)
    secs = time.perf_counter() - t0
    n_err = sum(s["n_errors"] for s in res.stats)
    if n_err:  # ingest verified these files; a failure here means they changed since
        first = next(e for s in res.stats for e in s["errors"])
        raise InputError(f"{n_err} clips failed to decode for flow, e.g. {first}",
                         fix="re-run ingest (--force ingest)")
    pairs = int(sum(s["pairs"] for s in res.stats))
    ctx.out.stats(enabled=True, method=cfg.flow.method, pairs=pairs, clips=len(index), seconds=round(secs, 2),
                  pairs_per_s=round(pairs / secs, 1) if secs else None, shards=len(res.shards),
                  nodes=len(res.nodes))
    ctx.log("%s flow for %d clips (%d pairs) in %.1fs", cfg.flow.method, len(index), pairs, secs)
