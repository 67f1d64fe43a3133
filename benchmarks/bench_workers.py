"""1 vs 2 Ray Train workers for each of the five training loops, in the same run.

Each loop runs through its real stage (the training engine in pipelines/core/train.py) on a
small config, once with ``trainer.num_workers=1`` and once with 2, and the table shows
samples per second of the training epochs (as the loop itself measures them, all ranks
together) and samples per CPU-second (divided by workers x cpus_per_worker).

On a 2-core machine two workers share the same two cores with the driver, Ray and gloo's
all-reduce: the ratio shows the overhead of data parallelism here, not a speed-up. On a
cluster each worker has its own cores or GPU.

    python benchmarks/bench_workers.py [--epochs 2] [--loops pretrain,finetune,video,vq,priors]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DGLBACKEND", "pytorch")
os.environ.setdefault("TQDM_DISABLE", "1")

# loop -> (pipeline, config, stage to run until, per-loop sets, sets naming the worker count)
LOOPS = {
    "pretrain": ("pcrec", "configs/pcrec/tiny.yaml", "pretrain",
                 ["sample.epochs=2", "pretrain.batch_size=16"], "pretrain.trainer.num_workers"),
    "finetune": ("pcrec", "configs/pcrec/tiny.yaml", "finetune",
                 ["finetune.train.optimizer=adam", "finetune.train.lr=0.01", "finetune.seeds=[0]",
                  "finetune.modes=[bpr_mf]", "finetune.train.batch_size=32"], "finetune.trainer.num_workers"),
    "video": ("video", "configs/video/tiny.yaml", "train", ["train.batch_size=4"], "train.trainer.num_workers"),
    "vq": ("vq", "configs/vq/tiny.yaml", "train_vq", [], "train.trainer.num_workers"),
    "priors": ("vq", "configs/vq/tiny.yaml", "train_priors", [], "prior.trainer.num_workers"),
}


def samples_per_s(loop: str, art) -> float:
    """Training throughput the loop recorded (all ranks), mean over epochs."""
    if loop == "pretrain":
        return float(art.df("curve").pairs_per_s.mean())
    if loop == "finetune":
        runs, curves = art.df("runs"), art.df("curves")
        epochs = int(curves[curves.epoch > 0].shape[0])
        return art.manifest["stats"]["train_pairs"] * epochs / max(float(runs.train_s.sum()), 1e-9)
    if loop == "video":
        return float(art.df("history").clips_per_s.mean())
    if loop == "vq":
        return float(art.df("history").images_per_s.mean())
    h = art.df("history")
    return art.manifest["stats"]["train_maps"] / max(float(h.seconds.mean()), 1e-9)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--loops", default=",".join(LOOPS))
    args = ap.parse_args()

    from pipelines.core.config import load_config
    from pipelines.core.ray_env import init_ray, shutdown_ray
    from pipelines.core.runner import run_pipeline
    from pipelines.registry import get_pipeline

    os.environ.pop("RAY_ADDRESS", None)
    init_ray(None, num_cpus=2)
    epoch_key = {"pretrain": "pretrain.epochs", "finetune": "finetune.train.epochs", "video": "train.epochs",
                 "vq": "train.epochs", "priors": "prior.epochs"}
    rows = []
    try:
        for loop in args.loops.split(","):
            pipe_name, config, until, sets, workers_key = LOOPS[loop]
            pipe = get_pipeline(pipe_name)
            for workers in (1, 2):
                cfg = load_config(pipe.config_cls, str(ROOT / config),
                                  sets + [f"{workers_key}={workers}", f"{epoch_key[loop]}={args.epochs}"])
                with tempfile.TemporaryDirectory() as root:
                    t0 = time.perf_counter()
                    res = run_pipeline(pipe, cfg, root, until=until, echo=False)
                    wall = time.perf_counter() - t0
                    sps = samples_per_s(loop, res.artifact(until))
                rows.append((loop, workers, sps, sps / workers, wall))
                print(f"{loop:<9} workers={workers}: {sps:9.1f} samples/s, {sps / workers:9.1f} per CPU-s, "
                      f"stage chain {wall:.0f}s", flush=True)
    finally:
        shutdown_ray()
    print("\n| loop | 1 worker samples/s | 2 workers samples/s | per CPU-s, 2 vs 1 |")
    print("|---|---|---|---|")
    by = {(r[0], r[1]): r for r in rows}
    for loop in dict.fromkeys(r[0] for r in rows):
        one, two = by[(loop, 1)], by[(loop, 2)]
        print(f"| {loop} | {one[2]:.1f} | {two[2]:.1f} | {two[3] / max(one[3], 1e-9):.2f}x |")
    print("\n(2 cores shared by both workers, the driver and Ray: the ratio is the overhead of data "
          "parallelism on this machine, not a speed-up.)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
