"""sample: ancestral sampling (top prior, lower priors, decoder); samples table + PNG grid.

The batches fan out over the cluster (:mod:`pipelines.core.fanout`; unit = one batch of
``sample.batch_size`` samples, ``sample.fanout.shard_size`` batches per shard). Each batch
draws from its own generator, seeded by (seed, batch index), so the samples are the same for
any shard size or node count. Each shard loads the models from the artifact root and writes
its part of ``samples`` there; the samples of the PNG grid come back to the stage.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from components.vq.data import from_model_output
from components.vq.grid import save_grid
from components.vq.sampling import ancestral_sample
from pipelines.core.fanout import fan_out
from pipelines.vq.stages.common import level_names, load_priors, load_vqvae


_CACHE: dict[tuple, tuple] = {}   # per worker process: (vq-vae, priors)


def _models(train_vq, train_priors):
    key = (train_vq.fingerprint, train_priors.fingerprint)
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = (load_vqvae(train_vq), load_priors(train_priors))
    return _CACHE[key]


def sample_shard(shard, d) -> dict:
    """One shard: the batches ``shard.items`` ((batch index, lo, hi) each) of samples."""
    cfg = shard.cfg.sample
    vq, priors = _models(shard.input("train_vq"), shard.input("train_priors"))
    labels = d["labels"]
    frames, grid = [], {}
    for b, lo, hi in shard.items:
        seed = shard.unit_seed(b, "vq-sample")
        torch.manual_seed(seed)
        lab = labels[lo:hi] if labels is not None else None
        images, codes = ancestral_sample(vq, priors, hi - lo, lab, temperature=cfg.temperature,
                                         batch_size=hi - lo, seed=seed)
        pix = from_model_output(images)
        df = pd.DataFrame({"sample_id": np.arange(lo, hi, dtype=np.int64),
                           "intended_label": (lab.numpy() if lab is not None else np.full(hi - lo, -1)),
                           "height": pix.shape[1], "width": pix.shape[2], "channels": pix.shape[3],
                           "pixels": [p.tobytes() for p in pix]})
        for name, c in zip(level_names(vq.levels), codes):
            df[name] = list(c.reshape(hi - lo, -1).to(torch.int16).numpy())
        frames.append(df)
        grid.update({int(i): pix[i - lo] for i in d["grid"] if lo <= i < hi})
    shard.out.write_table("samples", pd.concat(frames, ignore_index=True))
    return {"grid": grid}


def run_sample(ctx) -> None:
    cfg = ctx.cfg.sample
    priors = load_priors(ctx.input("train_priors"))
    n_classes = ctx.input("ingest").json("classes")["n_classes"]
    conditional = priors[-1].spec.n_classes > 0
    if conditional:
        labels = torch.arange(n_classes).repeat_interleave(cfg.per_class)
        n = len(labels)
        # the grid: one row per class, first 10 samples each
        pick = np.concatenate([np.arange(c * cfg.per_class, c * cfg.per_class + min(10, cfg.per_class))
                               for c in range(n_classes)])
    else:
        labels, n = None, cfg.n
        pick = np.arange(min(100, n))
    batches = [(b, lo, min(lo + cfg.batch_size, n)) for b, lo in enumerate(range(0, n, cfg.batch_size))]
    t0 = time.perf_counter()
    res = fan_out(ctx, "sample", sample_shard, len(batches), cfg.fanout, items=batches,
                  shared={"labels": labels, "grid": pick.tolist()})
    dt = time.perf_counter() - t0
    grid = {i: p for st in res.stats for i, p in st["grid"].items()}
    pix = np.stack([grid[int(i)] for i in pick])
    save_grid(ctx.out.path("samples.png"), pix, ncol=min(10, cfg.per_class) if conditional else 10)
    ctx.out.stats(samples=n, seconds=dt, samples_per_s=n / dt, temperature=cfg.temperature,
                  shards=len(res.shards))
    ctx.log("%d samples in %.1fs (%.1f samples/s)", n, dt, n / dt)
