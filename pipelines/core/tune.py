"""The Ray Tune search engine every pipeline uses (``recgen tune PIPELINE``).

How a search runs:

1. The search space (``configs/<pipeline>/tune.yaml``, :class:`TuneSpec`) is expanded *here*,
   with a seeded RNG, into an explicit list of trials (grid axes crossed, random axes drawn),
   plus the reference ("default") configuration. The list goes to Tune as one
   ``grid_search``, so the search is reproducible and ``--resume`` continues the same list.
2. Shared upstream stages are materialised once, before the search: the inputs of
   ``trial_stage`` are run once per distinct fingerprint through the normal runner (e.g. one
   pre-training per r-hop for pcrec); all trials of a group then hit the artifact cache.
3. Each trial is a Tune function trainable (:func:`trial_fn`) that starts the trial as a Ray
   job of its own (:mod:`pipelines.core.tune_trial`): the pipeline up to ``trial_stage``
   through the same runner and cache, the training stage's ``TorchTrainer`` reporting every
   epoch. The reports come back to this search's Tune, where ASHA stops poor trials early.
   Stopping a trial ends its job, and with it every resource the trial's trainer reserved.
4. ``max_concurrent_trials`` = cluster CPUs // CPUs per trial (the trainer's workers).
5. After the search, and only when it was not interrupted: ``results.parquet`` (one row per
   trial), ``history.parquet`` (every report), plots, ``best_config.yaml`` (accepted by
   ``recgen run PIPELINE --config``), ``best.json`` and ``results.md``; with ``eval_stage``,
   the test metric of the best (and the default) configuration, computed once. Selection uses
   validation only.

A pipeline adds its specifics with a :class:`Tunable` (``TUNABLE`` in
``pipelines/<pipeline>/tune.py``, e.g. pcrec's r-hop plots and diverged runs); without one the
generic defaults apply (``configs/<pipeline>/tune.yaml``, one plot per searched axis).
"""
from __future__ import annotations

import copy
import importlib
import itertools
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Literal

import numpy as np
import pandas as pd
import yaml
from pydantic import Field, model_validator

from components.errors import ConfigError
from pipelines.core.config import (StrictModel, config_dump, deep_merge, parse_sets, read_yaml,
                                   resolve_config_paths, validate_config)

TRIAL_DRIVER_MEMORY = 64 * 2**20
CONFIGS = Path(__file__).resolve().parents[2] / "configs"
OUTPUTS = ("results.parquet", "history.parquet", "best_config.yaml", "best.json", "results.md")


