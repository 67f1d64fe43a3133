"""Runner: fingerprints, cache hits and misses, --force, atomic writes, run records."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from components.errors import ConfigError
from pipelines.core.artifacts import MANIFEST, Store
from pipelines.core.config import load_config
from pipelines.core.runner import plan, run_pipeline
from tests.core import toy_pipeline as toy

ROOT = Path(__file__).resolve().parents[2]


def statuses(res):
    return {n: p.status for n, p in res.plans.items()}


def test_cache_miss_then_hit_then_config_change(ray_local, tmp_root):
    pipe = toy.make()
    cfg = toy.ToyConfig()
    r1 = run_pipeline(pipe, cfg, str(tmp_root), echo=False)
    assert statuses(r1) == {"gen": "run", "scale": "run", "total": "run"}
    assert r1.artifact("total").df("total")["sum"].iloc[0] == pytest.approx(2.0 * sum(range(10)))

    r2 = run_pipeline(pipe, cfg, str(tmp_root), echo=False)
    assert statuses(r2) == {"gen": "hit", "scale": "hit", "total": "hit"}

    # a change in a section that only `scale` declares leaves `gen` cached
    cfg3 = toy.ToyConfig(scale=toy.Scale(factor=3.0))
    r3 = run_pipeline(pipe, cfg3, str(tmp_root), echo=False)
    assert statuses(r3) == {"gen": "hit", "scale": "run", "total": "run"}
    assert r3.artifact("total").df("total")["sum"].iloc[0] == pytest.approx(3.0 * sum(range(10)))


def test_force_recomputes_stage_and_downstream(ray_local, tmp_root):
    pipe = toy.make()
    cfg = toy.ToyConfig()
    r0 = run_pipeline(pipe, cfg, str(tmp_root), echo=False)
    store = Store(str(tmp_root))
    # a checkpoint left by an earlier run must not be resumed by a forced recompute
    ckpt = Path(store.scratch_dir("toy", "scale", r0.plans["scale"].fingerprint)) / "state.pt"
    ckpt.write_text("old")
    r = run_pipeline(pipe, cfg, str(tmp_root), force=["scale"], echo=False)
    assert statuses(r) == {"gen": "hit", "scale": "forced", "total": "forced"}
    assert r.plans["total"].wall_time_s is not None
    assert not ckpt.exists()


def test_until_runs_only_upstream(ray_local, tmp_root):
    r = run_pipeline(toy.make(), toy.ToyConfig(), str(tmp_root), until="scale", echo=False)
    assert set(r.plans) == {"gen", "scale"}


def test_manifest_contents_and_run_record(ray_local, tmp_root):
    r = run_pipeline(toy.make(), toy.ToyConfig(), str(tmp_root), echo=False)
    art = r.artifact("scale")
    m = art.manifest
    assert m["stage"] == "scale" and m["config"] == {"scale": {"factor": 2.0}}
    assert m["inputs"] == {"gen": r.plans["gen"].fingerprint}
    assert m["tables"]["scaled"]["rows"] == 10
    assert m["tables"]["scaled"]["schema"]["y"] == "double"
    assert "note.txt" in m["files"] and "scaled.parquet" in m["files"]
    assert m["wall_time_s"] >= 0 and m["code_version"]["package"]
    rec = json.loads((tmp_root / "toy" / "latest.json").read_text())
    assert rec["status"] == "succeeded" and rec["config"]["gen"]["n"] == 10
    assert rec["stages"]["total"]["fingerprint"] == r.plans["total"].fingerprint


def test_failed_stage_leaves_no_artifact_and_reruns(ray_local, tmp_root):
    pipe = toy.make()
    bad = toy.ToyConfig(gen=toy.Gen(fail=True))
    with pytest.raises(Exception, match="gen failed on purpose"):
        run_pipeline(pipe, bad, str(tmp_root), echo=False)
    gen_dir = tmp_root / "toy" / "gen"
    assert not list(gen_dir.rglob(MANIFEST))
    assert not [p for p in gen_dir.iterdir() if p.name.startswith(".tmp-")]
    rec = json.loads(sorted((tmp_root / "toy" / "runs").glob("*.json"))[-1].read_text())
    assert rec["status"] == "failed" and "on purpose" in rec["error"]


def test_killed_mid_write_leaves_no_manifest_and_is_recomputed(tmp_root, tmp_path):
    """SIGKILL a driver while a stage is writing; the next run recomputes that stage."""
    marker = tmp_path / "marker"
    script = (
        "import sys; sys.path.insert(0, %r)\n"
        "from tests.core import toy_pipeline as toy\n"
        "from pipelines.core.runner import run_pipeline\n"
        "from pipelines.core.ray_env import init_ray\n"
        "init_ray(None, num_cpus=2)\n"   # a loopback Ray (an implicit argument-less ray.init is turned off)
        "cfg = toy.ToyConfig(gen=toy.Gen(sleep_s=60))\n"
        "run_pipeline(toy.make('driver'), cfg, %r, echo=False)\n" % (str(ROOT), str(tmp_root))
    )
    env = dict(os.environ, TOY_MARKER=str(marker))
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    deadline = time.time() + 60
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert marker.exists(), "the stage never started writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    gen_dir = tmp_root / "toy" / "gen"
    leftovers = [p for p in gen_dir.iterdir() if p.name.startswith(".tmp-")]
    assert leftovers and list(leftovers[0].glob("*.parquet")), "expected a half-written temp dir"
    assert not list(gen_dir.rglob(MANIFEST))
    store = Store(str(tmp_root))
    cfg = toy.ToyConfig(gen=toy.Gen(sleep_s=60))
    p = plan(toy.make("driver"), cfg, store)
    assert p["gen"].status == "run"
    # the same config without the sleep differs in fingerprint; rerun the killed one quickly
    fast = toy.ToyConfig()
    r = run_pipeline(toy.make("driver"), fast, str(tmp_root), echo=False)
    assert r.artifact("total").df("total")["sum"].iloc[0] == pytest.approx(90.0)


def test_changed_file_deep_in_an_external_folder_is_a_cache_miss(ray_local, tmp_root, tmp_path):
    """An external input folder (a class-folder dataset: videos/<class>/<clip>.mp4) is
    fingerprinted at every depth: editing, adding or removing a nested file recomputes the stage;
    an untouched tree is a cache hit."""
    from pipelines.core.stage import Pipeline, Stage

    data = tmp_path / "videos"
    (data / "walk").mkdir(parents=True)
    (data / "run").mkdir()
    clip = data / "walk" / "a.mp4"
    clip.write_bytes(b"frames-v1")
    (data / "run" / "b.mp4").write_bytes(b"other")
    pipe = Pipeline(name="toy", config_cls=toy.ToyConfig, stages=[
        Stage("gen", toy.run_gen, config_keys=("gen",), kind="driver", external_inputs=lambda cfg: [str(data)])])
    cfg, store = toy.ToyConfig(), Store(str(tmp_root))
    assert statuses(run_pipeline(pipe, cfg, str(tmp_root), echo=False)) == {"gen": "run"}
    fp0 = plan(pipe, cfg, store)["gen"]
    assert fp0.status == "hit"

    st = clip.stat()                     # same size, same top-level listing: only the nested file changed
    clip.write_bytes(b"frames-v2")
    os.utime(clip, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    changed = plan(pipe, cfg, store)["gen"]
    assert changed.status == "run" and changed.fingerprint != fp0.fingerprint
    assert statuses(run_pipeline(pipe, cfg, str(tmp_root), echo=False)) == {"gen": "run"}
    assert plan(pipe, cfg, store)["gen"].status == "hit"

    (data / "run" / "c.mp4").write_bytes(b"new clip")          # a nested file added ...
    added = plan(pipe, cfg, store)["gen"].fingerprint
    (data / "run" / "c.mp4").unlink()                          # ... and removed again
    assert added != changed.fingerprint and plan(pipe, cfg, store)["gen"].fingerprint == changed.fingerprint


def test_unknown_config_key_is_an_error(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("gen:\n  n: 3\n  colour: red\n")
    with pytest.raises(ConfigError, match=r"unknown key 'gen.colour'.*valid keys here: fail, n, sleep_s"):
        load_config(toy.ToyConfig, f)
    with pytest.raises(ConfigError, match="scale.factor"):
        load_config(toy.ToyConfig, None, ["scale.factor=abc"])
    cfg = load_config(toy.ToyConfig, None, ["gen.n=5", "scale.factor=1.5"])
    assert cfg.gen.n == 5 and cfg.scale.factor == 1.5


def test_unwritable_root_fails_before_running(ray_local, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    from components.errors import InputError

    with pytest.raises(InputError, match="not writable"):
        run_pipeline(toy.make(), toy.ToyConfig(), str(blocker / "root"), echo=False)
