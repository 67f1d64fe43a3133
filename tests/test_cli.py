"""The `recgen` CLI end to end: a real subprocess, an embedded Ray on 127.0.0.1, real files."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def recgen(*args, cwd=ROOT, timeout=600, ray_address: str | None = None):
    env = dict(os.environ, DGLBACKEND="pytorch", TQDM_DISABLE="1")
    env.pop("RAY_ADDRESS", None)
    if ray_address:   # join the test session's Ray instead of starting one per command
        env["RAY_ADDRESS"] = ray_address
    return subprocess.run([sys.executable, "-m", "pipelines", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_unknown_pipeline_exits_2_with_choices():
    r = recgen("stages", "nope")
    assert r.returncode == 2
    assert "unknown pipeline 'nope'" in r.stderr and "pcrec" in r.stderr


def test_unknown_config_key_exits_2(tmp_path):
    r = recgen("run", "pcrec", "--set", "kcore.not_a_key=1", "--artifacts", str(tmp_path))
    assert r.returncode == 2, r.stderr
    assert "unknown key 'kcore.not_a_key'" in r.stderr
    assert not any(tmp_path.iterdir()), "nothing may be written for an invalid config"


def test_stages_lists_pcrec():
    r = recgen("stages", "pcrec")
    assert r.returncode == 0, r.stderr
    assert "ingest" in r.stdout and "kcore" in r.stdout


@pytest.mark.slow
def test_run_tiny_pcrec_twice_second_is_cached(tmp_path, ray_local):
    """Both runs join the session's Ray (RAY_ADDRESS); a CLI run starting its own embedded Ray
    is exercised by tests/core/test_interrupt.py and the egress audit."""
    import ray

    addr = ray.get_runtime_context().gcs_address
    cfg = ROOT / "configs" / "pcrec" / "tiny.yaml"
    r1 = recgen("run", "pcrec", "--config", str(cfg), "--artifacts", str(tmp_path), "--until", "kcore",
                ray_address=addr)
    assert r1.returncode == 0, r1.stdout + r1.stderr
    assert "kcore: done" in r1.stdout
    r2 = recgen("run", "pcrec", "--config", str(cfg), "--artifacts", str(tmp_path), "--until", "kcore",
                ray_address=addr)
    assert r2.returncode == 0, r2.stderr
    assert "ingest: cache hit" in r2.stdout and "kcore: cache hit" in r2.stdout
    rec = json.loads((tmp_path / "pcrec" / "latest.json").read_text())
    assert rec["stages"]["kcore"]["status"] == "hit"
    ls = recgen("artifacts", "ls", "pcrec", "--artifacts", str(tmp_path))
    assert ls.returncode == 0 and "kcore" in ls.stdout
    show = recgen("artifacts", "show", "pcrec", "kcore", "--artifacts", str(tmp_path))
    m = json.loads(show.stdout)
    assert m["stage"] == "kcore" and m["tables"]["interactions"]["rows"] > 0
