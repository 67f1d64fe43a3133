"""Optical flow and RGB difference, the motion inputs of two-stream and TSN models.

* :func:`compute_flow` — dense flow between consecutive frames with OpenCV: ``"tvl1"``
  (``cv2.optflow.DualTVL1OpticalFlow_create``, the estimator used by two-stream / TSN / I3D),
  ``"dis"`` (``cv2.DISOpticalFlow_create``, much faster) or ``"farneback"``.
* :func:`quantize_flow` / :func:`dequantize_flow` — clip to ``[-bound, bound]`` (20 px in the
  references) and map linearly to ``uint8`` ``0..255``; the round trip error is at most
  ``bound / 255`` px inside the bound. This is how the references store flow as JPEGs.
* :func:`rgb_difference` — differences of consecutive frames (TSN's cheap motion modality).

Flow arrays are ``[T-1, H, W, 2]`` with channel 0 = horizontal ``u``, channel 1 = vertical ``v``.
"""
from __future__ import annotations

import cv2
import numpy as np

from components.errors import ConfigError

__all__ = ["FLOW_METHODS", "compute_flow", "quantize_flow", "dequantize_flow", "rgb_difference",
           "to_gray"]

FLOW_METHODS = ("tvl1", "dis", "farneback")


def to_gray(frames: np.ndarray) -> np.ndarray:
    """``uint8 [T, H, W, 3]`` RGB to ``uint8 [T, H, W]`` gray."""
    return np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])


def _estimator(method: str):
    if method == "tvl1":
        return cv2.optflow.DualTVL1OpticalFlow_create()
    if method == "dis":
        return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    if method == "farneback":
        return None
    raise ConfigError(f"unknown flow method {method!r}; choose one of {FLOW_METHODS}")


def compute_flow(frames: np.ndarray, method: str = "tvl1") -> np.ndarray:
    """Flow between consecutive frames of ``uint8 [T, H, W, 3]`` (or gray ``[T, H, W]``).

    Returns ``float32 [T-1, H, W, 2]`` in pixels (``T = 1`` gives an empty array).
    """
    est = _estimator(method)
    gray = frames if frames.ndim == 3 else to_gray(frames)
    out = np.zeros((max(0, len(gray) - 1),) + gray.shape[1:] + (2,), dtype=np.float32)
    cv2.setNumThreads(1)
    for t in range(len(gray) - 1):
        a, b = gray[t], gray[t + 1]
        if est is None:
            out[t] = cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0)
        else:
            out[t] = est.calc(a, b, None)
    return out


def quantize_flow(flow: np.ndarray, bound: float = 20.0) -> np.ndarray:
    """Clip to ``[-bound, bound]`` and map linearly to ``uint8`` (``-bound -> 0``, ``+bound -> 255``)."""
    if bound <= 0:
        raise ConfigError(f"flow bound must be > 0, got {bound}")
    scaled = (np.clip(flow, -bound, bound) + bound) * (255.0 / (2 * bound))
    return np.round(scaled).astype(np.uint8)


def dequantize_flow(q: np.ndarray, bound: float = 20.0) -> np.ndarray:
    """Inverse of :func:`quantize_flow` (``float32`` pixels)."""
    return q.astype(np.float32) * np.float32(2 * bound / 255.0) - np.float32(bound)


def rgb_difference(frames: np.ndarray) -> np.ndarray:
    """``float32 [T-1, H, W, 3]`` differences ``frame[t+1] - frame[t]`` of ``uint8`` frames, in [-255, 255]."""
    f = frames.astype(np.float32)
    return f[1:] - f[:-1]
