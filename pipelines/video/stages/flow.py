"""flow: optical flow of every clip at decode.resize, clipped and quantised to uint8, cached."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd

from components.errors import InputError
from components.video.decode import read_all_frames
from components.video.flow import compute_flow, quantize_flow
from pipelines.video.stages.common import load_index


def run_flow(ctx) -> None:
    cfg = ctx.cfg
    rows = []
    if not cfg.flow.enabled:
        ctx.out.write_table("flow_index", pd.DataFrame({"video_id": pd.Series([], dtype="string"),
                                                        "file": pd.Series([], dtype="string"),
                                                        "pairs": pd.Series([], dtype="int64")}))
        ctx.out.stats(enabled=False)
        return
    index, _ = load_index(ctx)
    side = cfg.decode.resize

    def one(i_row):
        i, r = i_row
        try:
            frames = read_all_frames(r.path, size=(side, side), max_frames=r.frame_start + r.num_frames)
        except InputError as exc:
            return None, f"{r.video_id}: {exc}"
        frames = frames[r.frame_start:r.frame_start + r.num_frames]
        q = quantize_flow(compute_flow(frames, cfg.flow.method), cfg.flow.bound)
        fname = f"flow/{i:06d}.npy"
        np.save(ctx.out.path(fname), q)
        return (r.video_id, fname, len(q)), None

    t0 = time.perf_counter()
    errors = []
    with ThreadPoolExecutor(cfg.flow.workers) as pool:
        for res, err in ctx.progress(pool.map(one, enumerate(index.itertuples(index=False))),
                                     desc="flow", total=len(index)):
            if err:
                errors.append(err)
            else:
                rows.append(res)
    secs = time.perf_counter() - t0
    if errors:  # ingest verified these files; a failure here means they changed since
        raise InputError(f"{len(errors)} clips failed to decode for flow, e.g. {errors[0]}",
                         fix="re-run ingest (--force ingest)")
    table = pd.DataFrame(rows, columns=["video_id", "file", "pairs"])
    ctx.out.write_table("flow_index", table)
    pairs = int(table["pairs"].sum())
    ctx.out.stats(enabled=True, method=cfg.flow.method, pairs=pairs, seconds=round(secs, 2),
                  pairs_per_s=round(pairs / secs, 1) if secs else None)
    ctx.log("%s flow for %d clips (%d pairs) in %.1fs", cfg.flow.method, len(table), pairs, secs)
