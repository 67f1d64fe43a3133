"""One retrain: new partitions -> snapshot -> pipeline run (cached) -> register -> decide.

Steps, under an exclusive file lock (a second retrain exits at once with :class:`RetrainBusy`):

1. list the partitions; those after the watermark are new. None: return "up-to-date"
   (no run, no new version: retrain is idempotent).
2. concatenate every partition up to the newest into a snapshot file and point the
   pipeline's data key at it (the ingest fingerprint covers its bytes).
3. run the pipeline through the runner: finished stages with the same fingerprint are cache
   hits (a retrain killed midway resumes), the rest recompute. With a champion, finetune also
   scores the champion's factors and warm-starts from them (:mod:`pipelines.retrain.warm`),
   so both are evaluated on the newest holdout (the split keeps each user's latest items).
4. register the candidate (lineage = every stage's fingerprint) and promote it only if it is
   not worse than the champion beyond the tolerance; the reason is recorded either way.
5. advance the watermark (last, so a crash before it repeats the same, cached work; a version
   already registered for this watermark is reused, never duplicated).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from components.errors import ConfigError, RecgenError
from pipelines.core.artifacts import Store
from pipelines.core.config import config_dump, load_config
from pipelines.modelreg import ModelRegistry, decide_promotion
from pipelines.retrain.config import RetrainConfig
from pipelines.retrain.partitions import (build_snapshot, list_partitions, new_partitions,
                                          read_watermark, write_json_atomic)
from pipelines.retrain.warm import CHAMPION, WARM, export_champion, with_champion


class RetrainBusy(RecgenError):
    """Another retrain of the same model holds the lock."""


@dataclass
class Outcome:
    status: str                      # "up-to-date" | "registered"
    watermark: str | None
    version: int | None = None
    promoted: bool | None = None
    reason: str = ""
    new_partitions: list[str] = field(default_factory=list)
    stages: dict[str, str] = field(default_factory=dict)   # stage -> hit/run/...


def state_dir(store: Store, model: str) -> Path:
    if not store.local:
        raise ConfigError(f"recgen retrain keeps its lock and watermark next to the artifacts and "
                          f"needs a local or NFS root, not {store.uri} — mount shared storage "
                          "(see docs/cluster.md) and pass its path with --artifacts")
    return Path(store.join("retrain", model))


def method_metrics(evaluate_artifact, protocol: str) -> dict[str, dict[str, float]]:
    """method -> {metric: mean over seeds} for one protocol of evaluate/metrics."""
    m = evaluate_artifact.df("metrics")
    m = m[m.protocol == protocol]
    if m.empty:
        raise ConfigError(f"evaluate/metrics has no protocol '{protocol}' — set retrain protocol "
                          "to one the evaluate stage writes (full or sampled)")
    g = m.groupby(["method", "metric"]).value.mean()
    return {meth: {k: float(v) for k, v in g[meth].items()} for meth in g.index.levels[0] if meth in g}


def _lock(path: Path):
    from filelock import FileLock, Timeout

    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise RetrainBusy(f"another `recgen retrain` is running for this model (lock {path} is held); "
                          "this run exits without changes — let the running one finish") from None
    return lock


def retrain(cfg: RetrainConfig, artifacts: str, address: str | None = None,
            echo: Callable[[str], None] = print) -> Outcome:
    """Run one retrain (see the module docstring). Ray is started or joined as needed."""
    store = Store(artifacts)
    sdir = state_dir(store, cfg.model)
    store.check_writable()
    lock = _lock(sdir / "retrain.lock")
    try:
        return _retrain_locked(cfg, store, sdir, address, echo)
    finally:
        lock.release()


def _retrain_locked(cfg: RetrainConfig, store: Store, sdir: Path, address, echo) -> Outcome:
    from pipelines.core.ray_env import init_ray
    from pipelines.core.runner import run_pipeline
    from pipelines.registry import get_pipeline

    wm_file = sdir / "watermark.json"
    wm = read_watermark(wm_file)
    parts = list_partitions(cfg.partitions.dir, cfg.partitions.pattern)
    new = new_partitions(parts, wm["watermark"])
    if not new:
        echo(f"[retrain] no partitions after watermark {wm['watermark']!r} in {cfg.partitions.dir}; "
             "nothing to do")
        return Outcome("up-to-date", wm["watermark"])
    watermark = new[-1].name
    consumed = [p for p in parts if p.name <= watermark]
    echo(f"[retrain] {len(new)} new partition(s): {', '.join(p.name for p in new)}")
    snap = build_snapshot(consumed, sdir / "snapshots" / f"upto-{Path(watermark).stem}{consumed[0].suffix}")

    base = get_pipeline(cfg.pipeline)
    pcfg = load_config(base.config_cls, cfg.base_config, [*cfg.sets, f"{cfg.data_key}={snap}"])
    reg = ModelRegistry(store.uri, cfg.model)
    champ = reg.champion()
    version = reg.find(watermark=watermark)
    stages: dict[str, str] = {}
    if version is None:
        champ_file = None
        if champ is not None and champ.model_ref:
            champ_file = export_champion(store, cfg.pipeline, champ.model_ref,
                                         sdir / "champions" / f"v{champ.version:06d}.parquet")
        pipe = with_champion(base, champ_file, warm=cfg.warm_start)
        init_ray(address)
        res = run_pipeline(pipe, pcfg, store.uri)
        stages = {n: p.status for n, p in res.plans.items()}
        per_method = method_metrics(res.artifact("evaluate"), cfg.protocol)
        method = WARM if (champ_file is not None and cfg.warm_start) else cfg.candidate_method
        if method not in per_method:
            raise ConfigError(f"evaluate has no method '{method}' (methods: {', '.join(sorted(per_method))}) "
                              "— set retrain candidate_method to one of them")
        seeds = res.artifact("evaluate").df("metrics")
        seed = int(seeds[seeds.method == method].seed.min())
        data = {"watermark": watermark, "partitions": [p.name for p in consumed],
                "new_partitions": [p.name for p in new], "snapshot": str(snap),
                "protocol": cfg.protocol,
                "champion_on_same_holdout": per_method.get(CHAMPION) if champ_file else None}
        version = reg.register(
            lineage={n: p.fingerprint for n, p in res.plans.items()}, metrics=per_method[method],
            config={"retrain": config_dump(cfg), "pipeline": config_dump(pcfg)}, data=data,
            run_id=res.run_id, parent=champ.version if champ else None,
            model_ref={"finetune": res.plans["finetune"].fingerprint,
                       "kcore": res.plans["kcore"].fingerprint, "method": method, "seed": seed})
        echo(f"[retrain] registered {cfg.model} v{version.version} ({method}, {cfg.policy.metric}="
             f"{version.metrics.get(cfg.policy.metric, float('nan')):.4f})")
    if version.decision is None:
        against = version.data.get("champion_on_same_holdout")
        if champ is not None and against is None:
            against = champ.metrics  # champion could not be re-scored: compare registered metrics
        d = decide_promotion(version.metrics, against if champ is not None else None, cfg.policy)
        reason = d.reason + ("" if champ is None else f" (champion v{champ.version} on the same holdout)"
                             if version.data.get("champion_on_same_holdout") else
                             f" (champion v{champ.version}'s registered metrics)")
        version = reg.record_decision(version.version, d.promote, reason)
        echo(f"[retrain] v{version.version}: {'PROMOTED' if d.promote else 'kept champion'} — {reason}")
    write_json_atomic(wm_file, {"watermark": watermark, "partitions": [p.name for p in consumed],
                                "version": version.version,
                                "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    return Outcome("registered", watermark, version.version, version.decision["promoted"],
                   version.decision["reason"], [p.name for p in new], stages)


def load_retrain_config(path: str | None, sets=()) -> RetrainConfig:
    return load_config(RetrainConfig, path, sets)
