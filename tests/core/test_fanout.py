"""The fan-out engine (pipelines/core/fanout.py) on a toy stage, through the real runner and Ray.

* the output is the same, bit for bit, for any shard size (seeds per unit, parts in shard order),
  and the fan-out settings are not part of the fingerprint;
* a shard that fails is retried and the manifest counts its attempts;
* a shard that keeps failing fails the stage: no manifest, nothing under the final name, no
  staging left; a recgen input error is not retried;
* shards write straight into an s3:// root, and the commit publishes them.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import Field

from components.errors import InputError
from pipelines.core.artifacts import MANIFEST, TMP_MARK
from pipelines.core.config import StageResources, StrictModel
from pipelines.core.fanout import FanoutConfig, fan_out, plan_shards, unit_seed
from pipelines.core.runner import run_pipeline
from pipelines.core.stage import Pipeline, Stage


class Draw(StrictModel):
    n: int = Field(23, ge=0)
    fail_shard: int | None = None      # this shard raises ...
    fail_times: int = 0                # ... on its first fail_times attempts (marker files count)
    marker_dir: str = ""
    input_error: bool = False
    fanout: FanoutConfig = FanoutConfig(shard_size=4)


class ToyFan(StrictModel):
    seed: int = 7
    draw: Draw = Draw()
    resources: dict[str, StageResources] = {}


def draw_shard(shard, shared) -> dict:
    cfg = shard.cfg.draw
    if shard.index == cfg.fail_shard:
        if cfg.input_error:
            raise InputError("bad row on purpose", row=shard.lo)
        tries = sorted(Path(cfg.marker_dir).glob(f"try-{shard.index}-*"))
        if len(tries) < cfg.fail_times:
            Path(cfg.marker_dir, f"try-{shard.index}-{len(tries)}").write_text("x")
            shard.out.write_bytes(f"extra/{shard.index}.bin", b"half")   # staged, then retried
            raise RuntimeError("shard failed on purpose")
    rows = []
    for u in shard.units:
        rng = np.random.default_rng(shard.unit_seed(u))
        rows.append((u, shared["offset"] + float(rng.normal()), rng.integers(0, 1 << 40)))
    shard.out.write_table("draws", pd.DataFrame(rows, columns=["unit", "x", "k"]))
    shard.out.write_bytes(f"extra/{shard.index}.bin", bytes([shard.index]) * 3)
    return {"n": len(rows)}


def run_draw(ctx) -> None:
    res = fan_out(ctx, "draw", draw_shard, ctx.cfg.draw.n, ctx.cfg.draw.fanout, shared={"offset": 1.5})
    ctx.out.stats(n=sum(s["n"] for s in res.stats))


PIPE = Pipeline(name="fan", config_cls=ToyFan, stages=[Stage("draw", run_draw, config_keys=("draw",))])


def _run(root, **draw):
    cfg = ToyFan(draw=Draw(**draw))
    return run_pipeline(PIPE, cfg, str(root), echo=False)


def test_plan_shards_and_unit_seed():
    assert plan_shards(10, 4) == [(0, 4), (4, 8), (8, 10)]
    assert plan_shards(0, 4) == []
    assert unit_seed(1, 5) == unit_seed(1, 5) != unit_seed(1, 6)
    assert 0 <= unit_seed(3, 2**40) < 2**63


def test_same_output_for_any_shard_size_and_fanout_not_fingerprinted(ray_local, tmp_path):
    tables, fps = [], set()
    for size in (3, 4, 100):
        res = _run(tmp_path / f"r{size}", fanout=FanoutConfig(shard_size=size))
        art = res.artifact("draw")
        tables.append(art.table("draws"))
        fps.add(res.plans["draw"].fingerprint)
        m = art.manifest
        n_shards = len(plan_shards(23, size))
        assert m["tables"]["draws"]["rows"] == 23
        assert len(m["tables"]["draws"]["parts"]) == n_shards
        assert [s["index"] for s in m["fanout"]["draw"]["shards"]] == list(range(n_shards))
        assert all(s["node_id"] and s["attempts"] == 1 for s in m["fanout"]["draw"]["shards"])
        assert {f for f in m["files"] if f.startswith("extra/")} == \
            {f"extra/{i}.bin" for i in range(n_shards)}
        assert (Path(art.dir) / "extra" / "0.bin").read_bytes() == b"\0\0\0"
    assert tables[0].equals(tables[1]) and tables[0].equals(tables[2])
    assert tables[0].column("unit").to_pylist() == list(range(23))
    assert len(fps) == 1   # shard size and resources never change the output, nor the fingerprint


def test_failed_shard_is_retried(ray_local, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    res = _run(tmp_path / "art", fail_shard=2, fail_times=1, marker_dir=str(marks))
    art = res.artifact("draw")
    shards = art.manifest["fanout"]["draw"]["shards"]
    assert [s["attempts"] for s in shards] == [1, 1, 2, 1, 1, 1]
    ref = _run(tmp_path / "ref").artifact("draw")
    assert art.table("draws").equals(ref.table("draws"))       # the retry rewrote the same bytes
    assert (Path(art.dir) / "extra" / "2.bin").read_bytes() == b"\2\2\2"


def _nothing_committed(root: Path):
    stage_dir = root / "fan" / "draw"
    left = sorted(p.name for p in stage_dir.iterdir()) if stage_dir.exists() else []
    assert not list(root.rglob(MANIFEST)), "no manifest may be written"
    assert not [n for n in left if TMP_MARK not in n], left      # nothing under a final name
    assert not [n for n in left if TMP_MARK in n], left          # and the staging was deleted


def test_shard_failing_after_retries_fails_the_stage_with_nothing_written(ray_local, tmp_path):
    marks = tmp_path / "marks"
    marks.mkdir()
    root = tmp_path / "art"
    with pytest.raises(Exception, match=r"draw: shard 1 failed 3 time\(s\).*failed on purpose"):
        _run(root, fail_shard=1, fail_times=99, marker_dir=str(marks),
             fanout=FanoutConfig(shard_size=4, max_retries=2))
    assert len(list(marks.iterdir())) == 3
    _nothing_committed(root)


def test_input_error_in_a_shard_is_not_retried(ray_local, tmp_path):
    root = tmp_path / "art"
    with pytest.raises(InputError, match="bad row on purpose"):
        _run(root, fail_shard=0, input_error=True)
    _nothing_committed(root)


def test_shards_write_into_an_s3_root(ray_local, s3_root):
    uri, srv, prefix = s3_root
    res = run_pipeline(PIPE, ToyFan(), uri, echo=False)
    art = res.artifact("draw")
    assert art.table("draws").column("unit").to_pylist() == list(range(23))
    keys = srv.keys(f"{prefix}/fan/draw/")
    assert not [k for k in keys if TMP_MARK in k], keys           # staging prefix gone
    assert sum("/draws/part-" in k for k in keys) == 6 and any(k.endswith(MANIFEST) for k in keys)
    assert art.manifest["fanout"]["draw"]["num_shards"] == 6


def test_node_slots_interleave_nodes_by_capacity(monkeypatch):
    import ray

    from pipelines.core import fanout

    nodes = [{"NodeID": "b", "Alive": True, "Resources": {"CPU": 1.0}},
             {"NodeID": "a", "Alive": True, "Resources": {"CPU": 2.0}},
             {"NodeID": "c", "Alive": False, "Resources": {"CPU": 8.0}},
             {"NodeID": "d", "Alive": True, "Resources": {"CPU": 4.0, "GPU": 1.0}}]
    monkeypatch.setattr(ray, "nodes", lambda: nodes)
    assert fanout._node_slots(FanoutConfig()) == ["a", "b", "d", "a", "d", "d", "d"]
    assert fanout._node_slots(FanoutConfig(num_cpus=2)) == ["a", "d", "d"]
    assert fanout._node_slots(FanoutConfig(num_gpus=1)) == []       # one node has a GPU: Ray decides
    monkeypatch.setattr(ray, "nodes", lambda: nodes[:1])
    assert fanout._node_slots(FanoutConfig()) == []


def test_node_placement_path_runs(ray_local, tmp_path, monkeypatch):
    """The node-affinity submission (used with >= 2 nodes) on the one embedded node."""
    import ray

    from pipelines.core import fanout

    me = ray.get_runtime_context().get_node_id()
    monkeypatch.setattr(fanout, "_node_slots", lambda cfg: [me, me])
    pipe = Pipeline(name="fan", config_cls=ToyFan,
                    stages=[Stage("draw", run_draw, config_keys=("draw",), kind="driver")])
    res = run_pipeline(pipe, ToyFan(), str(tmp_path / "art"), echo=False)
    assert res.artifact("draw").manifest["fanout"]["draw"]["nodes"] == [me]
