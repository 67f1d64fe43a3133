"""Ctrl-C and SIGTERM with real signals (subprocess + os.kill), issue 12 item 4.

`recgen run`: SIGTERM in a Ray-task stage and SIGINT in a training stage (TorchTrainer) both
stop the run, print the message, exit 143 / 130 and record the run as interrupted; the rerun
reuses the finished stages. `recgen tune`: SIGINT during the search writes no results, prints
the `--resume` command, exits 130; that command finishes the search.
"""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
TINY = str(REPO / "configs" / "pcrec" / "tiny.yaml")
MESSAGE = "interrupted; rerun the same command to resume"


class Proc:
    """A recgen command whose stdout lines are collected by a thread."""

    def __init__(self, args: list[str], cwd: Path):
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.p = subprocess.Popen([sys.executable, "-m", "pipelines.cli", *args], cwd=cwd, env=env,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self) -> None:
        for line in self.p.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = 400) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if any(text in ln for ln in self.lines):
                return
            if self.p.poll() is not None:
                break
            time.sleep(0.2)
        self.p.kill()
        raise AssertionError(f"never saw {text!r}; stdout:\n" + "\n".join(self.lines[-40:])
                             + "\nstderr:\n" + self.p.stderr.read()[-3000:])

    def finish(self, timeout: float = 600) -> tuple[int, str]:
        rc = self.p.wait(timeout)
        self.t.join(5)
        return rc, self.p.stderr.read()


def _records(root: Path, pipeline: str = "pcrec") -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((root / pipeline / "runs").glob("*.json"))]


@pytest.mark.slow
def test_run_sigterm_in_a_task_stage_and_sigint_in_training_then_resume(tmp_path):
    root = tmp_path / "art"
    cmd = ["run", "pcrec", "--config", TINY, "--artifacts", str(root), "--num-cpus", "2", "--until", "pretrain",
           "--set", "pretrain.trainer.num_workers=1"]   # SIGINT lands in a TorchTrainer

    # SIGTERM while a Ray-task stage (ingest) runs
    p = Proc(cmd, REPO)
    p.wait_for("ingest: running")
    os.kill(p.p.pid, signal.SIGTERM)
    rc, err = p.finish()
    assert rc == 143, err[-2000:]
    assert MESSAGE in err and "Traceback" not in err
    rec = _records(root)
    assert [r["status"] for r in rec] == ["interrupted"]
    assert "SIGTERM" in rec[0]["error"]

    # SIGINT while the TorchTrainer of the pretrain stage trains
    p = Proc(cmd, REPO)
    p.wait_for("[pcrec/pretrain]")
    time.sleep(3)
    os.kill(p.p.pid, signal.SIGINT)
    rc, err = p.finish()
    assert rc == 130, err[-2000:]
    assert MESSAGE in err and "Traceback" not in err
    rec = _records(root)
    assert sorted(r["status"] for r in rec) == ["interrupted", "interrupted"]
    last = max(rec, key=lambda r: r["run_id"])
    assert last["stages"]["sample"]["status"] == "run" and last["stages"]["pretrain"]["status"] == "not-run"
    assert not (root / "pcrec" / "latest.json").exists()

    # the same command again: finished stages are cache hits, the run completes
    p = Proc(cmd, REPO)
    rc, err = p.finish()
    assert rc == 0, err[-3000:]
    out = "\n".join(p.lines)
    for stage in ("ingest", "kcore", "graph", "sample"):
        assert f"{stage}: cache hit" in out
    assert "pretrain: done" in out
    assert json.loads((root / "pcrec" / "latest.json").read_text())["status"] == "succeeded"


SMALL_SPACE = ("space=[{path: sample.r, grid: [2]}, {path: finetune.train.loss.name, grid: [logit_margin, l2_hinge]},"
               " {path: finetune.train.loss.params.m, choice: [0.0]}, {path: finetune.train.lr, choice: [0.05]}]")


@pytest.mark.slow
@pytest.mark.long
def test_tune_sigint_writes_no_results_and_resume_finishes(tmp_path):
    root = tmp_path / "art"
    cmd = ["tune", "pcrec", "--config", TINY, "--artifacts", str(root), "--num-cpus", "2", "--no-test",
           "--set", "pretrain.trainer.num_workers=0", "--tune-set", "name=t", "--tune-set", SMALL_SPACE,
           "--tune-set", "scheduler.kind=fifo", "--tune-set", "max_concurrent_trials=1"]
    p = Proc(cmd, REPO)
    p.wait_for("[tune] max_concurrent_trials")
    time.sleep(10)                       # the first trial is running
    os.kill(p.p.pid, signal.SIGINT)
    rc, err = p.finish()
    assert rc == 130, err[-2000:]
    out_dir = root / "pcrec" / "tune" / "t"
    for f in ("results.md", "best.json", "best_config.yaml", "results.parquet"):
        assert not (out_dir / f).exists(), f
    resume = [ln.strip() for ln in err.splitlines() if ln.strip().startswith("recgen tune ")]
    assert resume and resume[-1].endswith("--resume"), err[-2000:]
    args = shlex.split(resume[-1])[1:]
    assert args == cmd + ["--resume"]

    p = Proc(args, REPO)
    rc, err = p.finish()
    assert rc == 0, err[-3000:]
    res = pd.read_parquet(out_dir / "results.parquet")
    assert len(res) == 2 and (res.status == "TERMINATED").all()
    assert (out_dir / "best_config.yaml").exists()
