"""Spatial transforms and array -> tensor conversion for clips.

The standard recipe of the references (SlowFast / X3D / torchvision video training, TSN test):

* decode with the **short side** resized to ``short`` pixels, keeping the aspect ratio
  (:func:`short_side_size`);
* training: a random **short-side scale jitter** (the frame is notionally resized to a random
  short side in ``[lo, hi]``), a random square crop and an optional **horizontal flip**
  (:func:`random_crop_box`, :func:`crop_resize`, :func:`hflip`);
* testing: 1, 3 or 5 square crops of the short-side-resized frame, the 3-crop test along the
  **long** side (:func:`components.video.samplers.spatial_crops`);
* mean / std normalisation of the model family's pre-training (:data:`NORMALIZATIONS`,
  :func:`normalization_for`).

Horizontal flips are off by default: they turn "moving right" into "moving left" (and
negate the flow's ``u``), so they are only for datasets whose classes are mirror-invariant.
:func:`hflip` flips flow correctly.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from components.errors import ConfigError

__all__ = ["RGB_MEAN", "RGB_STD", "NORMALIZATIONS", "normalization_for", "short_side_size",
           "random_crop_box", "crop", "crop_resize", "hflip", "rgb_to_tensor", "flow_to_tensor",
           "rgbdiff_to_tensor"]

RGB_MEAN = (0.45, 0.45, 0.45)   # the Kinetics statistics used by SlowFast / X3D / pytorchvideo
RGB_STD = (0.225, 0.225, 0.225)

# name -> (mean, std) of RGB in [0, 1]
NORMALIZATIONS: dict[str, tuple[tuple[float, float, float], tuple[float, float, float]]] = {
    # torchvision's Kinetics-400 video models (R3D / MC3 / R(2+1)D / S3D weights)
    "kinetics_torchvision": ((0.43216, 0.394666, 0.37645), (0.22803, 0.22145, 0.216989)),
    # pytorchvideo / SlowFast codebase (SlowFast, X3D, I3D-R50)
    "kinetics_pytorchvideo": (RGB_MEAN, RGB_STD),
    # ImageNet-initialised 2D backbones (TSN, two-stream, T3D's DenseNet)
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    # DeepMind's I3D / S3D-G: pixels scaled to [-1, 1]
    "inception": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}

_BY_NAME = {"i3d": "inception", "s3d_g": "inception", "s3d": "kinetics_torchvision",
            "i3d_r50": "kinetics_pytorchvideo", "t3d": "imagenet"}
_BY_FAMILY = {"resnet3d": "kinetics_torchvision", "slowfast": "kinetics_pytorchvideo",
              "x3d": "kinetics_pytorchvideo", "tsn": "imagenet", "two_stream": "imagenet",
              "densenet3d": "imagenet", "inception3d": "inception", "c3d": "kinetics_pytorchvideo"}


def normalization_for(model_name: str, family: str) -> str:
    """The :data:`NORMALIZATIONS` key matching the pre-training of ``model_name``'s weights.

    C3D's reference subtracts a per-pixel Sports-1M mean cube (0-255, no std) that is not
    shipped here; it gets the generic Kinetics statistics.
    """
    return _BY_NAME.get(model_name) or _BY_FAMILY.get(family, "kinetics_pytorchvideo")


def short_side_size(height: int, width: int, short: int) -> tuple[int, int]:
    """``(h, w)`` with ``min(h, w) == short`` and the aspect ratio of ``height x width`` kept."""
    if height <= 0 or width <= 0:
        raise ConfigError(f"height and width must be > 0, got {height}x{width}")
    if short <= 0:
        raise ConfigError(f"short must be > 0, got {short}")
    if height <= width:
        return short, max(short, int(round(width * short / height)))
    return max(short, int(round(height * short / width))), short


def random_crop_box(height: int, width: int, size: int, rng: np.random.Generator,
                    scale: tuple[int, int] | None = None) -> tuple[int, int, int]:
    """``(y, x, side)`` of a random square window of a ``height x width`` frame.

    Without ``scale`` the window is ``size`` pixels. With ``scale=(lo, hi)`` a short side
    ``s`` is drawn uniformly from ``[lo, hi]`` and the window is the one that becomes ``size``
    pixels once the frame's short side is resized to ``s`` (side ``size * short / s``): the
    SlowFast "random short-side scale jitter + random crop" without resizing the whole frame.
    """
    short = min(height, width)
    side = size
    if scale is not None:
        lo, hi = int(scale[0]), int(scale[1])
        if lo < size or hi < lo:
            raise ConfigError(f"scale ({lo}, {hi}) must satisfy size ({size}) <= lo <= hi")
        s = int(rng.integers(lo, hi + 1))
        side = min(short, max(1, int(round(size * short / s))))
    if side > short:
        raise ConfigError(f"size {size} is larger than the frame {height}x{width}")
    y = int(rng.integers(0, height - side + 1))
    x = int(rng.integers(0, width - side + 1))
    return y, x, side


def crop(frames: np.ndarray, y: int, x: int, size: int) -> np.ndarray:
    """``frames[..., y:y+size, x:x+size, :]`` for ``[T, H, W, C]`` arrays."""
    return frames[:, y:y + size, x:x + size]


def crop_resize(frames: np.ndarray, y: int, x: int, side: int, size: int, is_flow: bool = False) -> np.ndarray:
    """Crop a ``side`` window at ``(y, x)`` of ``[T, H, W, C]`` and resize it to ``size``.

    Flow vectors are rescaled by ``size / side`` with the pixels (a flow of 2 px in a window
    shrunk to half is 1 px). ``side == size`` is a plain crop.
    """
    out = crop(frames, y, x, side)
    if side == size:
        return out
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    res = np.stack([cv2.resize(np.ascontiguousarray(f), (size, size), interpolation=interp) for f in out])
    if res.ndim == 3:       # cv2 drops a trailing channel axis of 1
        res = res[..., None]
    if is_flow:
        res = res.astype(np.float32) * (size / side)
    return res


def hflip(frames: np.ndarray, is_flow: bool = False) -> np.ndarray:
    """Mirror ``[T, H, W, C]`` horizontally; for flow (``C = 2``, float) also negate ``u``."""
    out = frames[:, :, ::-1].copy()
    if is_flow:
        out = out.astype(np.float32, copy=False)
        out[..., 0] = -out[..., 0]
    return out


def rgb_to_tensor(frames: np.ndarray, mean: tuple[float, ...] = RGB_MEAN,
                  std: tuple[float, ...] = RGB_STD) -> torch.Tensor:
    """``uint8 [T, H, W, 3]`` -> ``float32 [3, T, H, W]``, ``(x / 255 - mean) / std`` per channel."""
    t = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).float().div_(255.0)
    m = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1, 1)
    s = torch.tensor(std, dtype=torch.float32).view(3, 1, 1, 1)
    return t.sub_(m).div_(s)


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

