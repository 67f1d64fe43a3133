"""Image data sources for the VQ pipeline: idx-ubyte(.gz), npz, one folder per class.

All readers return an `ImageSet` (uint8 images N x H x W x C, int64 labels, a split name per
image, class names). `to_frame` / `from_frame` convert it to and from the flat table stored as
Parquet (one row per image, pixels as bytes). `to_model_input` turns uint8 images into the
float tensors the models use: channels first, scaled to [-0.5, 0.5], padded to a square size
(28 x 28 Fashion-MNIST -> 32 x 32, so the 1/4 and 1/8 code maps are 8 x 8 and 4 x 4).
"""
from __future__ import annotations

import gzip
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from components.errors import InputError

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
_NPZ_IMAGES = ("images", "x", "x_train", "X", "data")
_NPZ_LABELS = ("labels", "y", "y_train", "Y", "targets")


@dataclass
class ImageSet:
    images: np.ndarray                   # (N, H, W, C) uint8
    labels: np.ndarray                   # (N,) int64, -1 = unlabelled
    split: np.ndarray                    # (N,) str ("train" / "test")
    class_names: list = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (EOFError, OSError, zlib.error) as e:
        raise InputError(f"cannot decompress ({e}); the file is truncated or corrupt",
                         path=str(path), fix="download / copy the file again") from e


