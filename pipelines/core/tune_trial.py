"""One search trial as its own Ray job: ``python -m pipelines.core.tune_trial`` (started by
:func:`pipelines.core.tune.trial_fn`, never by hand).

Why a job of its own: a trial's training stage runs a ``TorchTrainer`` whose controller
reserves its workers' resources in a placement group. Ray removes a placement group when the
actor that created it *and* that actor's job are gone. When a scheduler (ASHA) stops a trial,
Tune ends the trial's actor, so the controller dies, but in the search's own job its placement
group would stay reserved until the search ends, and later trials would wait for CPUs that
never come back (``WorkerGroupStartupTimeoutError``). Here every trial's Ray objects (trial
actor, controller, workers, placement groups) belong to this process's job; the job ends when
this process does, which it does as soon as the Tune trial that started it goes away (its
stdin closes), so Ray releases all of it. No cleanup thread, public Ray APIs only.

Protocol: one JSON line on stdin (the job), then stdin stays open while the trial lives. Each
result of the trial goes to stdout as ``@@recgen-report <json>``. Exit status 0: the trial
finished; otherwise the error is on stderr.
"""
from __future__ import annotations

import json
import math
import os
import sys
import threading

MARK = "@@recgen-report "
# keys Ray Tune fills in itself; the outer trial's own report gets fresh ones
AUTO_KEYS = {"training_iteration", "time_total_s", "time_this_iter_s", "trial_id", "date", "timestamp",
             "pid", "hostname", "node_ip", "iterations_since_restore", "done", "experiment_tag",
             "checkpoint_dir_name", "should_checkpoint", "config", "time_since_restore"}


def _plain(v):
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, int):
        return v
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else repr(f)   # JSON has no NaN/inf: "nan", "inf", "-inf"


def clean_result(result: dict) -> dict:
    return {k: _plain(v) for k, v in result.items()
            if k not in AUTO_KEYS and not isinstance(v, (dict, list, tuple))}


def decode_result(metrics: dict) -> dict:
    return {k: (float(v) if v in ("nan", "inf", "-inf") else v) for k, v in metrics.items()}


def _watch_parent() -> None:
    """Leave at once when the trial that started this process is gone (stdin reaches EOF)."""
    try:
        while sys.stdin.readline():
            pass
    finally:
        os._exit(4)


def _body(config: dict) -> None:
    from pipelines.core.tune import trial_body

    trial_body(config["job"])


def main() -> int:
    job = json.loads(sys.stdin.readline())
    threading.Thread(target=_watch_parent, name="recgen-trial-parent", daemon=True).start()
    os.environ.setdefault("DGLBACKEND", "pytorch")
    import ray.tune

    from pipelines.core.ray_env import init_ray

    init_ray(job["address"])
    out = sys.stdout

    class Forward(ray.tune.Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            out.write(MARK + json.dumps(clean_result(result)) + "\n")
            out.flush()

    fn = ray.tune.with_resources(_body, {"cpu": 0, "memory": 64 * 2**20})
    tuner = ray.tune.Tuner(
        fn, param_space={"job": job},
        tune_config=ray.tune.TuneConfig(num_samples=1, reuse_actors=False),
        run_config=ray.tune.RunConfig(name=f"trial-{job['trial']['trial']}", storage_path=job["storage"],
                                      callbacks=[Forward()], verbose=0,
                                      failure_config=ray.tune.FailureConfig(max_failures=0)))
    grid = tuner.fit()
    err = grid[0].error
    if err is not None:
        print(f"trial {job['trial']['trial']} failed: {err}", file=sys.stderr, flush=True)
        return 3
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
