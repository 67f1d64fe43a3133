"""`recgen retrain [--config FILE]` — consume new partitions, retrain, register, maybe promote."""
from __future__ import annotations

import sys

DEFAULT_CONFIG = "configs/retrain/ml1m.yaml"
EXIT_BUSY = 75  # EX_TEMPFAIL: another retrain holds the lock; try again later


def cmd_retrain(args) -> int:
    from pipelines.cli import artifacts_root
    from pipelines.commands.registry import format_table
    from pipelines.modelreg import ModelRegistry
    from pipelines.retrain.retrain import RetrainBusy, load_retrain_config, retrain

    cfg = load_retrain_config(args.config or DEFAULT_CONFIG, args.sets)
    root = artifacts_root(args)
    try:
        out = retrain(cfg, root, address=args.address)
    except RetrainBusy as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BUSY
    if out.status == "registered":
        print(format_table(ModelRegistry(root, cfg.model)))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("retrain", help="retrain on new interaction partitions and update the registry")
    p.add_argument("--config", help=f"retrain YAML (default: {DEFAULT_CONFIG})")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="override a retrain config value, e.g. --set policy.tolerance=0.01")
    p.add_argument("--artifacts", help="artifact root (default: $RECGEN_ARTIFACTS or ./artifacts)")
    p.add_argument("--address", help="Ray address to join (default: $RAY_ADDRESS, else embedded local Ray)")
    p.set_defaults(func=cmd_retrain)
