"""The frame decoder choice (``decode.backend``): PyAV everywhere, torchcodec where it loads.

The resolution tests run everywhere (torchcodec's status is patched). The equivalence tests
need a torchcodec that loads, which the project venv (CPU torch 2.13) does not have; they run
in a side venv with torch 2.14.1 (CUDA build), torchcodec and Debian's FFmpeg libraries
(libavcodec59 ...), as in docs/video.md:
    PYTHONPATH=. /tmp/tcvenv/bin/python -m pytest --noconftest -p no:cacheprovider \
        tests/video/test_decode_backends.py
"""
from __future__ import annotations

import os

import numpy as np
import pytest

from components.errors import ConfigError, InputError
from components.video import decode
from components.video.decode import read_all_frames, read_frames, resolve_backend, torchcodec_status, write_video

TC_OK, TC_INFO = torchcodec_status()
needs_tc = pytest.mark.skipif(not TC_OK, reason=f"torchcodec does not load here ({TC_INFO})")


@pytest.fixture
def tc_status(monkeypatch):
    def set_status(ok: bool, info: str):
        monkeypatch.setattr(decode, "_TC_STATUS", (ok, info))
    return set_status


def test_auto_picks_torchcodec_only_where_it_loads(tc_status):
    tc_status(False, "OSError: libtorch_cuda.so: cannot open shared object file")
    assert resolve_backend("auto") == "pyav"
    assert resolve_backend("pyav") == "pyav"
    with pytest.raises(ConfigError, match="torchcodec does not load here .*libtorch_cuda") as exc:
        resolve_backend("torchcodec")
    assert exc.value.param == "backend" and "pyav" in exc.value.fix
    tc_status(True, "0.17.0")
    assert resolve_backend("auto") == "torchcodec"
    assert resolve_backend("pyav") == "pyav"          # an explicit choice is kept
    with pytest.raises(ConfigError, match="unknown decode backend 'ffmpeg'"):
        resolve_backend("ffmpeg")


def test_config_resolves_the_backend_when_it_loads(tc_status):
    """The validated config names the decoder that will run (so fingerprints and records do),
    and a forced torchcodec that does not load fails at load time naming decode.backend."""
    from pipelines.core.config import load_config
    from pipelines.video.dag import PIPELINE

    cfg_path = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "video", "motion.yaml")
    tc_status(False, "ModuleNotFoundError: No module named 'torchcodec'")
    assert load_config(PIPELINE.config_cls, cfg_path, []).decode.backend == "pyav"
    with pytest.raises(ConfigError, match=r"decode\.backend: .*torchcodec does not load here"):
        load_config(PIPELINE.config_cls, cfg_path, ["decode.backend=torchcodec"])
    tc_status(True, "0.17.0")
    assert load_config(PIPELINE.config_cls, cfg_path, []).decode.backend == "torchcodec"


def test_readers_refuse_an_unknown_backend(carphone_path):
    with pytest.raises(ConfigError, match="unknown decode backend 'gst'"):
        read_frames(carphone_path, [0], backend="gst")
    with pytest.raises(ConfigError, match="unknown decode backend 'gst'"):
        read_all_frames(carphone_path, backend="gst")


def test_dataset_refuses_an_unknown_backend():
    import pandas as pd

    from components.video.clips import ClipDataset

    with pytest.raises(ConfigError, match="unknown decode backend 'auto'"):
        ClipDataset(pd.DataFrame([]), [], train=True, backend="auto")


# -- where torchcodec loads ----------------------------------------------------------------
@needs_tc
def test_torchcodec_frames_equal_pyav_at_source_size(bikes_path, carphone_path):
    for path in (bikes_path, carphone_path):
        idx = np.array([40, 0, 7, 7, 3, 60])          # any order, repeats
        assert np.array_equal(read_frames(path, idx, backend="torchcodec"), read_frames(path, idx))
        a = read_all_frames(path, max_frames=30, backend="torchcodec")
        assert a.shape[0] == 30 and np.array_equal(a, read_all_frames(path, max_frames=30))


@needs_tc
def test_torchcodec_resizes_like_pyav(bikes_path):
    idx = [0, 50, 100]
    a = read_frames(bikes_path, idx, size=(68, 160), backend="torchcodec")
    b = read_frames(bikes_path, idx, size=(68, 160))
    assert a.shape == b.shape == (3, 68, 160, 3) and a.dtype == np.uint8
    diff = np.abs(a.astype(int) - b.astype(int))
    assert diff.max() <= 1 and diff.mean() < 0.05   # both resize the RGB frame bilinearly (0.7 % off by one)
    assert np.array_equal(read_all_frames(bikes_path, size=(68, 160), max_frames=101, backend="torchcodec")[idx], a)


@needs_tc
def test_torchcodec_errors_name_the_file(tmp_path):
    frames = np.random.default_rng(1).integers(0, 255, (30, 32, 32, 3), dtype=np.uint8)
    good = write_video(str(tmp_path / "good.mp4"), frames)
    with pytest.raises(InputError, match=r"truncated: frames \[30\] not found"):
        read_frames(good, [3, 30], backend="torchcodec")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(InputError, match="unreadable container") as exc:
        read_frames(str(junk), [0], backend="torchcodec")
    assert str(junk) in str(exc.value)
    with pytest.raises(InputError, match="does not exist"):
        read_all_frames(str(tmp_path / "nope.mp4"), backend="torchcodec")


@needs_tc
def test_clip_dataset_with_torchcodec_streams_and_caches_alike(motion_root):
    """The loader's two paths (streamed clips, in-memory cache) give the same items with
    torchcodec, and the same items as with PyAV."""
    from components.video.clips import ClipDataset, plan_inputs
    from components.video.index import build_index, scan_folder
    from components.video.models.registry import InputSpec

    index, _ = build_index(scan_folder(motion_root))
    plans = plan_inputs({"rgb": InputSpec(3, 4, 112)}, frames=4)

    def item(backend, cache_mb):
        ds = ClipDataset(index, plans, train=False, size=24, resize=28, cache_mb=cache_mb, backend=backend)
        return ds[2][0]["rgb"].numpy()

    streamed, cached = item("torchcodec", 0), item("torchcodec", 512)
    assert np.array_equal(streamed, cached)
    assert np.abs(streamed - item("pyav", 0)).max() < 0.02   # normalised units: 1 level is 0.017 or less
