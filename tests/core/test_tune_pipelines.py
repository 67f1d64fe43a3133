"""`recgen tune video|vq`: each shipped search space (configs/<pipeline>/tune.yaml, lr x width,
2 trials) on the tiny config, through the generic engine (pipelines/core/tune.py), each trial
its own Ray job."""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.long
@pytest.mark.parametrize("pipeline", ["video", "vq"])
def test_search_two_trials_on_tiny(tmp_path, pipeline):
    root = tmp_path / "art"
    t0 = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "tune", pipeline, "--config", str(REPO / f"configs/{pipeline}/tiny.yaml"),
         "--space", str(REPO / f"configs/{pipeline}/tune.yaml"), "--artifacts", str(root), "--num-cpus", "2"],
        cwd=tmp_path, capture_output=True, text=True, timeout=900)
    wall = time.time() - t0
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out_dir = next((root / pipeline / "tune").iterdir())
    res = pd.read_parquet(out_dir / "results.parquet")
    assert len(res) == 2 and (res.status == "TERMINATED").all(), res
    assert res.value.notna().all() and (res.reports >= 2).all()      # per-epoch reports + the final one
    assert (out_dir / "best_config.yaml").exists() and list(out_dir.glob("*_vs_*.png"))
    print(f"{pipeline} search: {wall:.0f}s")
