"""Shared 2D backbones of the two-stream family (two-stream, hidden two-stream, TSN).

``backbone2d(name, in_channels)`` returns a module with ``feature_map(x) -> (B, C, h, w)`` and
``feature_dim`` for images ``(B, in_channels, H, W)`` — RGB frames (3), stacked optical flow
(2L channels: u1, v1, u2, v2, ...) or stacked RGB differences (3L).

* ``resnet18`` / ``resnet34`` : :class:`resnet3d.FrameResNet` (a 2D ResNet built by the 3D builder
  with 1 x k x k kernels); ``width`` scales all stages (64 is the standard ResNet).
* ``inception`` : 2D Inception-v1 with batch norm (:func:`inception3d.googlenet_bn`), the family of
  TSN's BN-Inception and the network I3D inflates.
"""
from __future__ import annotations

from torch import nn

from components.errors import ConfigError
from components.video.models.inception3d import googlenet_bn
from components.video.models.resnet3d import FrameResNet


class _InceptionTrunk(nn.Module):
    def __init__(self, in_channels: int):
        super().__init__()
        self.net = googlenet_bn(1, in_channels=in_channels)
        del self.net.classifier
        self.feature_dim = 1024

    def feature_map(self, x):
        return self.net.features.feature_map(x)


class _ResNetTrunk(nn.Module):
    def __init__(self, depth: int, in_channels: int, width: int):
        super().__init__()
        self.net = FrameResNet(depth, in_channels, 1, width)
        del self.net.net.fc
        self.feature_dim = self.net.feature_dim

    def feature_map(self, x):
        return self.net.feature_map(x)


BACKBONES = ("resnet18", "resnet34", "inception")


def backbone2d(name: str, in_channels: int, width: int = 64) -> nn.Module:
    """A 2D trunk (no classifier) named ``name``; see the module docstring."""
    if name in ("resnet18", "resnet34"):
        return _ResNetTrunk(int(name[6:]), in_channels, width)
    if name == "inception":
        return _InceptionTrunk(in_channels)
    raise ConfigError(f"unknown 2D backbone '{name}'; choose one of {BACKBONES}")