# ---------------------------------------------------------------------------- spec
class Axis(StrictModel):
    """One searched parameter. ``path`` is a dotted config key, or a list of keys that take the
    same value (e.g. an embedding size used by two sections). Exactly one of ``grid``,
    ``choice``, ``uniform``, ``loguniform`` is given; ``grid`` values are crossed with every
    other grid axis, the others are drawn per trial."""

    path: str | list[str]
    grid: list[Any] | None = None
    choice: list[Any] | None = None
    uniform: tuple[float, float] | None = None
    loguniform: tuple[float, float] | None = None
    round: int | None = Field(None, description="round drawn floats to this many decimals")

    @model_validator(mode="after")
    def _one_kind(self):
        kinds = [k for k in ("grid", "choice", "uniform", "loguniform") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError(f"axis {self.path!r}: give exactly one of grid, choice, uniform, "
                             f"loguniform (got {kinds or 'none'})")
        for k in ("grid", "choice"):
            if getattr(self, k) is not None and not getattr(self, k):
                raise ValueError(f"axis {self.path!r}: {k} must not be empty")
        if self.loguniform is not None and min(self.loguniform) <= 0:
            raise ValueError(f"axis {self.path!r}: loguniform bounds must be > 0")
        return self

    @property
    def paths(self) -> list[str]:
        return [self.path] if isinstance(self.path, str) else list(self.path)

    @property
    def column(self) -> str:
        return self.paths[0]

    def draw(self, rng: np.random.Generator) -> Any:
        if self.choice is not None:
            return self.choice[int(rng.integers(len(self.choice)))]
        if self.uniform is not None:
            v = float(rng.uniform(*self.uniform))
        else:
            lo, hi = self.loguniform
            v = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
        return round(v, self.round) if self.round is not None else v


class SchedulerSpec(StrictModel):
    """ASHA (async successive halving) on ``metric``; one time unit = one reported epoch.
    ``kind: fifo`` runs every trial to the end (no early stopping)."""

    kind: Literal["asha", "fifo"] = "asha"
    max_t: int = Field(30, ge=1)
    grace_period: int = Field(3, ge=1)
    reduction_factor: float = Field(2.0, gt=1)


class TuneSpec(StrictModel):
    """A search: ``configs/<pipeline>/tune.yaml``."""

    name: str = Field("pcrec-margin", description="experiment folder under <artifacts>/<pipeline>/tune/")
    seed: int = 0
    num_samples: int = Field(1, ge=1, description="draws of the random axes per grid point")
    metric: str = Field("best_valid_ndcg10", description="validation metric reported per epoch")
    result_agg: Literal["mean", "best", "last"] = Field(
        "mean", description="how the rows of result_table give the trial's final metric "
        "(mean: over runs/seeds; best/last: over epochs of a history table)")
    mode: Literal["max", "min"] = "max"
    space: list[Axis]
    fixed: dict[str, Any] = Field(default_factory=dict, description="dotted keys set in every trial")
    default: dict[str, Any] | None = Field(
        None, description="the reference configuration (dotted keys over the base config), "
        "always run as an extra trial and compared against")
    roles: dict[str, str] = Field(default_factory=dict,
                                  description="r / loss / margin -> dotted key (for plots, summary)")
    trial_stage: str = Field("finetune", description="the stage each trial runs up to (its training stage)")
    result_table: str = Field("runs", description="table of trial_stage holding the final metric")
    eval_stage: str | None = Field("evaluate", description="stage computing the test metric")
    test_metric: dict[str, Any] = Field(default_factory=dict,
                                        description="row filter of eval_stage's metrics table")
    eval_fixed: dict[str, Any] = Field(
        default_factory=dict, description="dotted keys set only for the one-off test evaluation "
        "(e.g. skip costly baselines); the written best config does not include them")
    trainer_key: str = Field("finetune.trainer", description="TrainerConfig used by the trial")
    scheduler: SchedulerSpec = Field(default_factory=SchedulerSpec)
    max_concurrent_trials: int | None = Field(None, ge=1, description="default: from cluster CPUs")

    @model_validator(mode="after")
    def _columns_unique(self):
        cols = [a.column for a in self.space]
        if len(set(cols)) != len(cols):
            raise ValueError(f"space: duplicate paths {cols}")
        return self


def default_space(pipeline: str) -> Path:
    return CONFIGS / pipeline.split(":")[0].split(".")[-1] / "tune.yaml"


def load_spec(path: str | os.PathLike | None = None, sets: list[str] | tuple = (),
              pipeline: str = "pcrec") -> TuneSpec:
    """Read a search spec (YAML; default ``configs/<pipeline>/tune.yaml``), with ``--tune-set``
    overrides given as ``key=value``."""
    path = path or default_space(pipeline)
    if not os.path.exists(path):
        raise ConfigError(f"no search space for {pipeline}: {path} does not exist (give --space FILE)")
    tree = deep_merge(read_yaml(path), parse_sets(sets))
    return validate_config(TuneSpec, tree, str(path))


# ---------------------------------------------------------------------------- trials
def nested(dotted: dict[str, Any]) -> dict:
    """``{"a.b": 1}`` -> ``{"a": {"b": 1}}``."""
    out: dict = {}
    for key, value in dotted.items():
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = copy.deepcopy(value)
    return out


def expand_trials(spec: TuneSpec, base_dump: dict) -> list[dict]:
    """The explicit, seeded trial list: ``[{"trial": i, "is_default": bool, "params": {column: v}}]``.

    Grid axes are crossed; random axes are drawn ``num_samples`` times per grid point. The
    reference configuration (``spec.default``; other searched keys keep their base values) is
    appended when it is not already in the list.
    """
    rng = np.random.default_rng(spec.seed)
    grid_axes = [a for a in spec.space if a.grid is not None]
    rand_axes = [a for a in spec.space if a.grid is None]
    trials: list[dict] = []
    for combo in itertools.product(*[a.grid for a in grid_axes]):
        for _ in range(spec.num_samples):
            params = {a.column: v for a, v in zip(grid_axes, combo)}
            params.update({a.column: a.draw(rng) for a in rand_axes})
            trials.append(params)
    ref = None
    if spec.default is not None:
        searched = [a.column for a in spec.space]
        unknown = set(spec.default) - set(searched)
        if unknown:
            raise ConfigError(f"tune default: keys {sorted(unknown)} are not searched axes "
                              f"(axes: {', '.join(searched)})")
        # searched keys the default does not name keep their base-config values (if set)
        ref = {c: v for c in searched if (v := _get(base_dump, c)) is not None}
        ref.update(spec.default)
        if ref not in trials:
            trials.append(ref)
    return [{"trial": i, "is_default": p == ref, "params": p} for i, p in enumerate(trials)]


def _get(tree: dict, dotted: str) -> Any:
    node: Any = tree
    for p in dotted.split("."):
        if not isinstance(node, dict) or p not in node:
            return None
        node = node[p]
    return node


def trial_tree(spec: TuneSpec, base_tree: dict, params: dict) -> dict:
    """The full config tree of a trial: base < fixed < searched values (tied paths expanded)."""
    axes = {a.column: a for a in spec.space}
    dotted = dict(spec.fixed)
    for col, v in params.items():
        for p in (axes[col].paths if col in axes else [col]):
            dotted[p] = v
    return deep_merge(base_tree, nested(dotted))


# ---------------------------------------------------------------------------- shared stages
def shared_frontier(pipe, spec: TuneSpec) -> list[str]:
    """The inputs of ``trial_stage``: everything upstream of them is shared between the trials
    whose configurations agree on it (their fingerprints are equal), so it is materialised once
    per distinct fingerprint before the search."""
    return list(pipe.stage(spec.trial_stage).inputs)


def materialize_shared(pipe, cfg_cls, spec: TuneSpec, base_tree: dict, trials: list[dict],
                       root: str, echo=print) -> pd.DataFrame:
    """Run each distinct shared-upstream configuration once. Returns one row per group."""
    from pipelines.core.artifacts import Store
    from pipelines.core.runner import plan, run_pipeline

    frontier = shared_frontier(pipe, spec)
    store = Store(root)
    groups: dict[tuple, dict] = {}
    for t in trials:
        cfg = validate_config(cfg_cls, trial_tree(spec, base_tree, t["params"]), f"trial {t['trial']}")
        for stage in frontier:
            fp = plan(pipe, cfg, store, until=stage)[stage].fingerprint
            g = groups.setdefault((stage, fp), {"stage": stage, "fingerprint": fp, "cfg": cfg,
                                                "trials": []})
            g["trials"].append(t["trial"])
    rows = []
    for (stage, fp), g in groups.items():
        t0 = time.time()
        echo(f"[tune] shared upstream: {stage} {fp[:16]} for trials {g['trials']}")
        res = run_pipeline(pipe, g["cfg"], root, until=stage, echo=False)
        rows.append({"stage": stage, "fingerprint": fp, "n_trials": len(g["trials"]),
                     "trials": g["trials"], "computed": res.plans[stage].status != "hit",
                     "wall_s": round(time.time() - t0, 2)})
    return pd.DataFrame(rows)


def resolve_pipeline(name: str):
    """A registered pipeline name (``pcrec``) or ``"package.module:ATTR"``."""
    if ":" in name:
        import importlib

        mod, attr = name.split(":", 1)
        return getattr(importlib.import_module(mod), attr)
    from pipelines.registry import get_pipeline

    return get_pipeline(name)


# ---------------------------------------------------------------------------- pipeline hooks
@dataclass
class Tunable:
    """What a pipeline adds to the generic engine (``TUNABLE`` in ``pipelines/<name>/tune.py``).

    ``diverged(spec, artifact, value)``: the trial failed numerically (never a candidate for
    best); ``reports_diverged(history_df)``: the same, judged from the reports; ``plots(results,
    spec, out_dir)``: the pipeline's figures (default: the metric against every searched axis);
    ``check(spec, cfg)``: raises ConfigError when a trial's validated config cannot report the
    spec's validation metric (run on every trial before anything runs).
    """

    diverged: Callable[["TuneSpec", Any, float], bool] | None = None
    reports_diverged: Callable[[pd.DataFrame], bool] | None = None
    plots: Callable[[pd.DataFrame, "TuneSpec", Path], list[Path]] | None = None
    check: Callable[["TuneSpec", Any], None] | None = None


def tunable(pipeline: str) -> Tunable:
    """The pipeline's :class:`Tunable` (``pipelines.<name>.tune.TUNABLE``), or the defaults."""
    name = pipeline.split(":")[0] if ":" in pipeline else f"pipelines.{pipeline}"
    try:
        mod = importlib.import_module(f"{name}.tune" if ":" not in pipeline else name)
    except ModuleNotFoundError:
        return Tunable()
    return getattr(mod, "TUNABLE", None) or Tunable()


# ---------------------------------------------------------------------------- the trainable
def _final_metric(spec: TuneSpec, art) -> float:
    df = art.df(spec.result_table)
    if spec.metric not in df.columns:
        raise ConfigError(f"tune metric '{spec.metric}' is not a column of "
                          f"{spec.trial_stage}/{spec.result_table} (columns: {', '.join(df.columns)})")
    vals = pd.to_numeric(df[spec.metric], errors="coerce")
    if spec.result_agg == "mean":
        return float(vals.mean())
    if spec.result_agg == "last":
        return float(vals.iloc[-1]) if len(vals) else float("nan")
    finite = vals[np.isfinite(vals)]
    if not len(finite):
        return float("nan")
    return float(finite.max() if spec.mode == "max" else finite.min())


def trial_body(job: dict) -> None:
    """Inside the trial's own job (:mod:`pipelines.core.tune_trial`): run the pipeline up to
    ``trial_stage`` (its trainer reports every epoch to Tune), then the trial's final report."""
    import ray.tune

    from pipelines.core.runner import run_pipeline

    os.environ.setdefault("DGLBACKEND", "pytorch")
    spec = TuneSpec.model_validate_json(job["spec_json"])
    pipe = resolve_pipeline(job["pipeline"])
    t = job["trial"]
    cfg = validate_config(pipe.config_cls, trial_tree(spec, job["base_tree"], t["params"]), f"trial {t['trial']}")
    res = run_pipeline(pipe, cfg, job["root"], until=spec.trial_stage, echo=False)
    art = res.artifact(spec.trial_stage)
    value = _final_metric(spec, art)
    hook = tunable(job["pipeline"]).diverged
    div = (not math.isfinite(value)) or bool(hook and hook(spec, art, value))
    if div:  # failed: a worst-possible value for the scheduler, never a candidate for best
        value = -math.inf if spec.mode == "max" else math.inf
    ray.tune.report({spec.metric: value, "diverged": div, "final": 1,
                     "cached": res.plans[spec.trial_stage].status == "hit",
                     "trial_fingerprint": art.fingerprint})


def trial_fn(config: dict, *, spec_json: str, base_tree: dict, root: str, pipeline: str,
             storage: str) -> None:
    """Tune function trainable: the trial runs as a Ray job of its own (a child process, see
    :mod:`pipelines.core.tune_trial`), whose reports are passed on to this search's Tune.
    When Tune stops this trial, this process ends, the child's stdin closes, the child exits
    and Ray releases everything of its job (trainer workers and their placement group)."""
    import ray
    import ray.tune

    from pipelines.core.tune_trial import MARK, decode_result

    t = config["trial"]
    job = {"address": ray.get_runtime_context().gcs_address, "pipeline": pipeline, "spec_json": spec_json,
           "base_tree": base_tree, "root": root, "trial": t, "storage": storage}
    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)
    env["PYTHONUNBUFFERED"] = "1"
    repo = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = repo + os.pathsep + env.get("PYTHONPATH", "")
    log = Path(storage) / f"trial-{t['trial']}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as err:
        proc = subprocess.Popen([sys.executable, "-m", "pipelines.core.tune_trial"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=err, env=env, cwd=repo, text=True)
        proc.stdin.write(json.dumps(job) + "\n")
        proc.stdin.flush()           # stdin stays open: its EOF tells the child to leave
        for line in proc.stdout:
            if line.startswith(MARK):
                ray.tune.report(decode_result(json.loads(line[len(MARK):])))
        rc = proc.wait()
    if rc != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"trial {t['trial']} failed (exit {rc}); its log {log} ends with:\n{tail}")


