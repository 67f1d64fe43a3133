"""Training throughput of the video model zoo on CPU, and our r2plus1d_18 against torchvision's.

    python benchmarks/bench_video_models.py [--quick] [--models r3d_18,x3d_xs] [--threads 2]

1. Per model: clips/s of a full training step (forward, cross-entropy, backward, SGD step) at a
   small input (the model's tiny test size, batch 4), with the ratio to r3d_18 measured in the
   same run.
2. r2plus1d_18, ours vs torchvision.models.video.r2plus1d_18 (skipped when torchvision is not
   installed), same weights, same input, interleaved rounds; prints clips/s and the ratio
   ours/torchvision (median over rounds), with and without our TemporalConv3d fast path.
   torchvision is not a project dependency: run this part in a side venv that has it, with
   PYTHONPATH set to the repository root.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import torch  # noqa: E402

from components.video.models import build, names, spec  # noqa: E402
from components.video.models.resnet3d import TemporalConv3d  # noqa: E402


def _to(x, fn):
    return {k: fn(v) for k, v in x.items()} if isinstance(x, dict) else fn(x)


CLOCK = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = time.perf_counter


def train_rate(model, x, steps: int, warmup: int = 1) -> float:
    """Clips per second of SGD training steps on input ``x`` (batch = first dim), by the clock
    chosen with ``--clock`` (wall time, or this process's CPU time: robust on a shared machine)."""
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    b = next(iter(x.values())).shape[0] if isinstance(x, dict) else x.shape[0]
    y = torch.arange(b) % 3
    aux = getattr(model, "spec", None) is not None and model.spec.aux_loss
    t0 = None
    for i in range(warmup + steps):
        if i == warmup:
            t0 = _clock()
        opt.zero_grad(set_to_none=True)
        if aux:
            logits, extra = model.forward_train(x)
            loss = torch.nn.functional.cross_entropy(logits, y) + sum(extra.values())
        else:
            loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
    return steps * b / (_clock() - t0)


def zoo(models, steps: int, batch: int) -> None:
    print(f"== training clips/s per model (CPU, {torch.get_num_threads()} threads, batch {batch}, "
          f"{steps} steps, tiny input) ==")
    rates = {}
    for name in models:
        s = spec(name)
        torch.manual_seed(0)
        m = build(name, 3, **s.tiny_kwargs)
        x = s.example_input(batch, tiny=True)
        rates[name] = train_rate(m, x, steps)
        shape = {k: tuple(v.shape[1:]) for k, v in x.items()} if isinstance(x, dict) else tuple(x.shape[1:])
        print(f"{name:20s} {rates[name]:8.2f} clips/s  input {shape}"
              + ("  (reduced: " + ", ".join(f"{k}={v}" for k, v in s.tiny_kwargs.items()) + ")" if s.tiny_kwargs else ""),
              flush=True)
    if "r3d_18" in rates:
        print("ratio to r3d_18 (same run): " + ", ".join(f"{n} {r / rates['r3d_18']:.2f}" for n, r in rates.items()))


def versus_torchvision(rounds: int, steps: int, shape) -> None:
    try:
        from torchvision.models.video import r2plus1d_18 as tv_r2plus1d_18
    except ImportError:
        print("== r2plus1d_18 vs torchvision: skipped (torchvision not installed) ==")
        return
    import torchvision
    print(f"== r2plus1d_18 ours vs torchvision {torchvision.__version__} (torch {torch.__version__}), "
          f"input {tuple(shape)}, {rounds} rounds x {steps} steps ==")
    torch.manual_seed(0)
    theirs = tv_r2plus1d_18(num_classes=10)
    ours = build("r2plus1d_18", 10)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(*shape)
    res = {"ours": [], "ours_nofast": [], "torchvision": []}
    for r in range(rounds):
        for key in ("torchvision", "ours", "ours_nofast") if r % 2 else ("ours", "ours_nofast", "torchvision"):
            TemporalConv3d.fast = key != "ours_nofast"
            model = theirs if key == "torchvision" else ours
            res[key].append(train_rate(model, x, steps))
        TemporalConv3d.fast = True
        print(f"round {r}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in res.items()) + " clips/s", flush=True)
    ratios = [a / b for a, b in zip(res["ours"], res["torchvision"])]
    ratios_nf = [a / b for a, b in zip(res["ours_nofast"], res["torchvision"])]
    print(f"clips/s median: ours {statistics.median(res['ours']):.2f}, ours without TemporalConv3d fast path "
          f"{statistics.median(res['ours_nofast']):.2f}, torchvision {statistics.median(res['torchvision']):.2f}")
    print(f"RATIO ours/torchvision (median of per-round ratios): {statistics.median(ratios):.3f} "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f}); without fast path {statistics.median(ratios_nf):.3f}")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="video model training throughput")
    p.add_argument("--quick", action="store_true", help="fewer models, steps and rounds")
    p.add_argument("--models", default=None, help="comma-separated model names (default: all, or a few with --quick)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--clock", choices=sorted(CLOCK), default="wall",
                   help="wall: clips per second; cpu: clips per CPU-second of this process (use with "
                        "--threads 1 on a loaded machine)")
    p.add_argument("--skip-zoo", action="store_true", help="only the torchvision comparison")
    p.add_argument("--rounds", type=int, default=None, help="torchvision comparison rounds (default 7, quick 3)")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    global _clock
    _clock = CLOCK[a.clock]
    print(f"clock: {a.clock}, threads: {a.threads}")
    if a.models:
        models = a.models.split(",")
    elif a.quick:
        models = ["r3d_18", "r2plus1d_18", "x3d_xs", "slowfast_r50_4x16", "tsn_rgb"]
    else:
        models = names()
    if not a.skip_zoo:
        zoo(models, steps=2 if a.quick else 4, batch=4)
    versus_torchvision(rounds=a.rounds or (3 if a.quick else 7), steps=2 if a.quick else 3,
                       shape=(4, 3, 8, 32, 32) if a.quick else (4, 3, 8, 64, 64))


if __name__ == "__main__":
    main()
