"""Small building blocks shared by the model families (dimension-generic where useful)."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from components.errors import InputError


def _conv_cls(dim: int):
    return {2: nn.Conv2d, 3: nn.Conv3d}[dim]


def _bn_cls(dim: int):
    return {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}[dim]


def _tuple(v, dim: int) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v,) * dim


class ConvBNAct(nn.Sequential):
    """``conv -> BN -> ReLU`` as a Sequential (indices 0, 1, 2: torchvision's Conv*dNormActivation
    layout). ``padding=None`` means 'same' for odd kernels. ``dim`` is 2 or 3."""

    def __init__(self, cin: int, cout: int, kernel=1, stride=1, padding=None, dim: int = 3,
                 bn_eps: float = 1e-5, bn_momentum: float = 0.1, act: bool = True, groups: int = 1):
        k = _tuple(kernel, dim)
        p = tuple(x // 2 for x in k) if padding is None else _tuple(padding, dim)
        layers = [_conv_cls(dim)(cin, cout, k, _tuple(stride, dim), p, bias=False, groups=groups),
                  _bn_cls(dim)(cout, eps=bn_eps, momentum=bn_momentum)]
        if act:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class Swish(nn.Module):
    """x * sigmoid(x) (X3D)."""

    def forward(self, x):
        return F.silu(x)


class SqueezeExcite3d(nn.Module):
    """Squeeze-and-excitation: global pool -> 1x1 conv -> ReLU -> 1x1 conv -> sigmoid -> scale."""

    def __init__(self, channels: int, reduced: int):
        super().__init__()
        self.fc1 = nn.Conv3d(channels, reduced, 1, bias=True)
        self.fc2 = nn.Conv3d(reduced, channels, 1, bias=True)

    def forward(self, x):
        s = F.adaptive_avg_pool3d(x, 1)
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(s))))


class SelfGating3d(nn.Module):
    """S3D-G feature gating: ``x * sigmoid(W mean_{t,h,w}(x) + b)`` (per channel)."""

    def __init__(self, channels: int):
        super().__init__()
        self.fc = nn.Linear(channels, channels)

    def forward(self, x):
        w = torch.sigmoid(self.fc(x.mean(dim=(2, 3, 4))))
        return x * w[:, :, None, None, None]


def round_width(width: float, multiplier: float, divisor: int = 8) -> int:
    """Scale a channel count and round to a multiple of ``divisor`` (X3D / pytorchvideo rule)."""
    width *= multiplier
    out = max(divisor, int(width + divisor / 2) // divisor * divisor)
    if out < 0.9 * width:
        out += divisor
    return int(out)


def global_avg_pool(x: torch.Tensor) -> torch.Tensor:
    """Mean over every dimension after the channel one -> (B, C)."""
    return x.flatten(2).mean(-1)


class ClipClassifier(nn.Module):
    """Base of every model: ``forward(x) = head(features(x))``.

    Subclasses implement ``features(x) -> (B, feature_dim)`` and set ``self.head`` (usually a
    Dropout + Linear) and ``self.feature_dim``.
    """

    feature_dim: int

    def forward(self, x):
        return self.head(self.features(x))


def unpack_inputs(x, keys: Sequence[str], who: str) -> list[torch.Tensor]:
    """Turn a dict / tuple / list input into a list ordered as ``keys``; clear error otherwise."""
    if isinstance(x, dict):
        missing = [k for k in keys if k not in x]
        if missing:
            raise InputError(f"{who} needs inputs {list(keys)}, missing {missing}", field="x",
                             fix="pass a dict with those keys (see spec.inputs)")
        return [x[k] for k in keys]
    if isinstance(x, (tuple, list)) and len(x) == len(keys):
        return list(x)
    raise InputError(f"{who} takes {len(keys)} inputs {list(keys)} as a dict or tuple, got {type(x).__name__}",
                     field="x", fix="pass a dict keyed by spec.inputs")


def check_clip(x: torch.Tensor, ndim: int, who: str) -> None:
    """Raise InputError unless ``x`` is a tensor with ``ndim`` dimensions."""
    if not isinstance(x, torch.Tensor) or x.dim() != ndim:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        want = "(B, C, T, H, W)" if ndim == 5 else "(B, C, H, W)"
        raise InputError(f"{who} expects a {ndim}-D tensor {want}, got {shape}", field="x")


class ClippedMaxPool3d(nn.Module):
    """MaxPool3d whose window, stride and padding shrink on any axis shorter than the window,
    so a network keeps its standard-size behaviour but still runs on short or small clips."""

    def __init__(self, kernel, stride=None, padding=0, ceil_mode=False):
        super().__init__()
        self.kernel, self.stride = _tuple(kernel, 3), _tuple(stride or kernel, 3)
        self.padding, self.ceil_mode = _tuple(padding, 3), ceil_mode

    def forward(self, x):
        k, s, p = [], [], []
        for size, kk, ss, pp in zip(x.shape[2:], self.kernel, self.stride, self.padding):
            short = size + 2 * pp < kk
            k.append(min(kk, size) if short else kk)
            s.append(min(ss, size) if short else ss)
            p.append(0 if short else pp)
        return F.max_pool3d(x, k, s, p, ceil_mode=self.ceil_mode)
