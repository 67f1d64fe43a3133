"""Training throughput (clips/s, forward + backward + AdamW step) per video model on CPU,
fp32 against bf16 autocast, measured in the same run at the results-table input size.

    python benchmarks/bench_video_train.py            # all models of the results table
    python benchmarks/bench_video_train.py --quick    # 3 models, fewer steps

Inputs are real clips: the motion dataset is rendered, decoded and cut by the same
ClipDataset the pipeline uses (8 frames, stride 2, 32x32; TSN/two-stream per their specs).
Prints clips/s for fp32 and bf16 and the ratio bf16 / fp32 (> 1 means bf16 helps).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402

from benchmarks.video_results import MODELS  # noqa: E402
from components.video.index import build_index, scan_folder  # noqa: E402
from components.video.motion import render_dataset  # noqa: E402
from components.video.train_loop import autocast, model_input  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", nargs="*", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    keys = args.models or (["frame2d", "r3d", "slowfast"] if args.quick else list(MODELS))
    steps = 2 if args.quick else 4
    batch = 16

    from pipelines.core.config import load_config
    from pipelines.video.dag import PIPELINE
    from pipelines.video.stages.common import build_model, make_dataset

    root = tempfile.mkdtemp()
    render_dataset(root, clips_per_class={"train": 2}, size=48, num_frames=24, seed=0)
    index, _ = build_index(scan_folder(root))
    print(f"{'model':<40}{'params':>9}{'fp32 clips/s':>14}{'bf16 clips/s':>14}{'bf16/fp32':>11}")
    for key in keys:
        label, name, kwargs, _ = MODELS[key]
        cfg = load_config(PIPELINE.config_cls, None, [f"model.name={name}", f"model.kwargs={json.dumps(kwargs)}",
                                                      "flow.enabled=false", "clip.frames=8", "clip.stride=2"])
        ds = make_dataset(cfg, index, train=True, flows={})
        batch_items = [ds[i % len(ds)] for i in range(batch)]
        x = {k: torch.stack([b[0][k] for b in batch_items]) for k in batch_items[0][0]}
        y = torch.tensor([b[1] for b in batch_items])
        rates = {}
        for bf16 in (False, True):
            torch.manual_seed(0)
            model = build_model(cfg, 12).train()
            opt = torch.optim.AdamW(model.parameters(), 1e-3)

            def step():
                with autocast(bf16):
                    loss = torch.nn.functional.cross_entropy(model(model_input(x)).float(), y)
                opt.zero_grad()
                loss.backward()
                opt.step()

            step()  # warm-up
            t = time.perf_counter()
            for _ in range(steps):
                step()
            rates[bf16] = steps * batch / (time.perf_counter() - t)
        n = sum(p.numel() for p in model.parameters())
        print(f"{label:<40}{n / 1e6:>8.2f}M{rates[False]:>14.1f}{rates[True]:>14.1f}{rates[True] / rates[False]:>11.2f}",
              flush=True)
    print(f"(threads {args.threads}, load avg {os.getloadavg()[0]:.1f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
