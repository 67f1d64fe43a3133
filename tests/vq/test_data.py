"""Image ingest: idx(.gz), npz, class folders, the Parquet frame round trip, clear errors."""
from __future__ import annotations

import gzip

import numpy as np
import pytest

from components.errors import InputError
from components.vq.data import (from_frame, load_images, read_idx, to_frame, to_model_input)


def _idx_bytes(arr: np.ndarray) -> bytes:
    head = bytes([0, 0, 0x08, arr.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return head + arr.astype(np.uint8).tobytes()


def _write_idx_pair(root, prefix, x, y, gz=True):
    for kind, arr in (("images-idx3", x), ("labels-idx1", y)):
        p = root / f"{prefix}-{kind}-ubyte{'.gz' if gz else ''}"
        data = _idx_bytes(arr)
        p.write_bytes(gzip.compress(data) if gz else data)


def test_idx_dir_reads_train_and_test_splits(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (7, 6, 5), dtype=np.uint8)
    y = np.arange(7) % 3
    _write_idx_pair(tmp_path, "train", x, y, gz=True)
    _write_idx_pair(tmp_path, "t10k", x[:2], y[:2], gz=False)
    ds = load_images(tmp_path)
    assert ds.images.shape == (9, 6, 5, 1)
    assert sorted(set(ds.split)) == ["test", "train"]
    tr = ds.split == "train"
    assert np.array_equal(ds.images[tr][..., 0], x) and np.array_equal(ds.labels[tr], y)


def test_truncated_idx_files_give_clear_errors(tmp_path):
    x = np.zeros((4, 3, 3), np.uint8)
    raw = _idx_bytes(x)
    p = tmp_path / "cut-images-idx3-ubyte"
    p.write_bytes(raw[:-5])
    with pytest.raises(InputError, match=r"cut-images-idx3-ubyte: truncated data: header says \[4, 3, 3\] \(36 bytes\) but 31"):
        read_idx(p)
    pg = tmp_path / "cut-images-idx3-ubyte.gz"
    pg.write_bytes(gzip.compress(raw)[:-12])
    with pytest.raises(InputError, match="truncated or corrupt"):
        read_idx(pg)
    bad = tmp_path / "bad-images-idx3-ubyte"
    bad.write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(InputError, match="bad magic"):
        read_idx(bad)


def test_npz_and_class_folders(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(1)
    x = rng.random((5, 4, 4)).astype(np.float32)          # floats in [0, 1] are rescaled
    np.savez(tmp_path / "d.npz", x=x, y=np.array([0, 1, 0, 1, 2]))
    ds = load_images(tmp_path / "d.npz")
    assert ds.images.dtype == np.uint8 and ds.images.shape == (5, 4, 4, 1)
    assert ds.labels.tolist() == [0, 1, 0, 1, 2] and ds.class_names == ["0", "1", "2"]
    np.savez(tmp_path / "nokey.npz", foo=x)
    with pytest.raises(InputError, match="no image array"):
        load_images(tmp_path / "nokey.npz")
    (tmp_path / "cut.npz").write_bytes((tmp_path / "d.npz").read_bytes()[:40])
    with pytest.raises(InputError, match="cut.npz"):
        load_images(tmp_path / "cut.npz")

    root = tmp_path / "folders"
    for c, val in (("boot", 10), ("shirt", 200)):
        (root / c).mkdir(parents=True)
        for k in range(2):
            Image.fromarray(np.full((6, 6), val + k, np.uint8)).save(root / c / f"{k}.png")
    fs = load_images(root)
    assert fs.class_names == ["boot", "shirt"] and fs.labels.tolist() == [0, 0, 1, 1]
    assert fs.images[3, 0, 0, 0] == 201


def test_frame_round_trip_and_model_input(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.integers(0, 256, (3, 28, 28, 1), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", images=x, labels=np.array([1, 2, 3]))
    df = to_frame(load_images(tmp_path / "d.npz"))
    back, labels, ids = from_frame(df)
    assert np.array_equal(back, x) and labels.tolist() == [1, 2, 3] and ids.tolist() == [0, 1, 2]
    t = to_model_input(back, 32)
    assert t.shape == (3, 1, 32, 32)
    assert t[:, :, :2].eq(-0.5).all() and t.max() <= 0.5
    assert np.allclose(t[0, 0, 2:30, 2:30].numpy(), x[0, ..., 0] / 255.0 - 0.5, atol=1e-6)
