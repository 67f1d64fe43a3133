"""Runs a pipeline: fingerprints, cache hits, Ray tasks, run records.

Each stage's fingerprint covers its name and version, the package version, the config
sections it declares, the seed, the fingerprints of its inputs and the bytes of any external
input files (an external folder: relative path, size and mtime of every file under it, at any
depth). A stage whose manifest exists under that fingerprint is a cache hit. ``force``
recomputes the named stages and everything downstream of them. Independent stages run
concurrently as Ray tasks; ``kind="driver"`` stages run in this process.
"""
from __future__ import annotations

import os
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version as pkg_version
from typing import Any, Iterable

from pipelines.core.artifacts import Store, file_fingerprint, fingerprint_of
from pipelines.core.config import StageResources, config_dump
from pipelines.core.fanout import strip_fanout
from pipelines.core.stage import Pipeline, Stage, StageContext

from components.errors import InputError, RecgenError


@lru_cache(maxsize=1)
def code_version() -> dict:
    try:
        v = pkg_version("recgen")
    except PackageNotFoundError:
        v = "0+unknown"
    commit = None
    try:
        here = os.path.dirname(os.path.abspath(__file__))
        commit = subprocess.run(["git", "-C", here, "rev-parse", "HEAD"], capture_output=True,
                                text=True, timeout=5).stdout.strip() or None
    except Exception:
        pass
    return {"package": v, "git_commit": commit}


_FILE_FP_CACHE: dict[tuple, str] = {}


def _named(paths) -> list[tuple[str, str | None]]:
    """``external_inputs(cfg)`` as ``[(path, config key or None)]`` (a list of paths, or a
    mapping path -> the config key that names it)."""
    if isinstance(paths, dict):
        return [(str(p), k) for p, k in paths.items()]
    return [(str(p), None) for p in paths or ()]


def check_external_inputs(paths) -> None:
    """Every external input exists: a missing one is an InputError naming the file and its
    config key (never silently left out of a fingerprint)."""
    for p, key in _named(paths):
        if not os.path.exists(p):
            raise InputError("input file does not exist", path=p, field=key,
                             fix=f"check {key or 'data.path'} in the config or --set {key or 'data.path'}=FILE "
                                 f"(relative paths are resolved against the directory recgen runs in)")


