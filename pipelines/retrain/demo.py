"""`make demo-retrain`: ML-1M before a cut-off, then retrain as each later month arrives.

    python -m pipelines.retrain.demo [--artifacts DIR] [--users N] [--cutoff 2000-12-01] [--months 3]

1. writes the partitions (base = ratings before the cut-off, then one file per month) to
   ``<artifacts>/retrain-demo/all`` (random ``--users`` subset for speed, default 1500);
2. moves them one at a time into ``<artifacts>/retrain-demo/inbox`` ("a new partition arrived")
   and runs ``recgen retrain`` after each, then once more with nothing new (no new version);
3. prints the registry after each step: version, metrics, promotion decision and reason.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from pipelines.commands.registry import format_table
from pipelines.core.config import load_config
from pipelines.modelreg import ModelRegistry
from pipelines.retrain.config import RetrainConfig
from pipelines.retrain.partition_data import main as make_partitions
from pipelines.retrain.retrain import retrain

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "retrain" / "ml1m.yaml"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--artifacts", default="artifacts")
    ap.add_argument("--users", type=int, default=1500)
    ap.add_argument("--cutoff", default="2000-12-01")
    ap.add_argument("--months", type=int, default=3)
    ap.add_argument("--config", default=str(CONFIG))
    args = ap.parse_args(argv)

    work = Path(args.artifacts) / "retrain-demo"
    allp, inbox = work / "all", work / "inbox"
    if not allp.exists():
        make_partitions(["--out", str(allp), "--cutoff", args.cutoff, "--months", str(args.months),
                         "--users", str(args.users)])
    inbox.mkdir(parents=True, exist_ok=True)
    cfg = load_config(RetrainConfig, args.config, [f"partitions.dir={inbox}"])
    reg = ModelRegistry(args.artifacts, cfg.model)
    parts = sorted(allp.glob("*.csv"))
    for step, p in enumerate([*parts, None]):
        if p is not None:
            print(f"\n=== partition arrives: {p.name} ===", flush=True)
            shutil.copy2(p, inbox / p.name)
        else:
            print("\n=== no new partition: retrain again (expect no new version) ===", flush=True)
        t0 = time.time()
        out = retrain(cfg, args.artifacts)
        print(f"--- retrain: {out.status}, watermark {out.watermark}"
              + (f", v{out.version} {'PROMOTED' if out.promoted else 'not promoted'}" if out.version else "")
              + f" ({time.time() - t0:.0f}s)")
        print(format_table(reg), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
