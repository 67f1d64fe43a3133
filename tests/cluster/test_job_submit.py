"""`ray job submit` of a pipeline to a real two-node cluster on 127.0.0.1: stop + resubmit, the
resubmission running to the end (one test: a separate plain submission ran the same pipeline twice)."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

PIPELINE, CONFIG = "pcrec", "configs/pcrec/tiny.yaml"
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not (ROOT / CONFIG).exists() or not (ROOT / "pipelines/pcrec/dag.py").exists(),
                                reason="pcrec pipeline / tiny config not in the tree yet")


def submit(cluster, root: Path, *extra: str, sid: str | None = None):
    args = ["job", "submit", "--address", cluster.dashboard, "--working-dir", "."]
    if sid:
        args += ["--submission-id", sid, "--no-wait"]
    return cluster.ray(*args, *extra, "--", "recgen", "run", PIPELINE, "--config", CONFIG,
                       "--set", "pretrain.trainer.num_workers=1",   # a Ray Train worker on the cluster
                       "--artifacts", str(root), timeout=600)


def manifests(root: Path) -> dict[str, str]:
    """stage -> fingerprint of every finished stage output under the root."""
    out = {}
    for m in (root / PIPELINE).glob("*/*/_manifest.json"):
        d = json.loads(m.read_text())
        out[d["stage"]] = d["fingerprint"]
    return out


def job_status(cluster, sid: str) -> str:
    r = cluster.ray("job", "status", "--address", cluster.dashboard, sid, timeout=60)
    text = r.stdout + r.stderr  # "... succeeded" / "... was stopped" / "... failed" / "Status ...: RUNNING"
    for word, status in (("succeeded", "SUCCEEDED"), ("was stopped", "STOPPED"), ("' failed", "FAILED"),
                         ("RUNNING", "RUNNING"), ("PENDING", "PENDING")):
        if word in text:
            return status
    return "UNKNOWN: " + text[-500:]


def test_job_stop_midway_then_resubmit_reuses_finished_stages(cluster, tmp_path):
    """Submit, stop once the first stage is published, submit the same job again: it runs to
    the end on the cluster, reusing exactly the stages finished before the stop."""
    assert cluster.alive_nodes() == 2
    root = tmp_path / "art"
    sid = f"recgen-stop-{int(time.time())}"
    r = submit(cluster, root, sid=sid)
    assert r.returncode == 0, r.stderr[-3000:]
    t0 = time.time()
    while not manifests(root):                      # wait until the first stage is published
        assert time.time() - t0 < 240, "no stage finished: " + cluster.ray(
            "job", "logs", "--address", cluster.dashboard, sid).stdout[-3000:]
        assert job_status(cluster, sid) in ("RUNNING", "PENDING")
        time.sleep(0.3)
    stop = cluster.ray("job", "stop", "--address", cluster.dashboard, sid, timeout=120)
    assert stop.returncode == 0, stop.stderr[-2000:]
    assert job_status(cluster, sid) == "STOPPED"
    before = manifests(root)
    assert not (root / PIPELINE / "latest.json").exists(), "the run must not have finished"

    again = submit(cluster, root)                   # the very same submission, run to the end
    assert again.returncode == 0, again.stdout[-4000:] + again.stderr[-4000:]
    assert "succeeded" in again.stdout + again.stderr
    latest = json.loads((root / PIPELINE / "latest.json").read_text())
    assert latest["status"] == "succeeded"
    done = manifests(root)                          # every stage of the run is published
    assert set(done) == set(latest["stages"])
    for stage, rec in latest["stages"].items():
        assert done[stage] == rec["fingerprint"]
        assert (Path(rec["dir"]) / "_manifest.json").exists()
    hits = {s for s, rec in latest["stages"].items() if rec["status"] == "hit"}
    assert hits == set(before), (hits, before)      # finished stages reused, nothing else
    assert set(latest["stages"]) - hits, "the stopped stages must have been computed"
    for stage, fp in before.items():
        assert latest["stages"][stage]["fingerprint"] == fp
