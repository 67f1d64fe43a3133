"""`recgen tune pcrec [--config FILE] [--set k=v] [--space FILE] [--resume]`: Ray Tune search.

``--config`` / ``--set`` give the base pipeline configuration (as for ``recgen run``);
``--space`` the search (default ``configs/pcrec/tune.yaml``), ``--tune-set`` overrides in it
(e.g. ``--tune-set num_samples=2``). Results go to ``<artifacts>/pcrec/tune/<name>/``.
"""
from __future__ import annotations

import os

from components.errors import ConfigError

TUNABLE = ("pcrec",)


def cmd_tune(args) -> int:
    from pipelines.cli import artifacts_root
    from pipelines.core.config import deep_merge, parse_sets, read_yaml, resolve_config_paths, validate_config
    from pipelines.core.ray_env import init_ray
    from pipelines.core.runner import preflight
    from pipelines.registry import get_pipeline
    from pipelines.pcrec.tune import load_spec, run_search

    if args.pipeline not in TUNABLE:
        raise ConfigError(f"recgen tune: pipeline '{args.pipeline}' has no search; choose one of: "
                          f"{', '.join(TUNABLE)}")
    base = read_yaml(args.config) if args.config else {}
    base = deep_merge(base, parse_sets(args.sets))
    spec = load_spec(args.space, args.tune_sets)
    # trials run in their own working directories: relative paths become absolute here, and
    # inputs and the artifact root are checked before Ray starts
    pipe = get_pipeline(args.pipeline)
    base = resolve_config_paths(pipe.config_cls, base, os.getcwd(), source=args.config or "--set")
    preflight(pipe, validate_config(pipe.config_cls, base, args.config or "--set"), artifacts_root(args))
    init_ray(args.address, num_cpus=args.num_cpus, verbose=getattr(args, "verbose", False))
    out = run_search(args.pipeline, base, spec, artifacts_root(args), resume=args.resume,
                     evaluate=not args.no_test)
    print(open(f"{out.out_dir}/results.md").read())
    return 0


def register(subparsers) -> None:
    from pipelines.cli import add_run_options

    p = subparsers.add_parser("tune", help="Ray Tune search (r-hop, margin loss, margin, size, lr)")
    p.add_argument("pipeline", help="pipeline to tune (pcrec)")
    add_run_options(p)
    p.add_argument("--space", help="search spec YAML (default: configs/pcrec/tune.yaml)")
    p.add_argument("--tune-set", dest="tune_sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key of the search spec, e.g. --tune-set num_samples=2")
    p.add_argument("--resume", action="store_true", help="continue an interrupted search")
    p.add_argument("--no-test", action="store_true",
                   help="skip the one-off test-metric evaluation of the best configuration")
    p.set_defaults(func=cmd_tune)
