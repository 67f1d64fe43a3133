"""`recgen tune PIPELINE [--config FILE] [--set k=v] [--space FILE] [--resume]`: Ray Tune search.

``--config`` / ``--set`` give the base pipeline configuration (as for ``recgen run``);
``--space`` the search (default ``configs/<pipeline>/tune.yaml``), ``--tune-set`` overrides in
it (e.g. ``--tune-set num_samples=2``). Results go to ``<artifacts>/<pipeline>/tune/<name>/``.
The engine is :mod:`pipelines.core.tune`. Ctrl-C / SIGTERM: no results are written, the
command to continue (``... --resume``) is printed, exit 130 / 143.
"""
from __future__ import annotations

import os
import shlex
import sys

from components.errors import ConfigError

TUNABLE = ("pcrec", "video", "vq")


def resume_command(argv: list[str]) -> str:
    """The command line that continues this search."""
    args = list(argv)
    if "--resume" not in args:
        args.append("--resume")
    return "recgen " + shlex.join(args)


def cmd_tune(args) -> int:
    from pipelines.cli import artifacts_root
    from pipelines.core import interrupt
    from pipelines.core.config import deep_merge, parse_sets, read_yaml, resolve_config_paths, validate_config
    from pipelines.core.ray_env import init_ray
    from pipelines.core.runner import preflight
    from pipelines.core.tune import load_spec, run_search
    from pipelines.registry import get_pipeline

    if args.pipeline not in TUNABLE:
        raise ConfigError(f"recgen tune: pipeline '{args.pipeline}' has no search; choose one of: "
                          f"{', '.join(TUNABLE)}")
    base = read_yaml(args.config) if args.config else {}
    base = deep_merge(base, parse_sets(args.sets))
    spec = load_spec(args.space, args.tune_sets, pipeline=args.pipeline)
    # trials run in their own working directories: relative paths become absolute here, and
    # inputs and the artifact root are checked before Ray starts
    pipe = get_pipeline(args.pipeline)
    base = resolve_config_paths(pipe.config_cls, base, os.getcwd(), source=args.config or "--set")
    preflight(pipe, validate_config(pipe.config_cls, base, args.config or "--set"), artifacts_root(args))
    init_ray(args.address, num_cpus=args.num_cpus, verbose=getattr(args, "verbose", False))
    argv = getattr(args, "argv", None) or sys.argv[1:]
    unhook = interrupt.on_interrupt(lambda signum: "interrupted; no results were written. "
                                    "Resume the search with:\n  " + resume_command(argv))
    try:
        out = interrupt.call(lambda: run_search(args.pipeline, base, spec, artifacts_root(args),
                                                resume=args.resume, evaluate=not args.no_test))
    finally:
        unhook()
    print(open(f"{out.out_dir}/results.md").read())
    return 0


def register(subparsers) -> None:
    from pipelines.cli import add_run_options

    p = subparsers.add_parser("tune", help="Ray Tune search (pcrec: r-hop, margin loss, margin, size, lr; "
                                           "video/vq: lr, width)")
    p.add_argument("pipeline", help=f"pipeline to tune ({', '.join(TUNABLE)})")
    add_run_options(p)
    p.add_argument("--space", help="search spec YAML (default: configs/<pipeline>/tune.yaml)")
    p.add_argument("--tune-set", dest="tune_sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key of the search spec, e.g. --tune-set num_samples=2")
    p.add_argument("--resume", action="store_true", help="continue an interrupted search")
    p.add_argument("--no-test", action="store_true",
                   help="skip the one-off test-metric evaluation of the best configuration")
    p.set_defaults(func=cmd_tune)
