"""ingest: dataset layout -> clip index + rejects (+ rendered videos for synthetic sources)."""
from __future__ import annotations

import os

import pandas as pd

from components.video.arrow import render_arrow_of_time
from components.video.index import (assemble_index, check_unique_ids, probe_candidates, read_kinetics_csv,
                                    read_split_files, scan_folder)
from components.video.motion import MOTION_CLASSES, render_dataset
from components.errors import InputError
from pipelines.core.fanout import fan_out
from pipelines.core.hints import config_hints

# Component argument -> hint naming the config key that fed it (see pipelines.core.hints).
INDEX_HINTS = {
    "root": "set data.root to a folder of class folders",
    "split_dir": "point data.split_dir at the official split files",
    "csv_path": "set data.csv to the annotations CSV",
}


def external_inputs(cfg) -> dict[str, str]:
    """The dataset paths of the chosen source (``{path: config key}``); rendered sources have none."""
    d = cfg.data
    if d.source in ("motion", "arrow"):
        return {}
    return {p: f"data.{k}" for k in ("root", "split_dir", "csv") if (p := getattr(d, k))}


def _render(ctx, d) -> tuple[pd.DataFrame, list[str] | None, str]:
    videos = os.path.dirname(ctx.out.path("videos/.keep"))
    if d.source == "motion":
        m = d.motion
        render_dataset(videos, clips_per_class={"train": m.train_per_class, "val": m.val_per_class},
                       size=m.size, num_frames=m.num_frames, fps=m.fps, seed=ctx.seed)
        classes = list(MOTION_CLASSES)
    else:
        a = d.arrow
        render_arrow_of_time(videos, windows_per_source=a.windows_per_source, clip_len=a.clip_len,
                             size=a.size, seed=ctx.seed)
        classes = ["backward", "forward"]
    return scan_folder(videos), classes, videos


def probe_shard(shard, _shared) -> dict:
    """One shard of the probing: the candidate rows ``shard.items`` (returned, small)."""
    return {"rows": probe_candidates(shard.items, verify=shard.cfg.data.verify)}


def _check_rejects(rejects: pd.DataFrame, n: int, allowed: float) -> None:
    """Fail before anything is committed when more videos were rejected than allowed."""
    if n == 0 or len(rejects) / n <= allowed:
        return
    shown = "; ".join(f"{r.path}: {r.reason}" for r in rejects.head(5).itertuples())
    more = f" (and {len(rejects) - 5} more)" if len(rejects) > 5 else ""
    raise InputError(
        f"{len(rejects)} of {n} videos cannot be used: {shown}{more}",
        fix=f"repair or remove them, or set data.max_reject_fraction to at least {len(rejects) / n:.3f} "
            "to index the others (the rejected files are listed with their reason)")


def run_ingest(ctx) -> None:
    d = ctx.cfg.data
    base = None
    classes = None
    if d.source in ("motion", "arrow"):
        cand, classes, videos = _render(ctx, d)
        base = os.path.dirname(videos)
    else:
        with config_hints(INDEX_HINTS):
            if d.source == "folder":
                cand = scan_folder(d.root, val_fraction=d.val_fraction, seed=ctx.seed)
            elif d.source == "ucf":
                cand, classes = read_split_files(d.root, d.split_dir, fold=d.fold)
            else:
                cand = read_kinetics_csv(d.csv, d.root)
    check_unique_ids(cand)
    # probing fans out over the cluster (data.probe); videos rendered into a node-local temp
    # dir (an object-store root) are probed in this process
    res = fan_out(ctx, "probe", probe_shard, len(cand), d.probe, items=cand,
                  local=base is not None and not ctx.out.store.local)
    index, rejects = assemble_index([r for s in res.stats for r in s["rows"]], classes,
                                    min_frames=d.min_frames)
    _check_rejects(rejects, len(cand), d.max_reject_fraction)
    if classes is None:
        classes = sorted(set(cand["label"]))
    if base is not None:  # rendered files live inside this artifact: store relative paths
        index["path"] = [os.path.relpath(p, base) for p in index["path"]]
        rejects["path"] = [os.path.relpath(p, base) for p in rejects["path"]]
    ctx.out.write_table("index", index)
    ctx.out.write_table("rejects", rejects)
    ctx.out.write_json("classes", classes)
    per_split = index.groupby("split").size().to_dict()
    ctx.out.stats(clips=len(index), rejected=len(rejects), classes=len(classes), per_split=per_split)
    ctx.log("indexed %d clips (%s), rejected %d", len(index), per_split, len(rejects))
    for r in rejects.head(10).itertuples():
        ctx.log("rejected %s: %s", r.path, r.reason)