# ---------------------------------------------------------------------------- search
@dataclass
class SearchOutput:
    out_dir: str
    results: pd.DataFrame
    best: dict


def cpus_per_trial(spec: TuneSpec, cfg) -> float:
    tr = _get(config_dump(cfg), spec.trainer_key) or {}
    return max(1.0, float(tr.get("num_workers", 1) or 1) * float(tr.get("cpus_per_worker", 1.0)))


def concurrency(spec: TuneSpec, per_trial: float) -> int:
    """``max_concurrent_trials`` from the cluster's CPUs (or the spec's explicit value)."""
    import ray

    if spec.max_concurrent_trials:
        return spec.max_concurrent_trials
    cpus = float(ray.cluster_resources().get("CPU", 1))
    return max(1, int(cpus // per_trial))


def run_search(pipeline: str, base_tree: dict, spec: TuneSpec, root: str, *, resume: bool = False,
               callbacks: list | None = None, evaluate: bool = True, echo=print) -> SearchOutput:
    """Run (or, with ``resume``, continue) a search; write results, plots, best config."""
    import ray.tune
    from ray.tune.schedulers import ASHAScheduler

    from pipelines.core.artifacts import Store
    from pipelines.core.ray_env import init_ray

    init_ray()                        # loopback, before Tune could start a Ray of its own
    pipe = resolve_pipeline(pipeline)
    # each trial runs in its own working directory: relative input paths must be absolute
    base_tree = resolve_config_paths(pipe.config_cls, base_tree, source="base config")
    base_cfg = validate_config(pipe.config_cls, base_tree, "base config")
    base_dump = config_dump(base_cfg)
    trials = expand_trials(spec, base_dump)
    hooks = tunable(pipeline)
    for t in trials:  # fail fast on a bad combination, before anything runs
        trial_cfg = validate_config(pipe.config_cls, trial_tree(spec, base_tree, t["params"]), f"trial {t['trial']}")
        if hooks.check:
            hooks.check(spec, trial_cfg)
    store = Store(root)
    if not store.local:
        raise ConfigError("recgen tune needs a local (or shared-filesystem) artifact root for now")
    out_dir = Path(store.join(pipe.name, "tune", spec.name))
    exp_dir = out_dir / "ray"
    out_dir.mkdir(parents=True, exist_ok=True)
    state_file = out_dir / "search.json"
    if resume:
        if not state_file.exists():
            raise ConfigError(f"--resume: no search '{spec.name}' under {out_dir}; "
                              "run without --resume to start it")
        saved = json.loads(state_file.read_text())
        if saved["trials"] != json.loads(json.dumps(trials)):
            raise ConfigError("--resume: the search space, seed or base config changed since the "
                              f"search started ({state_file}); use a new tune name to start over")
    else:
        _write_json(state_file, {"spec": spec.model_dump(mode="json"), "base_config": base_dump,
                                 "trials": trials, "started_at": _now()})
    for f in OUTPUTS:   # results of an earlier search of this name never mix with this one
        (out_dir / f).unlink(missing_ok=True)

    echo(f"[tune] {len(trials)} trials; shared upstream first")
    shared = materialize_shared(pipe, pipe.config_cls, spec, base_tree, trials, root, echo=echo)
    shared.to_parquet(out_dir / "shared_upstream.parquet")

    first_cfg = validate_config(pipe.config_cls, trial_tree(spec, base_tree, trials[0]["params"]), "trial 0")
    per_trial = cpus_per_trial(spec, first_cfg)
    max_conc = concurrency(spec, per_trial)
    echo(f"[tune] max_concurrent_trials={max_conc} ({per_trial:g} CPU per trial)")

    fn = ray.tune.with_parameters(trial_fn, spec_json=spec.model_dump_json(), base_tree=base_tree,
                                  root=store.base, pipeline=pipeline, storage=str(out_dir / "trials"))
    # The trial process only relays its job's reports; the CPUs go to that job's TorchTrainer
    # workers (a placement-group bundle cannot be empty, hence a token amount of memory).
    fn = ray.tune.with_resources(fn, {"cpu": 0, "memory": TRIAL_DRIVER_MEMORY})
    restorable = resume and ray.tune.Tuner.can_restore(str(exp_dir / spec.name))
    if restorable:
        echo("[tune] resuming the interrupted search (finished trials are kept)")
        tuner = ray.tune.Tuner.restore(str(exp_dir / spec.name), trainable=fn,
                                       resume_unfinished=True, resume_errored=True)
    else:
        if resume:   # interrupted before Tune saved its state: same trial list, stages are cached
            echo("[tune] no Tune state saved yet; running the trial list again (finished stages are cached)")
        sched = None if spec.scheduler.kind == "fifo" else ASHAScheduler(
            time_attr="training_iteration", max_t=spec.scheduler.max_t,
            grace_period=spec.scheduler.grace_period,
            reduction_factor=spec.scheduler.reduction_factor)
        tuner = ray.tune.Tuner(
            fn,
            param_space={"trial": ray.tune.grid_search(trials)},
            tune_config=ray.tune.TuneConfig(metric=spec.metric, mode=spec.mode, scheduler=sched,
                                            max_concurrent_trials=max_conc, reuse_actors=False),
            run_config=ray.tune.RunConfig(name=spec.name, storage_path=str(exp_dir),
                                          callbacks=list(callbacks or []), verbose=0,
                                          failure_config=ray.tune.FailureConfig(max_failures=1)),
        )
    grid = tuner.fit()
    from pipelines.core import interrupt

    if interrupt.requested():   # Ctrl-C / SIGTERM: no results from a partial search
        raise interrupt.Interrupted(interrupt.requested())
    results, history = collect(grid, spec, trials, hooks.reports_diverged)
    results.to_parquet(out_dir / "results.parquet")
    history.to_parquet(out_dir / "history.parquet")
    best = select_best(results, spec)
    best_tree = trial_tree(spec, base_tree, best["params"])
    best_cfg = validate_config(pipe.config_cls, best_tree, "best trial")
    (out_dir / "best_config.yaml").write_text(
        f"# best trial {best['trial']} of tune search '{spec.name}' "
        f"(validation {spec.metric} = {best['value']:.5f})\n"
        + yaml.safe_dump(config_dump(best_cfg), sort_keys=False))
    summary = {"best": best, "finished_at": _now(), "n_trials": len(results),
               "n_complete": int((results.status == "TERMINATED").sum()),
               "n_stopped_early": int(results.stopped_early.sum()),
               "shared_upstream_runs": int(len(shared)),
               "max_concurrent_trials": max_conc}
    default = results[results.is_default]
    if len(default):
        d = default.iloc[0]
        summary["default"] = {"trial": int(d.trial), "value": float(d.value),
                              "params": json.loads(d.params_json)}
    if evaluate and spec.eval_stage:
        def eval_cfg(params: dict, what: str):
            tree = deep_merge(trial_tree(spec, base_tree, params), nested(spec.eval_fixed))
            return validate_config(pipe.config_cls, tree, what)

        echo(f"[tune] test metric of the best configuration (trial {best['trial']}), computed once")
        summary["test"] = {"best": test_metric(pipe, spec, eval_cfg(best["params"], "best trial"), root)}
        if len(default) and summary["default"]["trial"] != best["trial"]:
            summary["test"]["default"] = test_metric(pipe, spec, eval_cfg(summary["default"]["params"],
                                                                          "default trial"), root)
        elif len(default):
            summary["test"]["default"] = summary["test"]["best"]
    _write_json(out_dir / "best.json", summary)
    (hooks.plots or plot_results)(results, spec, out_dir)
    (out_dir / "results.md").write_text(markdown_table(results, spec, summary))
    echo(f"[tune] best trial {best['trial']}: {spec.metric}={best['value']:.5f} {best['params']}")
    echo(f"[tune] results under {out_dir}")
    return SearchOutput(str(out_dir), results, summary)


def collect(grid, spec: TuneSpec, trials: list[dict],
            reports_diverged: Callable[[pd.DataFrame], bool] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per trial (params, final metric, status) and the per-report history."""
    rows, hist = [], []
    by_id = {t["trial"]: t for t in trials}
    for r in grid:
        t = r.config["trial"]
        df = r.metrics_dataframe if r.metrics_dataframe is not None else pd.DataFrame()
        vals = df[spec.metric].dropna() if spec.metric in df.columns else pd.Series(dtype=float)
        vals = vals[np.isfinite(vals)]
        best_val = (vals.max() if spec.mode == "max" else vals.min()) if len(vals) else float("nan")
        final = bool(df.get("final", pd.Series(dtype=float)).fillna(0).astype(bool).any()) if len(df) else False
        div = reports_diverged_default(df) or bool(reports_diverged and reports_diverged(df))
        if div:  # a diverged trial is failed: no value, never selected as best
            best_val = float("nan")
        status = "ERROR" if r.error else ("DIVERGED" if div else "TERMINATED" if final else "STOPPED")
        row = {"trial": int(t["trial"]), "is_default": bool(by_id[t["trial"]]["is_default"]),
               **{f"p:{k}": v for k, v in t["params"].items()},
               "params_json": json.dumps(t["params"], sort_keys=True),
               "value": float(best_val), "reports": int(len(df)), "status": status, "diverged": div,
               "stopped_early": status == "STOPPED",
               "cached": bool(df["cached"].fillna(False).astype(bool).any()) if "cached" in df else False,
               "error": str(r.error)[:500] if r.error else None}
        rows.append(row)
        for i, rec in enumerate(df.to_dict("records")):
            hist.append({"trial": int(t["trial"]), "report": i,
                         spec.metric: _num(rec.get(spec.metric)),
                         "epoch": rec.get("epoch"), "run": str(rec.get("run", "")),
                         "final": bool(rec.get("final", 0) == 1)})
    res = pd.DataFrame(rows).sort_values("trial").reset_index(drop=True)
    return res, pd.DataFrame(hist)


def reports_diverged_default(df: pd.DataFrame) -> bool:
    """Any report of a trial flags ``diverged`` (the trial's final report does when its metric
    or its stage's own check says so)."""
    if not len(df) or "diverged" not in df.columns:
        return False
    return bool(df["diverged"].fillna(False).astype(bool).any())


def select_best(results: pd.DataFrame, spec: TuneSpec) -> dict:
    """The best trial by validation value; diverged trials and non-finite values never qualify."""
    div = results["diverged"].fillna(False).astype(bool) if "diverged" in results else False
    ok = results[np.isfinite(results.value.astype(float)) & ~div]
    if ok.empty:
        errs = results.error.dropna().tolist()
        raise ConfigError(f"tune: no trial reported a finite {spec.metric} "
                          f"({int(np.sum(div))} of {len(results)} diverged); first error: {errs[:1]}")
    row = ok.loc[ok.value.idxmax() if spec.mode == "max" else ok.value.idxmin()]
    return {"trial": int(row.trial), "value": float(row.value), "params": json.loads(row.params_json)}


def test_metric(pipe, spec: TuneSpec, cfg, root: str) -> dict:
    """Run ``eval_stage`` for one configuration and return the filtered test metric rows."""
    from pipelines.core.runner import run_pipeline

    res = run_pipeline(pipe, cfg, root, until=spec.eval_stage, echo=False)
    df = res.artifact(spec.eval_stage).df("metrics")
    for k, v in spec.test_metric.items():
        if k not in df.columns:
            raise ConfigError(f"tune test_metric: '{k}' is not a column of {spec.eval_stage}/metrics "
                              f"(columns: {', '.join(df.columns)})")
        df = df[df[k].isin(v if isinstance(v, list) else [v])]
    value = float(df["value"].mean()) if len(df) else float("nan")
    return {"value": value, "rows": int(len(df)), "fingerprint": res.plans[spec.eval_stage].fingerprint}


# ---------------------------------------------------------------------------- reporting
def plot_results(results: pd.DataFrame, spec: TuneSpec, out_dir: Path) -> list[Path]:
    """``<metric>_vs_<axis>.png`` for every searched axis (finite values; the default starred)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    ok = results[np.isfinite(results.value.astype(float))]
    label = f"validation {spec.metric}"
    for axis in spec.space:
        col = f"p:{axis.column}"
        if col not in ok or not len(ok):
            continue
        fig, ax = plt.subplots(figsize=(6.0, 4.0))
        x = ok[col]
        numeric = pd.api.types.is_numeric_dtype(x)
        xs = x if numeric else x.astype(str)
        ax.scatter(xs, ok.value, s=24, alpha=0.8)
        d = ok[ok.is_default]
        if len(d):
            dx = d[col] if numeric else d[col].astype(str)
            ax.scatter(dx, d.value, marker="*", s=180, color="gold", edgecolor="k", zorder=5, label="default")
            ax.legend(fontsize=7)
        if numeric and axis.loguniform is not None:
            ax.set_xscale("log")
        ax.set_xlabel(axis.column)
        ax.set_ylabel(label)
        ax.set_title(f"tune '{spec.name}': {label} vs {axis.column}")
        fig.tight_layout()
        paths.append(out_dir / f"{spec.metric}_vs_{axis.column.replace('.', '_')}.png")
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)
    return paths


def markdown_table(results: pd.DataFrame, spec: TuneSpec, summary: dict) -> str:
    """A Markdown results table (sorted by the metric) and the best-vs-default lines."""
    cols = [c for c in results.columns if c.startswith("p:")]
    df = results.sort_values("value", ascending=spec.mode == "min")
    head = "| trial | " + " | ".join(c[2:] for c in cols) + f" | valid {spec.metric} | reports | status |"
    lines = [head, "|" + "---|" * (len(cols) + 4)]
    for _, r in df.iterrows():
        vals = []
        for c in cols:
            v = r[c]
            vals.append(f"{v:.4g}" if isinstance(v, float) else str(v))
        tag = " (default)" if r.is_default else ""
        lines.append(f"| {r.trial}{tag} | " + " | ".join(vals)
                     + f" | {r.value:.4f} | {r.reports} | {r.status.lower()} |")
    b = summary["best"]
    lines += ["", f"Best (validation): trial {b['trial']} {b['params']} -> {b['value']:.4f}"]
    if "default" in summary:
        d = summary["default"]
        rel = (b["value"] - d["value"]) / d["value"] * 100 if d["value"] else float("nan")
        lines.append(f"Default: trial {d['trial']} {d['params']} -> {d['value']:.4f} "
                     f"(best is {b['value'] - d['value']:+.4f}, {rel:+.1f}%)")
    if "test" in summary:
        t = summary["test"]
        line = f"Test ({spec.test_metric}): best {t['best']['value']:.4f}"
        if "default" in t:
            line += f", default {t['default']['value']:.4f}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def _num(v: Any) -> float:
    try:
        return float(v) if v is not None else float("nan")
    except (TypeError, ValueError):
        return float("nan")


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str))
    tmp.replace(path)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
