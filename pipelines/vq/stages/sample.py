"""sample: ancestral sampling (top prior, lower priors, decoder); samples table + PNG grid."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from components.vq.data import from_model_output
from components.vq.grid import save_grid
from components.vq.sampling import ancestral_sample
from pipelines.vq.stages.common import level_names, load_priors, load_vqvae


def run_sample(ctx) -> None:
    cfg = ctx.cfg.sample
    vq = load_vqvae(ctx.input("train_vq"))
    priors = load_priors(ctx.input("train_priors"))
    n_classes = ctx.input("ingest").json("classes")["n_classes"]
    conditional = priors[-1].spec.n_classes > 0
    if conditional:
        labels = torch.arange(n_classes).repeat_interleave(cfg.per_class)
        n = len(labels)
    else:
        labels, n = None, cfg.n
    torch.manual_seed(ctx.seed)
    t0 = time.perf_counter()
    images, codes = ancestral_sample(vq, priors, n, labels, temperature=cfg.temperature,
                                     batch_size=cfg.batch_size, seed=ctx.seed)
    dt = time.perf_counter() - t0
    pix = from_model_output(images)
    df = pd.DataFrame({"sample_id": np.arange(n, dtype=np.int64),
                       "intended_label": (labels.numpy() if labels is not None else np.full(n, -1)),
                       "height": pix.shape[1], "width": pix.shape[2], "channels": pix.shape[3],
                       "pixels": [p.tobytes() for p in pix]})
    for name, c in zip(level_names(vq.levels), codes):
        df[name] = list(c.reshape(n, -1).to(torch.int16).numpy())
    ctx.out.write_table("samples", df)
    if conditional:                     # one row per class, first 10 samples each
        pick = np.concatenate([np.arange(c * cfg.per_class, c * cfg.per_class + min(10, cfg.per_class))
                               for c in range(n_classes)])
        save_grid(ctx.out.path("samples.png"), pix[pick], ncol=min(10, cfg.per_class))
    else:
        save_grid(ctx.out.path("samples.png"), pix[:100], ncol=10)
    ctx.out.stats(samples=n, seconds=dt, samples_per_s=n / dt, temperature=cfg.temperature)
    ctx.log("%d samples in %.1fs (%.1f samples/s)", n, dt, n / dt)
