"""Helpers shared by the video stages: index paths, model inputs, datasets, saved models."""
from __future__ import annotations

import os

import pandas as pd
import torch

from components.errors import ConfigError
from components.video import models
from components.video.clips import ClipDataset, plan_inputs
from pipelines.core.train import load_state


def resolve_paths(index: pd.DataFrame, ingest_artifact) -> pd.DataFrame:
    """Absolute local paths: rendered datasets store paths relative to the ingest artifact."""
    out = index.copy()
    out["path"] = [p if os.path.isabs(p) else ingest_artifact.path(p) for p in out["path"]]
    return out


def load_index(ctx) -> tuple[pd.DataFrame, list[str]]:
    art = ctx.input("ingest")
    return resolve_paths(art.df("index"), art), list(art.json("classes"))


def flow_files(ctx) -> dict[str, str]:
    """video_id -> local .npy path of the cached flow ({} when the cache is disabled)."""
    art = ctx.input("flow")
    fi = art.df("flow_index")
    return {v: art.path(f) for v, f in zip(fi["video_id"], fi["file"])}


def sampling_of(cfg, spec) -> str:
    if cfg.clip.sampling != "auto":
        return cfg.clip.sampling
    return "tsn" if spec.family == "tsn" else "dense"


def make_dataset(cfg, index: pd.DataFrame, *, train: bool, flows: dict[str, str],
                 temporal_views: int = 1, spatial_views: int = 1) -> ClipDataset:
    """The ClipDataset feeding ``cfg.model.name`` at the run's clip budget."""
    spec = models.spec(cfg.model.name)
    segments = snippet = None
    if spec.family == "tsn":   # K and the snippet length n are properties of the built model
        probe = build_model(cfg, 2)
        segments, snippet = probe.segments, probe.n
    plans = plan_inputs(spec.inputs, cfg.clip.frames, segments=segments, snippet=snippet)
    needs_flow = any(p.modality == "flow" for p in plans)
    if needs_flow and not flows and cfg.flow.enabled:
        raise ConfigError("model needs flow but the flow cache is empty")
    return ClipDataset(index, plans, train=train, stride=cfg.clip.stride, size=cfg.clip.size,
                       resize=cfg.decode.resize, sampling=sampling_of(cfg, spec),
                       temporal_views=temporal_views, spatial_views=spatial_views,
                       flow_files=flows, flow_method=cfg.flow.method, flow_bound=cfg.flow.bound,
                       cache_frames=cfg.decode.cache_frames, seed=cfg.seed)


def build_model(cfg, num_classes: int) -> torch.nn.Module:
    return models.build(cfg.model.name, num_classes, **cfg.model.kwargs)


def load_trained_model(ctx, num_classes: int) -> torch.nn.Module:
    model = build_model(ctx.cfg, num_classes)
    state = load_state(ctx.input("train").path("model.pt"))
    model.load_state_dict(state)
    model.eval()
    return model


def split_rows(index: pd.DataFrame, split: str) -> pd.DataFrame:
    rows = index[index["split"] == split]
    if rows.empty:
        raise ConfigError(f"split '{split}' has no clips (splits: {sorted(index['split'].unique())})")
    return rows
