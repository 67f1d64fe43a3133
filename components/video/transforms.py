"""Array -> tensor transforms for clips (no augmentation that could change a motion class).

Horizontal flips are deliberately absent from the defaults: they turn "moving right" into
"moving left" (and negate the flow's ``u``); :func:`hflip` is provided for datasets where a
flip keeps the label, and flips flow correctly.
"""
from __future__ import annotations

import numpy as np
import torch

__all__ = ["RGB_MEAN", "RGB_STD", "crop", "hflip", "rgb_to_tensor", "flow_to_tensor", "rgbdiff_to_tensor"]

RGB_MEAN = (0.45, 0.45, 0.45)   # the Kinetics statistics used by SlowFast / X3D / pytorchvideo
RGB_STD = (0.225, 0.225, 0.225)


def crop(frames: np.ndarray, y: int, x: int, size: int) -> np.ndarray:
    """``frames[..., y:y+size, x:x+size, :]`` for ``[T, H, W, C]`` arrays."""
    return frames[:, y:y + size, x:x + size]


def hflip(frames: np.ndarray, is_flow: bool = False) -> np.ndarray:
    """Mirror ``[T, H, W, C]`` horizontally; for flow (``C = 2``, float) also negate ``u``."""
    out = frames[:, :, ::-1].copy()
    if is_flow:
        out[..., 0] = -out[..., 0]
    return out


def rgb_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """``uint8 [T, H, W, 3]`` -> normalised ``float32 [3, T, H, W]``."""
    t = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).float().div_(255.0)
    mean = torch.tensor(RGB_MEAN).view(3, 1, 1, 1)
    std = torch.tensor(RGB_STD).view(3, 1, 1, 1)
    return t.sub_(mean).div_(std)


def flow_to_tensor(flow: np.ndarray, bound: float = 20.0) -> torch.Tensor:
    """``float [T, H, W, 2]`` pixels -> ``float32 [2, T, H, W]`` scaled to ``[-1, 1]`` by ``bound``."""
    t = torch.from_numpy(np.ascontiguousarray(flow, dtype=np.float32)).permute(3, 0, 1, 2)
    return t.clamp(-bound, bound).div_(bound)


def rgbdiff_to_tensor(diff: np.ndarray) -> torch.Tensor:
    """``float [T, H, W, 3]`` differences in ``[-255, 255]`` -> ``float32 [3, T, H, W]`` in ``[-1, 1]``.

    Differences are small, so they are scaled by ``4 / 255`` (clamped to ``[-1, 1]``) to use
    the range a network's initialisation expects.
    """
    t = torch.from_numpy(np.ascontiguousarray(diff, dtype=np.float32)).permute(3, 0, 1, 2)
    return t.mul_(4.0 / 255.0).clamp_(-1.0, 1.0)
