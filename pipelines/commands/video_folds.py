"""`recgen video-folds [--config FILE] [--set k=v] [--folds 1 2 3] [--seeds 0 ...]`: the
UCF101 / HMDB51 protocol, one `recgen run video` per official split (x seed) up to evaluate,
averaged (:mod:`pipelines.video.folds`)."""
from __future__ import annotations


def cmd_video_folds(args) -> int:
    from pipelines.cli import artifacts_root, load_pipeline_config
    from pipelines.core import interrupt
    from pipelines.core.artifacts import Store
    from pipelines.core.ray_env import init_ray
    from pipelines.core.runner import preflight
    from pipelines.video.folds import fold_configs, run_folds

    pipe, cfg = load_pipeline_config("video", args)
    fold_configs(cfg, args.folds, args.seeds)                 # config errors before Ray starts
    root = artifacts_root(args)
    preflight(pipe, cfg, root, until="evaluate")
    init_ray(args.address, num_cpus=args.num_cpus, verbose=args.verbose)
    summary = interrupt.call(lambda: run_folds(cfg, Store(root), args.folds, args.seeds))
    print(summary["markdown"])
    print(f"[video-folds] written to {Store(root).join('video', 'folds', summary['name'])}.{{json,md}}")
    return 0


def register(subparsers) -> None:
    from pipelines.cli import add_run_options

    p = subparsers.add_parser("video-folds", help="UCF101/HMDB51: run the official splits (x seeds) and average")
    add_run_options(p)
    p.add_argument("--folds", type=int, nargs="+", default=[1, 2, 3], help="official splits (default: 1 2 3)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds per split (default: 0)")
    p.set_defaults(func=cmd_video_folds)