def read_idx(path) -> np.ndarray:
    """Read an idx-ubyte file (MNIST format), optionally gzip-compressed."""
    path = Path(path)
    buf = _read_bytes(path)
    if len(buf) < 4 or buf[0] != 0 or buf[1] != 0 or buf[2] not in _IDX_DTYPES:
        raise InputError("not an idx file (bad magic number)", path=str(path),
                         fix="pass an idx-ubyte file such as train-images-idx3-ubyte.gz")
    dtype, ndim = np.dtype(_IDX_DTYPES[buf[2]]), buf[3]
    header = 4 + 4 * ndim
    if len(buf) < header:
        raise InputError(f"truncated header: {len(buf)} bytes, expected {header}", path=str(path),
                         fix="the file is incomplete; copy it again")
    dims = [int.from_bytes(buf[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    need = int(np.prod(dims)) * dtype.itemsize
    have = len(buf) - header
    if have != need:
        raise InputError(f"{'truncated' if have < need else 'oversized'} data: header says "
                         f"{dims} ({need} bytes) but {have} bytes follow", path=str(path),
                         fix="the file is incomplete or corrupt; copy it again")
    return np.frombuffer(buf, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def _as_nhwc(images: np.ndarray, where: str) -> np.ndarray:
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise InputError(f"images must be N x H x W or N x H x W x C (C = 1 or 3), got {images.shape}",
                         path=where)
    if images.dtype != np.uint8:
        if np.issubdtype(images.dtype, np.floating) and images.max() <= 1.0 + 1e-6:
            images = np.round(images * 255.0)
        images = np.clip(images, 0, 255).astype(np.uint8)
    return images


def read_idx_dir(root) -> ImageSet:
    """All ``<split>-images-idx3-ubyte[.gz]`` / ``<split>-labels-idx1-ubyte[.gz]`` pairs in a folder."""
    root = Path(root)
    imgs, labs, splits = [], [], []
    files = sorted(p for p in root.iterdir() if re.search(r"-images-idx3-ubyte(\.gz)?$", p.name))
    if not files:
        raise InputError("no *-images-idx3-ubyte[.gz] files", path=str(root), param="path",
                         fix="pass a folder with idx files, an .npz file or class folders as path")
    for f in files:
        prefix = f.name.split("-images-")[0]
        lab_files = [p for p in root.iterdir() if re.fullmatch(re.escape(prefix) + r"-labels-idx1-ubyte(\.gz)?", p.name)]
        x = _as_nhwc(read_idx(f), str(f))
        y = read_idx(lab_files[0]).astype(np.int64) if lab_files else np.full(len(x), -1, np.int64)
        if len(y) != len(x):
            raise InputError(f"{len(x)} images but {len(y)} labels", path=str(lab_files[0]),
                             fix="use the label file that belongs to the image file")
        imgs.append(x), labs.append(y)
        splits.append(np.full(len(x), "test" if prefix in ("t10k", "test") else "train"))
    n_cls = int(max(int(y.max()) for y in labs)) + 1
    return ImageSet(np.concatenate(imgs), np.concatenate(labs), np.concatenate(splits),
                    [str(i) for i in range(n_cls)])


def read_npz(path) -> ImageSet:
    """An .npz with an image array (images/x/x_train) and optionally labels (labels/y/y_train)."""
    path = Path(path)
    try:
        z = np.load(path, allow_pickle=False)
        keys = list(z.keys())
    except Exception as e:  # zipfile.BadZipFile, ValueError, EOFError
        raise InputError(f"cannot read npz ({e})", path=str(path), fix="check the file is a complete .npz") from e
    ik = next((k for k in _NPZ_IMAGES if k in keys), None)
    if ik is None:
        raise InputError(f"no image array; keys are {keys}", path=str(path),
                         fix=f"store the images under one of {_NPZ_IMAGES}")
    try:
        x = _as_nhwc(np.asarray(z[ik]), f"{path}:{ik}")
        lk = next((k for k in _NPZ_LABELS if k in keys), None)
        y = np.asarray(z[lk]).astype(np.int64).reshape(-1) if lk else np.full(len(x), -1, np.int64)
    except InputError:
        raise
    except Exception as e:
        raise InputError(f"cannot read arrays ({e})", path=str(path), fix="the file is truncated or corrupt") from e
    if len(y) != len(x):
        raise InputError(f"{len(x)} images but {len(y)} labels", path=str(path), field=lk)
    n_cls = int(y.max()) + 1 if len(y) and y.max() >= 0 else 0
    return ImageSet(x, y, np.full(len(x), "train"), [str(i) for i in range(n_cls)])


def read_class_folders(root) -> ImageSet:
    """One sub-folder per class (sorted names = class ids) holding image files of one size."""
    from PIL import Image

    root = Path(root)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    if not classes:
        raise InputError("no class sub-folders", path=str(root), fix="put the images in <root>/<class>/*.png")
    imgs, labs, shape = [], [], None
    for ci, c in enumerate(classes):
        for f in sorted((root / c).iterdir()):
            if f.suffix.lower() not in _IMAGE_EXT:
                continue
            try:
                with Image.open(f) as im:
                    im = im.convert("L") if im.mode in ("L", "1", "P", "I;16", "I") else im.convert("RGB")
                    a = np.asarray(im, dtype=np.uint8)
            except Exception as e:
                raise InputError(f"cannot decode image ({e})", path=str(f), fix="remove or replace the file") from e
            a = a[..., None] if a.ndim == 2 else a
            if shape is None:
                shape = a.shape
            if a.shape != shape:
                raise InputError(f"image is {a.shape}, the first image was {shape}", path=str(f),
                                 fix="resize all images to one size")
            imgs.append(a)
            labs.append(ci)
    if not imgs:
        raise InputError("no image files in the class folders", path=str(root))
    return ImageSet(np.stack(imgs), np.asarray(labs, np.int64), np.full(len(imgs), "train"), classes)


def load_images(path, fmt: str = "auto") -> ImageSet:
    """Dispatch on ``fmt`` (auto | idx | npz | folder)."""
    path = Path(path)
    if not path.exists():
        raise InputError("does not exist", path=str(path), param="path",
                         fix="pass an existing path (Fashion-MNIST: apt-get install dataset-fashion-mnist)")
    if fmt == "auto":
        if path.is_file():
            fmt = "npz" if path.suffix == ".npz" else "idx"
        else:
            fmt = "idx" if any("-images-idx3-ubyte" in p.name for p in path.iterdir()) else "folder"
    if fmt == "npz":
        return read_npz(path)
    if fmt == "folder":
        return read_class_folders(path)
    if fmt == "idx":
        if path.is_dir():
            return read_idx_dir(path)
        x = _as_nhwc(read_idx(path), str(path))
        return ImageSet(x, np.full(len(x), -1, np.int64), np.full(len(x), "train"), [])
    raise InputError(f"unknown format '{fmt}'", param="fmt", fix="fmt must be auto, idx, npz or folder")


def to_frame(ds: ImageSet) -> pd.DataFrame:
    """One row per image: image_id, label, split, height, width, channels, pixels (bytes)."""
    n, h, w, c = ds.images.shape
    return pd.DataFrame({
        "image_id": np.arange(n, dtype=np.int64), "label": ds.labels.astype(np.int64),
        "split": ds.split.astype(str), "height": np.full(n, h, np.int32),
        "width": np.full(n, w, np.int32), "channels": np.full(n, c, np.int32),
        "pixels": [ds.images[i].tobytes() for i in range(n)]})


def from_frame(df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(images uint8 N x H x W x C, labels, image ids) from a `to_frame` table."""
    if df.empty:
        return np.zeros((0, 1, 1, 1), np.uint8), np.zeros(0, np.int64), np.zeros(0, np.int64)
    h, w, c = int(df.height.iloc[0]), int(df.width.iloc[0]), int(df.channels.iloc[0])
    x = np.frombuffer(b"".join(df.pixels.tolist()), np.uint8).reshape(len(df), h, w, c)
    return x, df.label.to_numpy(np.int64), df.image_id.to_numpy(np.int64)


def to_model_input(images: np.ndarray, size: int) -> torch.Tensor:
    """uint8 (N, H, W, C) -> float (N, C, size, size) in [-0.5, 0.5], centred zero padding."""
    x = torch.from_numpy(np.array(images, dtype=np.uint8)).permute(0, 3, 1, 2).float() / 255.0 - 0.5
    h, w = x.shape[-2:]
    if h > size or w > size:
        x = F.interpolate(x, size=(size, size), mode="area")
        h = w = size
    top, left = (size - h) // 2, (size - w) // 2
    return F.pad(x, (left, size - w - left, top, size - h - top), value=-0.5)


def from_model_output(x: torch.Tensor) -> np.ndarray:
    """float (N, C, H, W) in [-0.5, 0.5] -> uint8 (N, H, W, C)."""
    return ((x.clamp(-0.5, 0.5) + 0.5) * 255.0).round().byte().permute(0, 2, 3, 1).cpu().numpy()
