"""Frame samplers: every sampler returns explicit integer frame indices (``np.int64``).

Indices are relative to the usable range ``[0, num_frames)`` of a clip; add the index's
``frame_start`` before decoding. Videos shorter than a sampler's span are handled by clamping
to the last frame (the references loop or pad; clamping keeps time monotone).

* :func:`dense_indices` — ``T`` frames at stride ``tau`` (C3D, R3D, R(2+1)D, I3D, S3D, X3D);
  random start in training, centred at test. ``tau`` may be fractional: frame ``k`` is
  ``start + round(k * tau)``.
* :func:`fps_step` — time-based sampling: the stride, in source frames, of ``tau`` frames of a
  ``target_fps`` time grid (``tau * source_fps / target_fps``), so clips cover the same
  duration whatever each video's frame rate (SlowFast samples at 30 fps this way).
* :func:`multi_clip_starts` / :func:`dense_views` — ``n`` evenly spaced clips for multi-view
  testing (the "temporal clips" of "clips x crops").
* :func:`tsn_indices` — TSN: ``K`` equal segments; one snippet of ``new_length`` consecutive
  frames per segment, at a random offset in training and the centre at test.
* :func:`slowfast_indices` — SlowFast: the fast pathway takes ``alpha * T`` frames at stride
  ``tau / alpha``, the slow pathway every ``alpha``-th of them (``T`` frames at stride ``tau``).
* :func:`spatial_crops` — top-left corners of 1 (centre), 3 (along the long side) or 5
  (4 corners + centre) test crops.
"""
from __future__ import annotations

import numpy as np

from components.errors import ConfigError

__all__ = ["fps_step", "dense_indices", "multi_clip_starts", "dense_views", "tsn_indices", "slowfast_indices",
           "spatial_crops"]


def _check(num_frames: int, **positive: int) -> None:
    if num_frames <= 0:
        raise ConfigError(f"num_frames must be > 0, got {num_frames}")
    for k, v in positive.items():
        if v <= 0:
            raise ConfigError(f"{k} must be > 0, got {v}")


def _rng(rng: np.random.Generator | int | None) -> np.random.Generator:
    return rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)


def fps_step(tau: float, source_fps: float, target_fps: float) -> float:
    """Source frames between two sampled frames ``tau`` frames apart on a ``target_fps`` grid."""
    if source_fps <= 0 or target_fps <= 0:
        raise ConfigError(f"fps must be > 0, got source_fps={source_fps}, target_fps={target_fps}")
    if tau <= 0:
        raise ConfigError(f"tau must be > 0, got {tau}")
    return float(tau) * float(source_fps) / float(target_fps)


def _offsets(T: int, tau: float) -> np.ndarray:
    """``round(k * tau)`` for ``k < T`` (exact integers for an integer ``tau``)."""
    return np.floor(np.arange(T, dtype=np.float64) * float(tau) + 0.5).astype(np.int64)


def _span(T: int, tau: float) -> int:
    return int(_offsets(T, tau)[-1]) + 1


def dense_indices(num_frames: int, T: int, tau: float = 1, *, train: bool = False,
                  rng: np.random.Generator | int | None = None, start: int | None = None) -> np.ndarray:
    """``T`` indices ``start + round(tau * [0..T-1])`` clamped to ``num_frames - 1``.

    ``start`` defaults to a uniform random start in training and the centred start at test.
    """
    _check(num_frames, T=T, tau=tau)
    slack = max(0, num_frames - _span(T, tau))
    if start is None:
        start = int(_rng(rng).integers(0, slack + 1)) if train else slack // 2
    return np.minimum(start + _offsets(T, tau), num_frames - 1)


def multi_clip_starts(num_frames: int, span: int, num_clips: int) -> np.ndarray:
    """Start frames of ``num_clips`` clips of length ``span`` spread uniformly over the video.

    The clip centres sit at ``(i + 0.5) / num_clips`` of the video (clamped to the valid starts),
    as in the SlowFast / X3D multi-view protocol.
    """
    _check(num_frames, span=span, num_clips=num_clips)
    slack = max(0, num_frames - span)
    if num_clips == 1:
        return np.array([slack // 2], dtype=np.int64)
    centres = (np.arange(num_clips) + 0.5) * num_frames / num_clips
    return np.clip(np.floor(centres - span / 2), 0, slack).astype(np.int64)


def dense_views(num_frames: int, T: int, tau: float, num_clips: int) -> np.ndarray:
    """``[num_clips, T]`` indices of evenly spaced dense clips for multi-view testing."""
    return np.stack([dense_indices(num_frames, T, tau, start=int(s))
                     for s in multi_clip_starts(num_frames, _span(T, tau), num_clips)])


def tsn_indices(num_frames: int, num_segments: int, *, new_length: int = 1, train: bool = False,
                rng: np.random.Generator | int | None = None) -> np.ndarray:
    """``[K, new_length]`` TSN snippet indices.

    The usable starts ``[0, num_frames - new_length]`` are split into ``K`` equal segments; in
    training each snippet starts at a uniform random offset inside its segment, at test at the
    segment's centre. ``new_length`` > 1 gives consecutive frames (flow stacks, RGB difference).
    """
    _check(num_frames, num_segments=num_segments, new_length=new_length)
    starts_avail = max(1, num_frames - new_length + 1)
    edges = np.linspace(0, starts_avail, num_segments + 1)
    lo, hi = edges[:-1], edges[1:]
    if train:
        offs = lo + _rng(rng).random(num_segments) * (hi - lo)
    else:
        offs = (lo + hi) / 2
    starts = np.minimum(np.floor(offs).astype(np.int64), starts_avail - 1)
    idx = starts[:, None] + np.arange(new_length, dtype=np.int64)[None, :]
    return np.minimum(idx, num_frames - 1)


def slowfast_indices(num_frames: int, T_slow: int, tau_slow: int, alpha: int, *, train: bool = False,
                     rng: np.random.Generator | int | None = None,
                     start: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(slow, fast)`` indices of one SlowFast clip.

    Fast: ``alpha * T_slow`` frames at stride ``tau_slow // alpha``; slow: ``fast[::alpha]``, i.e.
    ``T_slow`` frames at stride ``tau_slow``. Both cover the same time span.
    """
    _check(num_frames, T_slow=T_slow, tau_slow=tau_slow, alpha=alpha)
    if tau_slow % alpha:
        raise ConfigError(f"tau_slow ({tau_slow}) must be a multiple of alpha ({alpha})")
    fast = dense_indices(num_frames, T_slow * alpha, tau_slow // alpha, train=train, rng=rng, start=start)
    return fast[::alpha].copy(), fast


def spatial_crops(height: int, width: int, crop: int, num_crops: int = 1) -> list[tuple[int, int]]:
    """``(y, x)`` top-left corners of ``num_crops`` square ``crop`` windows.

    1: centre. 3: start, centre and end along the longer side (SlowFast's 3-crop test).
    5: four corners and the centre (the TSN / two-stream 5-crop, without flips).
    """
    if crop > min(height, width):
        raise ConfigError(f"crop {crop} is larger than the frame {height}x{width}")
    cy, cx = (height - crop) // 2, (width - crop) // 2
    if num_crops == 1:
        return [(cy, cx)]
    if num_crops == 3:
        if height >= width:
            return [(0, cx), (cy, cx), (height - crop, cx)]
        return [(cy, 0), (cy, cx), (cy, width - crop)]
    if num_crops == 5:
        return [(0, 0), (0, width - crop), (height - crop, 0), (height - crop, width - crop), (cy, cx)]
    raise ConfigError(f"num_crops must be 1, 3 or 5, got {num_crops}")
