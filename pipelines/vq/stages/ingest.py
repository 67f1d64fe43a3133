"""ingest: read images (idx / npz / class folders) into the Parquet table ``images``."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from components.errors import InputError
from components.vq.data import ImageSet, load_images, to_frame
from pipelines.core.hints import config_hints


def data_files(cfg) -> dict[str, str]:
    """Raw files whose content is part of the ingest fingerprint (``{path: config key}``); a
    missing ``data.path`` is returned as is, so fingerprinting reports it (never omitted)."""
    p = Path(cfg.data.path)
    if p.is_dir():
        return {str(f): "data.path" for f in sorted(p.rglob("*")) if f.is_file()}
    return {str(p): "data.path"}


def _subset(idx: np.ndarray, n: int | None, rng: np.random.Generator) -> np.ndarray:
    if n is None or n >= len(idx):
        return idx
    return np.sort(rng.choice(idx, n, replace=False))


def run_ingest(ctx) -> None:
    cfg = ctx.cfg.data
    with config_hints(path="set data.path to an idx folder, an .npz file or class folders "
                           "(Fashion-MNIST: apt-get install dataset-fashion-mnist)",
                      fmt="set data.format to auto, idx, npz or folder"):
        ds = load_images(cfg.path, cfg.format)
    if len(ds) == 0:
        raise InputError("no images", path=cfg.path)
    rng = np.random.default_rng(ctx.seed)
    split = ds.split.copy()
    if not (split == "test").any():
        test = rng.random(len(split)) < cfg.test_fraction
        split[test] = "test"
    tr = _subset(np.flatnonzero(split == "train"), cfg.max_train, rng)
    te = _subset(np.flatnonzero(split == "test"), cfg.max_test, rng)
    keep = np.concatenate([tr, te])
    sub = ImageSet(ds.images[keep], ds.labels[keep], split[keep], ds.class_names)
    h, w = sub.images.shape[1:3]
    if max(h, w) > cfg.image_size:
        ctx.log("images are %dx%d, larger than data.image_size=%d: they will be resized", h, w, cfg.image_size)
    ctx.out.write_table("images", to_frame(sub))
    ctx.out.write_json("classes", {"names": sub.class_names, "n_classes": len(sub.class_names)})
    ctx.out.stats(train=len(tr), test=len(te), height=int(h), width=int(w),
                  channels=int(sub.images.shape[3]), classes=len(sub.class_names))
    ctx.log("%d train + %d test images of %dx%dx%d", len(tr), len(te), h, w, sub.images.shape[3])
