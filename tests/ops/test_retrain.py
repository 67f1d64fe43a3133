"""`recgen retrain` on time partitions of the tiny fixture: register, promote, lock, idempotency,
lineage, rollback. Real pipeline runs (embedded Ray of the session), real registry files."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from filelock import FileLock

from pipelines.core.artifacts import Store
from pipelines.core.config import load_config
from pipelines.modelreg import ModelRegistry
from pipelines.retrain.config import RetrainConfig
from pipelines.retrain.partition_data import write_partitions
from pipelines.retrain.retrain import retrain

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "retrain" / "tiny.yaml"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Partitions of tiny.csv (base + 2 later months), an inbox where they 'arrive', a root."""
    base = tmp_path_factory.mktemp("retrain")
    df = pd.read_csv(ROOT / "data" / "fixtures" / "tiny.csv")
    edges = [int(df.ts.quantile(0.85)), int(df.ts.quantile(0.93)), int(df.ts.max()) + 1]
    parts = write_partitions(df, edges, ["p1", "p2"], base / "all")
    inbox = base / "inbox"
    inbox.mkdir()
    return {"parts": parts, "inbox": inbox, "root": base / "art"}


def arrive(world, i: int) -> None:
    p = world["parts"][i]
    (world["inbox"] / p.name).write_bytes(p.read_bytes())


def cfg_for(world, **over) -> RetrainConfig:
    sets = [f"partitions.dir={world['inbox']}", *(f"{k}={v}" for k, v in over.items())]
    return load_config(RetrainConfig, CONFIG, sets)


def cli(world, *extra):
    return subprocess.run([sys.executable, "-m", "pipelines", "retrain", "--config", str(CONFIG),
                           "--set", f"partitions.dir={world['inbox']}", "--artifacts", str(world["root"]),
                           *extra], cwd=ROOT, capture_output=True, text=True, timeout=600)


def registry_files(world) -> dict[str, str]:
    d = world["root"] / "registry" / "pcrec"
    return {str(p.relative_to(d)): p.read_text() for p in sorted(d.rglob("*.json"))} if d.exists() else {}


def test_retrain_lifecycle(ray_local, world):
    root = str(world["root"])
    reg = ModelRegistry(root, "pcrec")
    store = Store(root)

    # 1. the base partition: first version, promoted (no champion yet).
    arrive(world, 0)
    out = retrain(cfg_for(world), root, echo=lambda s: None)
    assert (out.status, out.version, out.promoted) == ("registered", 1, True)
    assert "no champion yet" in out.reason
    v1 = reg.get(1)
    assert v1.data["watermark"] == "000-base.csv" and v1.model_ref["method"] == "pretrain_init"

    # 2. nothing new: no run, no new version, registry files untouched (idempotent).
    before = registry_files(world)
    r = cli(world)
    assert r.returncode == 0, r.stderr
    assert "nothing to do" in r.stdout
    assert registry_files(world) == before

    # 3. a second retrain while one holds the lock exits at once, changing nothing.
    arrive(world, 1)
    with FileLock(str(world["root"] / "retrain" / "pcrec" / "retrain.lock")):
        busy = cli(world)
    assert busy.returncode == 75, busy.stdout + busy.stderr
    assert "another `recgen retrain` is running" in busy.stderr and "retrain.lock" in busy.stderr
    assert registry_files(world) == before
    assert json.loads((world["root"] / "retrain" / "pcrec" / "watermark.json").read_text())["watermark"] == "000-base.csv"

    # 4. the new partition: warm start from the champion, both scored on the newest holdout.
    out2 = retrain(cfg_for(world), root, echo=lambda s: None)
    assert out2.version == 2 and out2.new_partitions == ["001-p1.csv"]
    v2 = reg.get(2)
    assert v2.parent == 1 and v2.model_ref["method"] == "warm_start"
    champ_now = v2.data["champion_on_same_holdout"]
    tol, m = v2.config["retrain"]["policy"]["tolerance"], "ndcg@10"
    assert v2.decision["promoted"] == (v2.metrics[m] - champ_now[m] >= -tol)
    assert f"{champ_now[m]:.4f}" in v2.decision["reason"] and "same holdout" in v2.decision["reason"]
    assert reg.champion().version == (2 if v2.decision["promoted"] else 1)

    # Lineage: every stage fingerprint names a finished artifact; the evaluate output it points
    # to holds the registered metrics, for the warm-started model and the re-scored champion.
    for stage, fp in v2.lineage.items():
        assert store.manifest("pcrec", stage, fp) is not None, stage
    metrics = store.artifact("pcrec", "evaluate", v2.lineage["evaluate"]).df("metrics")
    full = metrics[(metrics.protocol == "full") & (metrics.metric == m)]
    assert set(full.method) >= {"warm_start", "champion", "pretrain_init"}
    assert full[full.method == "warm_start"].value.mean() == pytest.approx(v2.metrics[m])
    assert v2.lineage["finetune"] == v2.model_ref["finetune"]
    assert v1.lineage["ingest"] != v2.lineage["ingest"]       # new data -> new ingest

    # 5. rollback / promote through the CLI move the champion and keep the history.
    reg.promote(2, reason="test") if reg.champion().version == 1 else None
    rb = subprocess.run([sys.executable, "-m", "pipelines", "registry", "rollback", "--artifacts", root],
                        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert rb.returncode == 0, rb.stderr
    assert reg.champion().version == 1
    assert reg.state()["history"][-1]["action"] == "rollback"
