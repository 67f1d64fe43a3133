"""Seeded procedural motion dataset: the class is defined only by motion.

Every clip is a random texture (random colour mixing of smooth noise plus random shapes) seen
through a moving virtual camera. The class fixes *how* the view moves:

* translation in 4 directions x 2 speeds (``right_slow`` ... ``down_fast``),
* rotation sense (``rotate_cw`` / ``rotate_ccw``),
* zoom (``approach`` / ``recede``).

Appearance and the nuisance parameters (initial rotation, scale, position, exact speed) are
drawn independently of the class, and the per-frame scale distribution is the same for
``approach`` and ``recede`` (one is the other played backwards), so a single frame carries no
information about the class: a single-frame model stays at chance and a temporal model has
to use motion.

:func:`render_clip` returns ``uint8 [T, S, S, 3]`` frames; :func:`render_dataset` writes
``root/<split>/<class>/<id>.mp4`` (H.264 via PyAV) — a folder-per-class layout that
:func:`components.video.index.scan_folder` ingests, so decoding is exercised end to end.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np

from components.errors import ConfigError
from components.video.decode import write_video

__all__ = ["MOTION_CLASSES", "MotionParams", "render_clip", "render_dataset"]

_DIRECTIONS = {"right": (1.0, 0.0), "left": (-1.0, 0.0), "up": (0.0, -1.0), "down": (0.0, 1.0)}
MOTION_CLASSES: tuple[str, ...] = tuple(
    [f"{d}_{s}" for s in ("slow", "fast") for d in _DIRECTIONS] + ["rotate_cw", "rotate_ccw", "approach", "recede"])


@dataclass(frozen=True)
class MotionParams:
    """Speeds relative to the frame size ``S`` (per frame)."""

    slow: tuple[float, float] = (0.015, 0.025)   # fraction of S per frame
    fast: tuple[float, float] = (0.045, 0.065)
    rotation_deg: tuple[float, float] = (3.0, 6.0)
    zoom_rate: tuple[float, float] = (1.025, 1.04)
    noise_std: float = 3.0


def _texture(rng: np.random.Generator, side: int) -> np.ndarray:
    fields = []
    for _ in range(3):
        res = int(rng.integers(10, 22))
        small = rng.random((res, res)).astype(np.float32)
        fields.append(cv2.resize(small, (side, side), interpolation=cv2.INTER_CUBIC))
    f = np.stack(fields, -1) - 0.5                                # [side, side, 3]
    mix = rng.normal(0, 1.0, (3, 3)).astype(np.float32)
    base = rng.uniform(0.25, 0.75, 3).astype(np.float32)
    img = np.clip(base + f @ mix.T, 0, 1)
    img = (img * 255).astype(np.uint8)
    for _ in range(int(rng.integers(40, 80))):                    # crisp shapes give trackable edges
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = (int(v) for v in rng.integers(0, side, 2))
        r = int(rng.integers(side // 60 + 1, side // 16 + 2))
        if rng.random() < 0.5:
            cv2.circle(img, (x, y), r, color, -1, lineType=cv2.LINE_AA)
        else:
            cv2.rectangle(img, (x - r, y - r // 2), (x + r, y + r // 2), color, -1)
    return img


def render_clip(label: str, *, size: int = 64, num_frames: int = 24, seed: int = 0,
                params: MotionParams = MotionParams()) -> np.ndarray:
    """Render one clip of class ``label`` as ``uint8 [num_frames, size, size, 3]``."""
    if label not in MOTION_CLASSES:
        raise ConfigError(f"unknown motion class {label!r}; choose from {MOTION_CLASSES}")
    rng = np.random.default_rng(seed)
    side = 3 * size
    tex = _texture(rng, side)
    T = num_frames
    theta0 = rng.uniform(0, 360)
    zoom_r = rng.uniform(*params.zoom_rate)
    s_lo = float(np.exp(rng.uniform(np.log(0.8), np.log(1.0))))
    s_hi = s_lo * zoom_r ** (T - 1)
    t = np.arange(T, dtype=np.float64)
    theta = np.full(T, theta0)
    scale = np.full(T, float(np.exp(rng.uniform(np.log(s_lo), np.log(s_hi)))))
    shift = np.zeros((T, 2))                                    # content displacement in output px
    kind = label.split("_")[0]
    if kind in _DIRECTIONS:
        speed = rng.uniform(*(params.slow if label.endswith("slow") else params.fast)) * size
        shift = np.outer(t, _DIRECTIONS[kind]) * speed
        shift -= shift[T // 2]                                  # centre the path: same mean position
    elif kind == "rotate":
        omega = rng.uniform(*params.rotation_deg) * (-1.0 if label == "rotate_cw" else 1.0)
        theta = theta0 + omega * t                              # OpenCV: positive angle = counter-clockwise
    elif label == "approach":
        scale = s_lo * zoom_r ** t
    else:  # recede
        scale = s_hi / zoom_r ** t
    jitter = rng.uniform(-0.25, 0.25, 2) * size
    frames = np.empty((T, size, size, 3), np.uint8)
    oc = np.array([size / 2, size / 2])
    for i in range(T):
        # output = S*R*(canvas - c) + oc + shift ; with c the canvas centre (+ jitter)
        m = cv2.getRotationMatrix2D((side / 2 + jitter[0], side / 2 + jitter[1]), theta[i], scale[i])
        m[:, 2] += oc + shift[i] - np.array([side / 2 + jitter[0], side / 2 + jitter[1]])
        frame = cv2.warpAffine(tex, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        if params.noise_std > 0:
            frame = np.clip(frame + rng.normal(0, params.noise_std, frame.shape), 0, 255).astype(np.uint8)
        frames[i] = frame
    return frames


def render_dataset(root: str, *, clips_per_class: dict[str, int], size: int = 64, num_frames: int = 24,
                   fps: int = 12, seed: int = 0, classes: tuple[str, ...] = MOTION_CLASSES,
                   params: MotionParams = MotionParams()) -> list[str]:
    """Write ``clips_per_class[split]`` clips of each class to ``root/<split>/<class>/<id>.mp4``.

    Clip seeds derive from ``(seed, split, class, i)``, so the dataset is reproducible and the
    splits never share a clip. Returns the written paths.
    """
    paths = []
    for s_i, (split, n) in enumerate(sorted(clips_per_class.items())):
        for c_i, cls in enumerate(classes):
            for i in range(n):
                clip_seed = int(np.random.SeedSequence([seed, s_i, c_i, i]).generate_state(1)[0])
                frames = render_clip(cls, size=size, num_frames=num_frames, seed=clip_seed, params=params)
                path = os.path.join(root, split, cls, f"{cls}_{split}_{i:04d}.mp4")
                paths.append(write_video(path, frames, fps=fps))
    return paths
