"""Model registry: versions, the promotion rule with its tolerance, rollback, the CLI."""
from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from components.errors import ConfigError
from pipelines.modelreg import ModelRegistry, PromotionPolicy, decide_promotion

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("cand,champ,tol,higher,promote", [
    (0.30, None, 0.0, True, True),     # first version always wins
    (0.30, 0.30, 0.0, True, True),     # equal is not worse
    (0.295, 0.30, 0.01, True, True),   # worse, but inside the tolerance
    (0.28, 0.30, 0.01, True, False),   # worse beyond the tolerance
    (0.35, 0.30, 0.0, True, True),     # better
    (1.10, 1.00, 0.05, False, False),  # lower-is-better metric got worse
    (0.95, 1.00, 0.0, False, True),    # lower-is-better metric improved
    (math.nan, 0.30, 1.0, True, False),  # NaN never wins
])
def test_promotion_rule(cand, champ, tol, higher, promote):
    pol = PromotionPolicy(metric="m", tolerance=tol, higher_is_better=higher)
    d = decide_promotion({"m": cand}, None if champ is None else {"m": champ}, pol)
    assert d.promote is promote
    assert "m" in d.reason  # the reason names the metric and the numbers
    if champ is not None and not math.isnan(cand):
        assert f"{champ:.4f}" in d.reason


def test_missing_metric_is_a_config_error():
    with pytest.raises(ConfigError, match="retrain.policy.metric"):
        decide_promotion({"hr@10": 0.1}, None, PromotionPolicy(metric="ndcg@10"))


def _reg(tmp_path) -> ModelRegistry:
    return ModelRegistry(str(tmp_path), "m1")


def test_register_versions_lineage_and_decisions(tmp_path):
    reg = _reg(tmp_path)
    v1 = reg.register(lineage={"ingest": "a" * 64, "finetune": "b" * 64}, metrics={"ndcg@10": 0.2},
                      config={"seed": 1}, data={"watermark": "p1"})
    v2 = reg.register(lineage={"ingest": "c" * 64}, metrics={"ndcg@10": 0.1}, config={}, parent=1)
    assert (v1.version, v2.version) == (1, 2)
    reg.record_decision(1, True, "first")
    reg.record_decision(2, False, "worse")
    assert reg.champion().version == 1
    again = ModelRegistry(str(tmp_path), "m1").get(1)   # read back from disk
    assert again.lineage["finetune"] == "b" * 64 and again.data["watermark"] == "p1"
    assert again.decision["promoted"] is True
    assert reg.get(2).decision == {**reg.get(2).decision, "promoted": False, "reason": "worse"}
    assert reg.find(watermark="p1").version == 1
    files = sorted(p.name for p in (tmp_path / "registry" / "m1" / "versions").iterdir())
    assert files == ["000001.json", "000002.json"]  # no temp files left behind
    assert [e["action"] for e in reg.state()["history"]] == ["promote", "reject"]


def test_rollback_walks_back_through_promotions(tmp_path):
    reg = _reg(tmp_path)
    for i in range(3):
        v = reg.register(lineage={}, metrics={"m": i}, config={})
        reg.record_decision(v.version, True, f"v{v.version}")
    assert reg.champion().version == 3
    assert reg.rollback().version == 2
    assert reg.rollback().version == 1          # not back to 3
    with pytest.raises(ConfigError, match="nothing to roll back"):
        reg.rollback()
    assert reg.rollback(to=3).version == 3
    with pytest.raises(ConfigError, match="no version 9"):
        reg.rollback(to=9)
    assert [e["action"] for e in reg.state()["history"]][-3:] == ["rollback", "rollback", "rollback"]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "pipelines", "registry", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_registry_cli(tmp_path):
    reg = _reg(tmp_path)
    for i, promote in [(0, True), (1, False)]:
        v = reg.register(lineage={"evaluate": "f" * 64}, metrics={"ndcg@10": 0.1 * i}, config={},
                         data={"watermark": f"2000-0{i + 1}"})
        reg.record_decision(v.version, promote, "because")
    base = ["--artifacts", str(tmp_path), "--model", "m1"]
    ls = _cli("ls", *base)
    assert ls.returncode == 0, ls.stderr
    rows = [ln for ln in ls.stdout.splitlines() if ln[2:6].strip().isdigit()]
    assert rows[0].startswith("*") and "promoted" in rows[0] and "kept champion" in rows[1]
    show = _cli("show", *base)
    assert json.loads(show.stdout)["version"] == 1 and json.loads(show.stdout)["is_champion"]
    assert _cli("promote", "2", *base, "--reason", "ops override").returncode == 0
    assert reg.champion().version == 2
    assert reg.state()["history"][-1]["reason"] == "ops override"
    rb = _cli("rollback", *base)
    assert rb.returncode == 0 and reg.champion().version == 1
    bad = _cli("promote", "7", *base)
    assert bad.returncode == 2 and "no version 7" in bad.stderr
