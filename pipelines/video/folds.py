"""UCF101 / HMDB51 protocol: run the three official splits (and optionally several seeds) and
average (``recgen video-folds``).

Each (fold, seed) is an ordinary ``recgen run video`` up to ``evaluate`` with ``data.fold`` /
``seed`` set, so every run is cached and resumable like any other; the summary reads each run's
``evaluate/metrics.json`` and reports mean ± std (sample std, ``ddof=1``) of multi-view top-1,
mean-class accuracy, top-5 and single-view top-1 over the runs, plus each run's row. It is
written to ``<artifacts>/video/folds/<model>-<config fingerprint>.{json,md}``.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

import numpy as np

from components.errors import ConfigError
from pipelines.core.artifacts import fingerprint_of
from pipelines.core.config import config_dump

METRICS = (("multi_view", "top1"), ("multi_view", "mean_class_acc"), ("multi_view", "top5"),
           ("single_view", "top1"))


def fold_configs(cfg, folds: Iterable[int], seeds: Iterable[int]) -> list[tuple[int, int, Any]]:
    """``[(fold, seed, config)]`` for every fold x seed (``data.fold`` and ``seed`` replaced)."""
    if cfg.data.source != "ucf":
        raise ConfigError(f"video-folds runs the official UCF101/HMDB51 splits; data.source is "
                          f"{cfg.data.source!r}: set data.source=ucf with data.root and data.split_dir")
    folds, seeds = list(folds), list(seeds)
    bad = [f for f in folds if f not in (1, 2, 3)]
    if bad or not folds or not seeds:
        raise ConfigError(f"folds must be among 1, 2, 3 and seeds non-empty (got folds={folds}, seeds={seeds})")
    out = []
    for f in folds:
        for s in seeds:
            dump = config_dump(cfg)
            dump["seed"] = s
            dump["data"]["fold"] = f
            out.append((f, s, type(cfg).model_validate(dump)))
    return out


def summarize(runs: list[dict]) -> dict:
    """``{"runs": [...], "mean": {...}, "std": {...}}`` over per-run ``metrics.json`` dicts."""
    rows = [{"fold": r["fold"], "seed": r["seed"], "split": r["split"], "clips": r["clips"],
             **{f"{p}_{m}": float(r[p][m]) for p, m in METRICS}} for r in runs]
    keys = [f"{p}_{m}" for p, m in METRICS]
    mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    std = {k: (float(np.std([r[k] for r in rows], ddof=1)) if len(rows) > 1 else 0.0) for k in keys}
    return {"runs": rows, "mean": mean, "std": std, "n": len(rows)}


def markdown(summary: dict, title: str) -> str:
    cols = ["multi_view_top1", "multi_view_mean_class_acc", "multi_view_top5", "single_view_top1"]
    names = ["top-1", "mean-class", "top-5", "top-1 (1 view)"]
    lines = [f"# {title}", "", "| fold | seed | split | clips | " + " | ".join(names) + " |",
             "| --- | --- | --- | --- | " + " | ".join("---" for _ in cols) + " |"]
    for r in summary["runs"]:
        lines.append(f"| {r['fold']} | {r['seed']} | {r['split']} | {r['clips']} | "
                     + " | ".join(f"{r[c]:.3f}" for c in cols) + " |")
    lines.append(f"| **mean ± std** ({summary['n']} runs) | | | | "
                 + " | ".join(f"{summary['mean'][c]:.3f} ± {summary['std'][c]:.3f}" for c in cols) + " |")
    return "\n".join(lines) + "\n"


def run_folds(cfg, store, folds: Iterable[int] = (1, 2, 3), seeds: Iterable[int] = (0,),
              run: Callable | None = None, echo: bool = True) -> dict:
    """Run ``evaluate`` for every fold x seed on ``store`` (a :class:`Store`) and write the summary."""
    from pipelines.core.runner import run_pipeline
    from pipelines.video.dag import PIPELINE

    run = run or (lambda c: run_pipeline(PIPELINE, c, store.uri, until="evaluate", echo=echo))
    runs = []
    for fold, seed, c in fold_configs(cfg, folds, seeds):
        res = run(c)
        m = res.artifact("evaluate").json("metrics")
        runs.append({**m, "fold": fold, "seed": seed})
    summary = summarize(runs)
    dump = config_dump(cfg)
    dump.pop("seed", None)
    dump["data"].pop("fold", None)
    name = f"{cfg.model.name}-{fingerprint_of(dump)[:10]}"
    summary.update(model=cfg.model.name, folds=list(folds), seeds=list(seeds), name=name)
    md = markdown(summary, f"{cfg.model.name}: {len(list(folds))} official splits x {len(list(seeds))} seed(s)")
    store.write_json_atomic(store.join("video", "folds", f"{name}.json"), summary)
    store.write_bytes_atomic(store.join("video", "folds", f"{name}.md"), md.encode())
    summary["markdown"] = md
    return summary
