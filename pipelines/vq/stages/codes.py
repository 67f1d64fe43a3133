"""extract_codes: encode every image; Parquet ``codes`` (image id, label, split, top, bottom)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from components.vq.build import code_shapes
from pipelines.vq.stages.common import images_of, level_names, load_vqvae


def run_extract_codes(ctx) -> None:
    cfg = ctx.cfg
    df = ctx.input("ingest").df("images")
    model = load_vqvae(ctx.input("train_vq"))
    x, y, ids = images_of(df, cfg.data.image_size)
    L = model.levels
    per_level = [[] for _ in range(L)]
    with torch.no_grad():
        for s in range(0, len(x), 512):
            for l, c in enumerate(model.codes(x[s:s + 512])):
                per_level[l].append(c.reshape(len(c), -1).to(torch.int16).numpy())
    out = pd.DataFrame({"image_id": ids, "label": y.numpy(), "split": df.split.to_numpy()})
    for name, chunks in zip(level_names(L), per_level):
        out[name] = list(np.concatenate(chunks))
    ctx.out.write_table("codes", out)
    shapes = code_shapes(cfg.data.image_size, L)
    ctx.out.write_json("levels", {"names": level_names(L), "shapes": shapes,
                                  "num_codes": model.cfg.num_codes})
    ctx.out.stats(rows=len(out), **{f"{n}_shape": f"{h}x{w}" for n, (h, w) in zip(level_names(L), shapes)})
