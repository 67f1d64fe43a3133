"""embed: clip embeddings (model.features) of every clip -> video_id, embedding Parquet."""
from __future__ import annotations

import pyarrow as pa
import torch

from components.video.train_loop import embed
from pipelines.video.stages.common import flow_files, load_index, load_trained_model, make_dataset


def run_embed(ctx) -> None:
    cfg = ctx.cfg
    index, classes = load_index(ctx)
    if cfg.embed.splits:
        index = index[index["split"].isin(cfg.embed.splits)]
    model = load_trained_model(ctx, len(classes))
    ds = make_dataset(cfg, index, train=False, flows=flow_files(ctx), temporal_views=cfg.embed.temporal_views)
    emb = embed(model, torch.utils.data.DataLoader(ds, batch_size=cfg.embed.batch_size), bf16=cfg.train.bf16)
    dim = emb.shape[1]
    table = pa.table({
        "video_id": pa.array(index["video_id"].tolist(), pa.string()),
        "label": pa.array(index["label"].tolist(), pa.string()),
        "split": pa.array(index["split"].tolist(), pa.string()),
        "embedding": pa.FixedSizeListArray.from_arrays(pa.array(emb.reshape(-1), pa.float32()), dim),
    })
    ctx.out.write_table("embeddings", table)
    ctx.out.stats(clips=len(index), dim=dim, model=cfg.model.name)
    ctx.log("embedded %d clips, dim %d", len(index), dim)
