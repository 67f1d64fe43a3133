"""Helpers shared by the video stages: index paths, model inputs, datasets, saved models."""
from __future__ import annotations

import os

import pandas as pd
import torch

from components.errors import ConfigError
from components.video import models
from components.video.clips import ClipDataset, plan_inputs
from components.video.transforms import normalization_for
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


def normalization_of(cfg, spec) -> str:
    """``clip.normalize``, or the statistics of the model family's pre-training (auto)."""
    if cfg.clip.normalize != "auto":
        return cfg.clip.normalize
    return normalization_for(spec.name, spec.family)


def make_dataset(cfg, index: pd.DataFrame, *, train: bool, flows: dict[str, str],
                 temporal_views: int = 1, spatial_views: int = 1, tsn_snippets: int | None = None) -> ClipDataset:
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
    sampling = sampling_of(cfg, spec)
    return ClipDataset(index, plans, train=train, stride=cfg.clip.stride, size=cfg.clip.size,
                       resize=cfg.decode.resize, sampling=sampling,
                       temporal_views=temporal_views, spatial_views=spatial_views,
                       flow_files=flows, flow_method=cfg.flow.method, flow_bound=cfg.flow.bound,
                       cache_mb=cfg.decode.cache_mb, seed=cfg.seed, fps=cfg.clip.fps,
                       scale=cfg.clip.scale, hflip=cfg.clip.hflip, normalize=normalization_of(cfg, spec),
                       tsn_snippets=tsn_snippets if sampling == "tsn" else None, backend=cfg.decode.backend)


def build_model(cfg, num_classes: int, weights: str | None = None) -> torch.nn.Module:
    """``cfg.model`` with ``num_classes`` outputs; ``weights``: a file to start from (train stage).
    Models with unsupervised losses on the frames (hidden two-stream) are told the clips'
    normalisation (``input_norm``, from ``clip.normalize``) unless ``model.kwargs`` sets it."""
    kwargs = dict(cfg.model.kwargs)
    spec = models.spec(cfg.model.name)
    if spec.aux_loss:
        kwargs.setdefault("input_norm", normalization_of(cfg, spec))
    return models.build(cfg.model.name, num_classes, weights=weights, **kwargs)


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


def eval_split(cfg, index: pd.DataFrame) -> str:
    """The split ``evaluate`` scores: ``evaluate.split``, or (None) ``test`` when the index has
    one (UCF101 / HMDB51 split files, a folder with train/val/test) and else ``val``."""
    if cfg.evaluate.split is not None:
        return cfg.evaluate.split
    splits = set(index["split"].unique())
    if "test" in splits:
        return "test"
    if "val" in splits:
        return "val"
    raise ConfigError(f"the index has neither a test nor a val split (splits: {sorted(splits)}); "
                      "set evaluate.split")


def monitor_split(cfg, index: pd.DataFrame) -> str | None:
    """The split the training loop scores every epoch: ``val`` when the index has one (never the
    test split, so nothing is chosen on it), else None (no per-epoch validation)."""
    if cfg.evaluate.split is not None and cfg.evaluate.split != "test":
        return cfg.evaluate.split
    return "val" if (index["split"] == "val").any() else None