def _tree_entries(root: str) -> list[tuple]:
    """Every entry under folder ``root``, recursively, sorted: ``(relative path, size, mtime_ns)``
    for files and ``(relative path + "/",)`` for folders (an empty class folder counts too).
    Cheap (metadata only, no content hashing): a file changed, added, removed or renamed at any
    depth (``video/<class>/<clip>.mp4``) changes the list. Symlinks are followed (their targets'
    size and mtime); a folder reached twice (a link cycle) is listed once."""
    out: list[tuple] = []
    seen: set[tuple[int, int]] = set()
    for top, dirs, files in os.walk(root, followlinks=True):
        st = os.stat(top)
        if (st.st_dev, st.st_ino) in seen:
            dirs[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        rel = os.path.relpath(top, root)
        base = "" if rel == "." else rel.replace(os.sep, "/") + "/"
        if base:
            out.append((base,))
        for f in files:
            try:
                fs = os.stat(os.path.join(top, f))
            except FileNotFoundError:   # a dangling symlink: its name still counts
                out.append((base + f, -1, -1))
                continue
            out.append((base + f, fs.st_size, fs.st_mtime_ns))
    return sorted(out)


def _external_fp(paths) -> dict[str, str]:
    check_external_inputs(paths)
    out = {}
    for p, _key in _named(paths):
        if os.path.isdir(p):
            out[p] = fingerprint_of(_tree_entries(p))
            continue
        st = os.stat(p)
        key = (p, st.st_size, st.st_mtime_ns)
        if key not in _FILE_FP_CACHE:
            _FILE_FP_CACHE[key] = file_fingerprint(p)
        out[p] = _FILE_FP_CACHE[key]
    return out


def preflight(pipeline: Pipeline, cfg: Any, root: str, until: str | None = None) -> None:
    """Checks that need no Ray, run by the CLI before Ray starts: every external input of the
    selected stages exists (and passes its pipeline's own checks, e.g. a known file format),
    and a local artifact root is writable (remote roots, ``s3://`` etc., are checked by the
    runner). Raises InputError / ConfigError."""
    if "://" not in root or root.startswith("file://"):
        Store(root).check_writable()
    selected = set(pipeline.upstream(until) if until else [s.name for s in pipeline.stages])
    for s in pipeline.stages:
        if s.name in selected and s.external_inputs:
            check_external_inputs(s.external_inputs(cfg))


def stage_fingerprint(pipeline: Pipeline, stage: Stage, cfg: Any, input_fps: dict[str, str]) -> tuple[str, dict]:
    dump = config_dump(cfg)
    # fan-out settings (shard size, per-shard resources) never change the output
    sections = {k: strip_fanout(getattr(cfg, k, None), dump.get(k)) for k in stage.config_keys}
    ext = _external_fp(stage.external_inputs(cfg)) if stage.external_inputs else {}
    basis = {
        "pipeline": pipeline.name,
        "stage": stage.name,
        "stage_version": stage.version,
        "package": code_version()["package"],
        "config": sections,
        "seed": dump.get("seed"),
        "inputs": input_fps,
        "external": ext,
    }
    return fingerprint_of(basis), basis


def resources_of(cfg: Any, stage: Stage) -> StageResources:
    res = getattr(cfg, "resources", None) or {}
    r = res.get(stage.name) if isinstance(res, dict) else None
    return r if r is not None else StageResources()


def execute_stage(store_uri: str, pipeline_name: str, stage: Stage, cfg: Any, fp: str,
                  input_fps: dict[str, str], manifest_base: dict, console_queue: Any = None) -> dict:
    """Run one stage body and publish its artifact. Runs in a Ray task or the driver."""
    from pipelines.core import console

    os.environ.setdefault("DGLBACKEND", "pytorch")
    if console._SINK is None:   # a task process: its lines go to the driver's console
        console.attach(console_queue)
    store = Store(store_uri)
    inputs = {n: store.artifact(pipeline_name, n, f) for n, f in input_fps.items()}
    writer = store.writer(pipeline_name, stage.name, fp)
    scratch = store.scratch_dir(pipeline_name, stage.name, fp)
    if store.local:
        os.makedirs(scratch, exist_ok=True)
    ctx = StageContext(pipeline=pipeline_name, stage=stage.name, cfg=cfg, inputs=inputs,
                       out=writer, scratch_dir=scratch, fingerprint=fp)
    t0 = time.time()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    try:
        stage.run(ctx)
    except BaseException:
        writer.abort()
        raise
    manifest = dict(manifest_base)
    manifest.update(started_at=started, wall_time_s=round(time.time() - t0, 3),
                    host=os.uname().nodename, pid=os.getpid())
    return writer.commit(manifest)


@dataclass
class StagePlan:
    stage: Stage
    fingerprint: str
    basis: dict
    status: str = "pending"  # hit | run | forced | skipped
    wall_time_s: float | None = None


@dataclass
class RunResult:
    run_id: str
    pipeline: str
    plans: dict[str, StagePlan]
    store: Store
    record: dict = field(default_factory=dict)

    def artifact(self, stage: str):
        p = self.plans[stage]
        return self.store.artifact(self.pipeline, stage, p.fingerprint)


def plan(pipeline: Pipeline, cfg: Any, store: Store, until: str | None = None,
         force: Iterable[str] = ()) -> dict[str, StagePlan]:
    """Fingerprint every selected stage and decide hit / run."""
    selected = pipeline.upstream(until) if until else [s.name for s in pipeline.stages]
    forced: set[str] = set()
    for f in force or ():
        pipeline.stage(f)  # validates the name
        forced.update(pipeline.downstream(f))
    plans: dict[str, StagePlan] = {}
    for s in pipeline.stages:
        if s.name not in selected:
            continue
        input_fps = {i: plans[i].fingerprint for i in s.inputs}
        fp, basis = stage_fingerprint(pipeline, s, cfg, input_fps)
        plans[s.name] = StagePlan(s, fp, basis)
        if s.name in forced:
            plans[s.name].status = "forced"
        elif store.manifest(pipeline.name, s.name, fp) is not None:
            plans[s.name].status = "hit"
        else:
            plans[s.name].status = "run"
    return plans


def _unwrap(err: BaseException) -> BaseException:
    cause = getattr(err, "cause", None)
    while cause is not None and getattr(cause, "cause", None) is not None:
        cause = cause.cause
    return cause if isinstance(cause, BaseException) else err


def run_pipeline(pipeline: Pipeline, cfg: Any, artifacts: str, until: str | None = None,
                 force: Iterable[str] = (), echo: bool = True) -> RunResult:
    """Run (or reuse) the stages of ``pipeline``. Joins the Ray that :func:`init_ray` started or
    joined; with none, starts an embedded one on 127.0.0.1 (never a bare, outward-bound start)."""
    from pipelines.core.ray_env import init_ray

    init_ray()                        # idempotent: a no-op when Ray is already initialised
    store = Store(artifacts)
    store.check_writable()
    plans = plan(pipeline, cfg, store, until, force)
    run_id = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
    cv = code_version()
    dumped = config_dump(cfg)

    def base_manifest(p: StagePlan) -> dict:
        return {
            "pipeline": pipeline.name, "stage": p.stage.name, "fingerprint": p.fingerprint,
            "code_version": cv, "stage_version": p.stage.version, "run_id": run_id,
            "config": {k: dumped.get(k) for k in p.stage.config_keys},
            "seed": dumped.get("seed"), "inputs": p.basis["inputs"],
            "external_inputs": p.basis["external"],
        }

    from pipelines.core.console import Console

    from pipelines.core import interrupt

    t_run = time.time()
    with Console(echo=echo) as con:
        say = con.say
        log_path = store.join(pipeline.name, "runs", f"{run_id}.log")

        def interrupted(signum: int) -> None:
            """First Ctrl-C / SIGTERM (main thread, see pipelines.core.interrupt): record the
            run as interrupted; finished stages stay committed, so a rerun resumes."""
            _write_run_record(store, pipeline, cfg, plans, run_id, t_run,
                              error=f"interrupted by {signal_name(signum)}", status="interrupted")
            _write_run_log(store, log_path, con)

        unhook = interrupt.on_interrupt(interrupted)
        say(f"[{pipeline.name}] run {run_id}; Ray and Ray Train logs go to {log_path}")
        try:
            _schedule(pipeline, cfg, store, plans, run_id, base_manifest, con)
        except Exception as e:
            if interrupt.requested():   # torn down by the interrupt: the hook wrote the record
                raise
            real = _unwrap(e)
            _write_run_record(store, pipeline, cfg, plans, run_id, t_run, error=str(real))
            if real is not e and isinstance(real, RecgenError):
                raise real from None
            raise
        finally:
            unhook()
            if not interrupt.requested():
                _write_run_log(store, log_path, con)
    if interrupt.requested():
        raise interrupt.Interrupted(interrupt.requested())
    record = _write_run_record(store, pipeline, cfg, plans, run_id, t_run)
    return RunResult(run_id, pipeline.name, plans, store, record)


def signal_name(signum: int) -> str:
    import signal

    return signal.Signals(signum).name


def _schedule(pipeline: Pipeline, cfg: Any, store: Store, plans: dict[str, StagePlan], run_id: str,
              base_manifest, con) -> None:
    """Run the planned stages: driver-kind stages here, the others as concurrent Ray tasks."""
    import ray

    say = con.say
    todo = [p for p in plans.values() if p.status in ("run", "forced")]
    done = {n for n, p in plans.items() if p.status == "hit"}
    for n in done:
        say(f"[{pipeline.name}] {n}: cache hit ({plans[n].fingerprint[:16]})")
    running: dict[Any, StagePlan] = {}

    def finish(p: StagePlan, manifest: dict) -> None:
        con.drain()   # the stage's own lines first
        p.wall_time_s = manifest.get("wall_time_s")
        done.add(p.stage.name)
        say(f"[{pipeline.name}] {p.stage.name}: done in {p.wall_time_s:.1f}s ({p.fingerprint[:16]})")

    while todo or running:
        ready = [p for p in todo if all(i in done for i in p.stage.inputs)]
        for p in ready:
            todo.remove(p)
            args = (store.uri, pipeline.name, p.stage, cfg, p.fingerprint,
                    p.basis["inputs"], base_manifest(p), con.queue)
            if p.status == "forced":
                store.clear_scratch(pipeline.name, p.stage.name, p.fingerprint)
            kind = p.stage.kind_for(cfg)
            say(f"[{pipeline.name}] {p.stage.name}: running ({kind})")
            if kind == "driver":
                finish(p, execute_stage(*args))
            else:
                r = resources_of(cfg, p.stage)
                opts: dict[str, Any] = {"num_cpus": r.num_cpus, "num_gpus": r.num_gpus,
                                        "max_retries": 0, "name": f"{pipeline.name}.{p.stage.name}"}
                if r.memory_gb:
                    opts["memory"] = int(r.memory_gb * 2**30)
                ref = ray.remote(execute_stage).options(**opts).remote(*args)
                running[ref] = p
        if running:
            finished, _ = ray.wait(list(running), num_returns=1)
            for ref in finished:
                p = running.pop(ref)
                finish(p, ray.get(ref))
        elif todo and not ready:
            raise RuntimeError(f"pipeline {pipeline.name}: unsatisfiable stages "
                               f"{[p.stage.name for p in todo]}")


def _write_run_log(store: Store, path: str, con) -> None:
    """The run's console lines, then this job's Ray worker/controller logs, to ``path``."""
    import ray

    from pipelines.core.console import collect_framework_logs

    try:
        job = ray.get_runtime_context().get_job_id()
    except Exception:  # noqa: BLE001
        job = None
    text = "\n".join(con.lines) + "\n\n===== Ray and Ray Train output of this run =====\n"
    text += collect_framework_logs(job)
    try:
        parent = path.rsplit("/", 1)[0]
        store.fs.create_dir(parent, recursive=True)
        with store.fs.open_output_stream(path) as f:
            f.write(text.encode())
    except Exception as e:  # noqa: BLE001 - the log is a convenience
        print(f"warning: could not write the run log {path}: {e}")


def _write_run_record(store: Store, pipeline: Pipeline, cfg: Any, plans: dict[str, StagePlan],
                      run_id: str, t0: float, error: str | None = None, status: str | None = None) -> dict:
    """``runs/<run_id>.json``; status ``succeeded`` (also ``latest.json``), ``failed`` or
    ``interrupted`` (Ctrl-C / SIGTERM; stages that had not finished are ``not-run``)."""
    record = {
        "run_id": run_id,
        "pipeline": pipeline.name,
        "status": status or ("failed" if error else "succeeded"),
        "error": error,
        "code_version": code_version(),
        "config": config_dump(cfg),
        "stages": {n: {"fingerprint": p.fingerprint,
                       "status": p.status if p.status != "run" or p.wall_time_s is not None else "not-run",
                       "wall_time_s": p.wall_time_s,
                       "dir": store.stage_dir(pipeline.name, n, p.fingerprint)}
                   for n, p in plans.items()},
        "wall_time_s": round(time.time() - t0, 3),
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    store.write_json_atomic(store.join(pipeline.name, "runs", f"{run_id}.json"), record)
    if not error:
        store.write_json_atomic(store.join(pipeline.name, "latest.json"), record)
    return record


def latest_run(store: Store, pipeline: str) -> dict | None:
    path = store.join(pipeline, "latest.json")
    return store.read_json(path) if store.exists(path) else None
