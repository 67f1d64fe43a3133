"""`recgen` command line.

    recgen run PIPELINE [--config FILE] [--set key=value ...] [--artifacts URI]
                        [--address ADDR] [--until STAGE] [--force STAGE ...]
    recgen stages PIPELINE
    recgen artifacts ls [PIPELINE] | recgen artifacts show PIPELINE STAGE

More sub-commands come from the modules in ``pipelines/commands/`` (each has
``register(subparsers)``). Errors caused by input or config print ``error: ...`` and exit 2.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import sys

from components.errors import RecgenError

DEFAULT_ARTIFACTS = "artifacts"


def artifacts_root(args) -> str:
    return getattr(args, "artifacts", None) or os.environ.get("RECGEN_ARTIFACTS") or DEFAULT_ARTIFACTS


def add_run_options(p: argparse.ArgumentParser) -> None:
    """Options shared by commands that run a pipeline (run, tune, retrain)."""
    p.add_argument("--config", help="YAML config file")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set kcore.k_target=5 (repeatable)")
    p.add_argument("--artifacts", help="artifact root URI (default: $RECGEN_ARTIFACTS or ./artifacts)")
    p.add_argument("--address", help="Ray address to join ('auto' = running cluster); "
                   "default: $RAY_ADDRESS, else an embedded local Ray on 127.0.0.1")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs of the embedded local Ray")
    p.add_argument("--verbose", action="store_true",
                   help="show Ray's worker and Ray Train output live (default: in the run's log file)")


def load_pipeline_config(name: str, args):
    """The pipeline and its config; relative paths in it are made absolute against the current
    directory (stages may run in other working directories: Ray workers, Tune trials)."""
    from pipelines.core.config import load_config
    from pipelines.registry import get_pipeline

    pipe = get_pipeline(name)
    return pipe, load_config(pipe.config_cls, args.config, args.sets, base_dir=os.getcwd())


def cmd_run(args) -> int:
    from pipelines.core import interrupt
    from pipelines.core.ray_env import init_ray
    from pipelines.core.runner import preflight, run_pipeline

    pipe, cfg = load_pipeline_config(args.pipeline, args)
    if args.until:
        pipe.stage(args.until)
    preflight(pipe, cfg, artifacts_root(args), until=args.until)  # fail fast, before Ray starts
    init_ray(args.address, num_cpus=args.num_cpus, verbose=args.verbose)
    # Ctrl-C / SIGTERM: the run is recorded as interrupted, exit 130 / 143 (pipelines.core.interrupt)
    res = interrupt.call(lambda: run_pipeline(pipe, cfg, artifacts_root(args), until=args.until,
                                              force=args.force))
    print(f"[{pipe.name}] run {res.run_id} finished: "
          f"{sum(p.status == 'hit' for p in res.plans.values())} cached, "
          f"{sum(p.status != 'hit' for p in res.plans.values())} computed; "
          f"artifacts under {res.store.join(pipe.name)}")
    return 0


def cmd_stages(args) -> int:
    from pipelines.registry import get_pipeline

    pipe = get_pipeline(args.pipeline)
    print(f"{pipe.name}: {pipe.description}".rstrip(": "))
    for s in pipe.stages:
        ins = ", ".join(s.inputs) or "-"
        kind = "by config" if callable(s.kind) else s.kind
        print(f"  {s.name:<14} kind={kind:<6} inputs: {ins:<24} config: {', '.join(s.config_keys) or '-'}"
              + (f"\n  {'':<14} {s.description}" if s.description else ""))
    return 0


def cmd_artifacts(args) -> int:
    from pipelines.core.artifacts import Store
    from pipelines.core.runner import latest_run
    from pipelines.registry import names

    store = Store(artifacts_root(args))
    if args.action == "ls":
        pipes = [args.pipeline] if args.pipeline else names()
        listed = 0
        for p in pipes:
            outs = sorted(store.list_stage_outputs(p), key=lambda m: (m.get("stage", ""), m.get("committed_at", "")))
            latest = latest_run(store, p) or {"stages": {}}
            listed += len(outs)
            for m in outs:
                cur = latest["stages"].get(m["stage"], {}).get("fingerprint") == m["fingerprint"]
                rows = sum(t["rows"] for t in m.get("tables", {}).values())
                print(f"{p:<6} {m['stage']:<14} {m['fingerprint'][:16]} {'*' if cur else ' '} "
                      f"rows={rows:<10} {m.get('wall_time_s', 0):>8.1f}s  {m.get('committed_at', '')}")
        if not listed:  # outputs without a manifest were never committed: not listed
            print(f"no finished stage outputs of {', '.join(pipes)} under {store.uri}")
            return 0
        print("(* = used by the latest run)")
        return 0
    latest = latest_run(store, args.pipeline)
    if not latest or args.stage not in latest["stages"]:
        print(f"error: no finished run of {args.pipeline} with stage {args.stage} under {store.uri}",
              file=sys.stderr)
        return 2
    m = store.manifest(args.pipeline, args.stage, latest["stages"][args.stage]["fingerprint"])
    if m is None:  # the latest run did not commit this stage (failed or interrupted before it)
        print(f"error: the latest run of {args.pipeline} has no finished output of stage {args.stage} "
              f"under {store.uri} (`recgen artifacts ls {args.pipeline}` lists the finished ones)", file=sys.stderr)
        return 2
    print(json.dumps(m, indent=2))
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="recgen", description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run a pipeline (stages are cached)")
    p.add_argument("pipeline")
    add_run_options(p)
    p.add_argument("--until", help="stop after this stage")
    p.add_argument("--force", action="append", default=[], metavar="STAGE",
                   help="recompute this stage and everything after it (repeatable)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("stages", help="list a pipeline's stages")
    p.add_argument("pipeline")
    p.set_defaults(func=cmd_stages)

    p = sub.add_parser("artifacts", help="inspect the artifact store")
    asub = p.add_subparsers(dest="action", required=True)
    q = asub.add_parser("ls", help="list finished stage outputs")
    q.add_argument("pipeline", nargs="?")
    q.add_argument("--artifacts")
    q.set_defaults(func=cmd_artifacts)
    q = asub.add_parser("show", help="print the manifest of a stage of the latest run")
    q.add_argument("pipeline")
    q.add_argument("stage")
    q.add_argument("--artifacts")
    q.set_defaults(func=cmd_artifacts)

    import pipelines.commands as commands

    for mod in pkgutil.iter_modules(commands.__path__):
        module = importlib.import_module(f"pipelines.commands.{mod.name}")
        if hasattr(module, "register"):
            module.register(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("DGLBACKEND", "pytorch")
    from pipelines.core import interrupt

    args = build_parser().parse_args(argv)
    args.argv = list(argv) if argv is not None else sys.argv[1:]
    interrupt.reset()
    restore = interrupt.guard()   # a signal before the command's body runs (config, Ray start)
    try:
        return int(args.func(args) or 0)
    except RecgenError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except interrupt.Interrupted as e:
        print(interrupt.MESSAGE, file=sys.stderr)
        return interrupt.exit_code(e.signum)
    except KeyboardInterrupt:
        print(interrupt.MESSAGE, file=sys.stderr)
        return 130
    finally:
        restore()


if __name__ == "__main__":
    raise SystemExit(main())
