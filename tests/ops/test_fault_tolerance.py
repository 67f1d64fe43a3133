"""Fault tolerance of a training stage: a killed driver, then a killed Ray Train worker.

One scenario (each Ray Train start costs tens of seconds on 2 cores, so the two failures
share a run): (1) a driver process runs the pipeline and is SIGKILLed in the middle of
training; (2) the same pipeline is run again: the finished stage is a cache hit and training
resumes from the killed run's checkpoint; its worker process is then SIGKILLed mid-epoch and
Ray Train (FailureConfig.max_failures) restarts it from the last checkpoint; (3) the final
artifact equals an uninterrupted run at the same seed. Only processes this test started are
killed, by pid. Real runner, store, Ray Train V2 controller, workers and checkpoints.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from pipelines.core.runner import run_pipeline
from tests.ops.ft_pipeline import PIPELINE, config

ROOT = Path(__file__).resolve().parents[2]


def events(path: Path) -> list[dict]:
    return [json.loads(ln) for ln in path.read_text().splitlines()] if path.exists() else []


def wait_for(pred, timeout: float, what: str, poll: float = 0.1):
    t0 = time.time()
    while time.time() - t0 < timeout:
        v = pred()
        if v:
            return v
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def weights(root: Path) -> list[float]:
    rec = json.loads((root / "ft" / "latest.json").read_text())
    return pd.read_parquet(Path(rec["stages"]["fit"]["dir"]) / "weights.parquet").w.tolist()


@pytest.mark.long
def test_killed_driver_then_killed_worker_resume_to_identical_result(ray_local, tmp_path):
    import ray

    ref_root = tmp_path / "ref"
    run_pipeline(PIPELINE, config(trainer={"num_workers": 0, "max_failures": 0}), str(ref_root), echo=False)
    reference = weights(ref_root)

    ev, root = tmp_path / "events.jsonl", tmp_path / "art"
    # (1) a driver process joins this session's Ray, trains, and is killed mid-training.
    env = dict(os.environ, RAY_ADDRESS=ray.get_runtime_context().gcs_address, TQDM_DISABLE="1")
    p = subprocess.Popen([sys.executable, "-m", "tests.ops.ft_pipeline", str(root), str(ev)], cwd=ROOT,
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: any(e["kind"] == "epoch" and e["epoch"] == 2 for e in events(ev)), 300,
                 "epoch 2 under the first driver")
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait(timeout=30)
    assert not (root / "ft" / "latest.json").exists(), "the killed run must not have finished"
    n_first = len(events(ev))

    # (2) rerun the same pipeline; kill its training worker in the middle of its first epoch.
    box: dict = {}

    def target():
        try:
            box["result"] = run_pipeline(PIPELINE, config(str(ev)), str(root), echo=False)
        except BaseException as e:  # surfaced below
            box["error"] = e

    th = threading.Thread(target=target, daemon=True)
    th.start()
    resumed = wait_for(lambda: next((e for e in events(ev)[n_first:] if e["kind"] == "epoch"), None),
                       300, "the rerun's first epoch")
    os.kill(resumed["pid"], signal.SIGKILL)
    th.join(timeout=300)
    assert not th.is_alive(), "training did not finish after the worker was killed"
    assert "error" not in box, box.get("error")

    starts = [e for e in events(ev) if e["kind"] == "start"]
    assert len(starts) == 3, starts
    assert starts[0]["start_epoch"] == 0
    assert starts[1]["start_epoch"] >= 1        # resumed from the killed driver's checkpoint
    assert starts[2]["start_epoch"] >= starts[1]["start_epoch"]   # and again after the worker died
    assert starts[2]["pid"] != resumed["pid"]   # in a fresh worker process
    stages = box["result"].record["stages"]
    assert stages["data"]["status"] == "hit"    # the finished stage was skipped
    assert stages["fit"]["status"] == "run"
    manifest = json.loads((Path(stages["fit"]["dir"]) / "_manifest.json").read_text())
    assert manifest["stats"]["final_epoch"] == 4
    # (3) identical to the uninterrupted run.
    assert weights(root) == reference
