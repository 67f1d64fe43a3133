"""Helpers shared by the vq stages: model specs from the config, loading artifacts."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from components.vq.build import build_priors
from components.vq.data import from_frame, to_model_input
from components.vq.vqvae import HierarchicalVQVAE, VQVAESpec
from pipelines.core.train import load_state


def level_names(levels: int) -> list[str]:
    """Code-table column of each level, bottom first."""
    return {1: ["bottom"], 2: ["bottom", "top"], 3: ["bottom", "middle", "top"]}[levels]


def vq_spec(cfg, in_channels: int) -> VQVAESpec:
    v = cfg.vq
    return VQVAESpec(in_channels=in_channels, hidden=v.hidden, res_channels=v.res_channels,
                     n_res=v.n_res, num_codes=v.num_codes, code_dim=v.code_dim, levels=cfg.levels,
                     downsample=v.downsample,
                     beta=v.beta, ema=v.ema, decay=v.decay, restart_threshold=v.restart_threshold,
                     data_init=v.data_init)


def prior_kwargs(cfg, n_classes: int) -> dict:
    p = cfg.prior
    return dict(levels=cfg.levels, num_codes=cfg.vq.num_codes, image_size=cfg.data.image_size,
                channels=p.channels, layers=p.layers, top_layers=p.top_layers, kernel=p.kernel,
                attn_every=p.attn_every, heads=p.heads, dropout=p.dropout, cond_res=p.cond_res,
                n_classes=n_classes if p.class_conditional else 0, downsample=cfg.vq.downsample)


def epoch_batches(s, n: int, batch_size: int, epoch: int, max_steps: int | None = None,
                  steps: int | None = None) -> list:
    """This rank's batches for one epoch of a ``Session`` ``s``: one pass over ``range(n)`` cut to
    ``max_steps``, or exactly ``steps`` batches, cycling through further reshuffled passes when
    one pass is shorter (small data sets). With ``steps`` <= one pass both give the same batches."""
    if not steps:
        return s.shard(n, batch_size, epoch)[: max_steps or None]
    out, r = [], 0
    while len(out) < steps:
        out += s.shard(n, batch_size, epoch + r * 1_000_003)
        r += 1
    return out[:steps]


def images_of(df: pd.DataFrame, size: int, split: str | None = None):
    """(float images N x C x size x size, labels, ids) of one split of the ingest table."""
    if split is not None:
        df = df[df.split == split]
    x, y, ids = from_frame(df)
    return to_model_input(x, size), torch.from_numpy(np.array(y)), ids


def load_vqvae(art) -> HierarchicalVQVAE:
    blob = load_state(art.path("model.pt"))
    m = HierarchicalVQVAE(VQVAESpec(**blob["spec"]))
    m.load_state_dict(blob["model"])
    return m.eval()


def load_priors(art) -> list:
    blob = load_state(art.path("priors.pt"))
    priors = build_priors(**blob["kwargs"])
    for p, sd in zip(priors, blob["priors"]):
        p.load_state_dict(sd)
        p.eval()
    return priors


def codes_of(df: pd.DataFrame, levels: int, shapes) -> list[torch.Tensor]:
    """Code maps per level (bottom first) from the code table."""
    out = []
    for name, (h, w) in zip(level_names(levels), shapes):
        arr = np.stack(df[name].to_numpy()).astype(np.int64).reshape(len(df), h, w)
        out.append(torch.from_numpy(arr))
    return out
