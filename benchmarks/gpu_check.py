"""GPU check for the training engine: every loop on CUDA (fp32 and bf16), GIN paths, throughput.

For a machine with a GPU (run it there once, with a time limit; it prints one table):

    python benchmarks/gpu_check.py                # CUDA vs CPU
    python benchmarks/gpu_check.py --device cpu   # the same script without a GPU (checks the script)

1. The torch-sparse GIN path on CUDA equals the DGL path on the CPU (same weights, same batch).
2. Each loop (pretrain, finetune, video, vq, priors) trains for a few steps through its real stage
   with ``trainer.use_gpu`` (fp32, then bf16 autocast where the loop has the option), and the
   metrics are finite.
3. Samples/s of each loop on the device against the same loop on the CPU, in the same run.
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
sys.path.insert(0, str(ROOT / "benchmarks"))
os.environ.setdefault("DGLBACKEND", "pytorch")
os.environ.setdefault("TQDM_DISABLE", "1")


def gin_paths_agree(device: str) -> float:
    """Max |sparse path on device - dgl path on CPU| for one batch of ego graphs."""
    import numpy as np
    import torch

    from components.pcrec.features import subgraph_features
    from components.pcrec.gin import GINEncoder
    from components.pcrec.graph import build_bipartite
    from components.pcrec.sampler import RWRConfig, sample_views

    rng = np.random.default_rng(0)
    g = build_bipartite(rng.integers(0, 60, 400), rng.integers(0, 40, 400), 60, 40)
    view, _ = sample_views(g, torch.arange(32), RWRConfig(max_nodes=16, num_walkers=8, walk_length=8), seed=0)
    f = subgraph_features(view, 8, sign_flip=False)
    torch.manual_seed(0)
    enc = GINEncoder(9, hidden=32, out_dim=16, num_layers=3, degree_dim=8, max_degree=32).eval()
    with torch.no_grad():
        enc.path = "dgl"
        ref = enc(view.to_dgl(), f.x, f.degree)
        enc.path = "sparse"          # what "auto" picks for features on CUDA
        enc_d = enc.to(device)
        out = enc_d(view.to_dgl(), f.x.to(device), f.degree.to(device))
    return float((out.cpu() - ref).abs().max())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--epochs", type=int, default=2)
    args = ap.parse_args()

    import numpy as np
    import torch

    from bench_workers import LOOPS, samples_per_s
    from pipelines.core.config import load_config
    from pipelines.core.ray_env import init_ray, shutdown_ray
    from pipelines.core.runner import run_pipeline
    from pipelines.registry import get_pipeline

    gpu = args.device == "cuda"
    if gpu and not torch.cuda.is_available():
        print("no CUDA device visible; run with --device cpu to check the script itself")
        return 2
    print(f"torch {torch.__version__}, device {torch.cuda.get_device_name(0) if gpu else 'cpu'}")
    gin_err = gin_paths_agree(args.device)
    print(f"GIN: max |sparse path on {args.device} - dgl path on cpu| = {gin_err:.2e}")

    os.environ.pop("RAY_ADDRESS", None)
    init_ray(None, num_gpus=1 if gpu else 0)
    epoch_key = {"pretrain": "pretrain.epochs", "finetune": "finetune.train.epochs", "video": "train.epochs",
                 "vq": "train.epochs", "priors": "prior.epochs"}
    gpu_key = {"pretrain": "pretrain.trainer.use_gpu", "finetune": "finetune.trainer.use_gpu",
               "video": "train.trainer.use_gpu", "vq": "train.trainer.use_gpu", "priors": "prior.trainer.use_gpu"}
    bf16_key = {"video": "train.bf16"}
    rows = []
    try:
        for loop, (pipe_name, config, until, sets, workers_key) in LOOPS.items():
            pipe = get_pipeline(pipe_name)
            variants = [("cpu", [])] + ([("cuda fp32", [f"{gpu_key[loop]}=true"])] if gpu else [])
            if gpu and loop in bf16_key:
                variants.append(("cuda bf16", [f"{gpu_key[loop]}=true", f"{bf16_key[loop]}=true"]))
            for label, extra in variants:
                cfg = load_config(pipe.config_cls, str(ROOT / config),
                                  sets + extra + [f"{workers_key}=1", f"{epoch_key[loop]}={args.epochs}"])
                with tempfile.TemporaryDirectory() as root:
                    t0 = time.perf_counter()
                    res = run_pipeline(pipe, cfg, root, until=until, echo=False)
                    wall = time.perf_counter() - t0
                    art = res.artifact(until)
                    sps = samples_per_s(loop, art)
                    table = "curve" if loop == "pretrain" else "runs" if loop == "finetune" else "history"
                    num = art.df(table).select_dtypes("number").to_numpy()
                rows.append((loop, label, sps, bool(np.isfinite(num).all()), wall))
                print(f"{loop:<9} {label:<10} {sps:10.1f} samples/s  finite={rows[-1][3]}  {wall:.0f}s", flush=True)
    finally:
        shutdown_ray()
    print("\n| loop | variant | samples/s | vs cpu | metrics finite |")
    print("|---|---|---|---|---|")
    cpu = {r[0]: r[2] for r in rows if r[1] == "cpu"}
    for loop, label, sps, finite, _ in rows:
        print(f"| {loop} | {label} | {sps:.1f} | {sps / max(cpu[loop], 1e-9):.2f}x | {finite} |")
    return 0 if all(r[3] for r in rows) and gin_err < 1e-4 else 1


if __name__ == "__main__":
    raise SystemExit(main())
