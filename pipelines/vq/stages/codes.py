"""extract_codes: encode every image; Parquet ``codes`` (image id, label, split, top, bottom).

The images fan out over the cluster (:mod:`pipelines.core.fanout`; unit = one block of
:data:`BLOCK` images, ``extract_codes.fanout.shard_size`` blocks per shard). Each shard reads
the images and the model from the artifact root and writes its part of ``codes`` there; the
parts are then merged into one ``codes.parquet`` (the priors read that file), one part at a
time. The same blocks are encoded whatever the shard size, so the codes are identical.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from components.vq.build import code_shapes
from pipelines.core.fanout import fan_out
from pipelines.vq.stages.common import images_of, level_names, load_vqvae


BLOCK = 512   # images encoded together; a shard holds whole blocks
_CACHE: dict[tuple, tuple] = {}   # per worker process: (images table, model)


def _loaded(ingest, train_vq):
    key = (ingest.fingerprint, train_vq.fingerprint)
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = (ingest.df("images"), load_vqvae(train_vq))
    return _CACHE[key]


def codes_shard(shard, _shared) -> dict:
    """One shard: the codes of the images in the blocks ``shard.items`` ((lo, hi) rows each)."""
    df, model = _loaded(shard.input("ingest"), shard.input("train_vq"))
    df = df.iloc[shard.items[0][0]:shard.items[-1][1]]
    x, y, ids = images_of(df, shard.cfg.data.image_size)
    per_level = [[] for _ in range(model.levels)]
    with torch.no_grad():
        for s in range(0, len(x), BLOCK):
            for l, c in enumerate(model.codes(x[s:s + BLOCK])):
                per_level[l].append(c.reshape(len(c), -1).to(torch.int16).numpy())
    out = pd.DataFrame({"image_id": ids, "label": y.numpy(), "split": df.split.to_numpy()})
    for name, chunks in zip(level_names(model.levels), per_level):
        out[name] = list(np.concatenate(chunks))
    shard.out.write_table("codes", out)
    return {"rows": len(out)}


def run_extract_codes(ctx) -> None:
    cfg = ctx.cfg
    n = ctx.input("ingest").manifest["tables"]["images"]["rows"]
    model = load_vqvae(ctx.input("train_vq"))
    L = model.levels
    blocks = [(s, min(s + BLOCK, n)) for s in range(0, n, BLOCK)]
    res = fan_out(ctx, "extract_codes", codes_shard, len(blocks), cfg.extract_codes.fanout, items=blocks)
    ctx.out.merge_parts("codes")
    rows = sum(s["rows"] for s in res.stats)
    shapes = code_shapes(cfg.data.image_size, L, model.cfg.downsample)
    ctx.out.write_json("levels", {"names": level_names(L), "shapes": shapes,
                                  "num_codes": model.cfg.num_codes})
    ctx.out.stats(rows=rows, **{f"{n}_shape": f"{h}x{w}" for n, (h, w) in zip(level_names(L), shapes)})
