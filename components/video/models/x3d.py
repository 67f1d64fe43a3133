"""X3D (Feichtenhofer 2020): a tiny 2D-like base network expanded along single axes.

The expansion factors (paper Table 2/3): width ``gamma_w`` = 2 (stem/stage widths 24..192),
bottleneck ``gamma_b`` = 2.25 (inner width = 2.25 x stage width), depth ``gamma_d`` = 2.2
(XS/S/M; stages of 3, 5, 11, 7 blocks) or 5.0 (L: 5, 10, 25, 15), and the input axes: frames
``gamma_t``, frame stride ``gamma_tau`` and resolution ``gamma_s`` (XS 4x160 @12, S 13x160 @6,
M 16x224 @5, L 16x312 @5). XS, S and M therefore share their weights' shapes.

Stages are built with the generic :func:`resnet3d.make_layer` using :class:`X3DBlock` and a
channel-wise (depthwise) 3x3x3 convolution builder. Blocks: 1x1x1 -> depthwise 3x3x3 ->
squeeze-excitation (every other block, ratio 1/16) -> swish -> 1x1x1. As in pytorchvideo's
``create_x3d`` the strided shortcut of the first stage (24 -> 24 channels) is a convolution
without batch norm; the parameter count is then exactly pytorchvideo's (3,794,274 for XS/S/M),
and a pytorchvideo state dict loads through :mod:`components.video.models.weights`.
"""
from __future__ import annotations

import math
from functools import partial

from torch import nn

from components.video.models.layers import ClipClassifier, SqueezeExcite3d, Swish, check_clip, round_width
from components.video.models.registry import InputSpec, ModelSpec, register
from components.video.models.resnet3d import ChannelwiseConv3d, TemporalConv3d, init_weights, make_layer


class X3DBlock(nn.Module):
    """X3D bottleneck; ``planes`` is the output width, ``inner`` the expanded width."""

    expansion = 1

    def __init__(self, inplanes, planes, conv_builder, stride=1, downsample=None, inner=None, se_ratio=0.0):
        super().__init__()
        self.conv_a = nn.Sequential(TemporalConv3d(inplanes, inner, 1, bias=False), nn.BatchNorm3d(inner),
                                    nn.ReLU(inplace=True))
        self.conv_b = nn.Sequential(conv_builder(inner, inner, None, stride), nn.BatchNorm3d(inner))
        self.se = SqueezeExcite3d(inner, round_width(inner, se_ratio)) if se_ratio > 0 else nn.Identity()
        self.act = Swish()
        self.conv_c = nn.Sequential(TemporalConv3d(inner, planes, 1, bias=False), nn.BatchNorm3d(planes))
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        y = self.conv_c(self.act(self.se(self.conv_b(self.conv_a(x)))))
        return self.relu(y + residual)


class X3D(ClipClassifier):
    """X3D with expansion factors ``width_factor`` (gamma_w), ``depth_factor`` (gamma_d),
    ``bottleneck_factor`` (gamma_b); head: 1x1x1 conv to the inner width, pool, 1x1x1 conv to
    ``head_dim`` (2048), ReLU, dropout, linear."""

    def __init__(self, num_classes=400, width_factor=2.0, depth_factor=2.2, bottleneck_factor=2.25,
                 base_depths=(1, 2, 5, 3), base_width=12, se_ratio=0.0625, head_dim=2048, in_channels=3,
                 dropout=0.5):
        super().__init__()
        w = round_width(base_width, width_factor)
        self.stem = nn.Sequential(
            nn.Conv3d(in_channels, w, (1, 3, 3), (1, 2, 2), (0, 1, 1), bias=False),
            TemporalConv3d(w, w, (5, 1, 1), 1, (2, 0, 0), groups=w, bias=False),
            nn.BatchNorm3d(w), nn.ReLU(inplace=True))
        layers, cin = [], w
        for i, d in enumerate(base_depths):
            out = w * 2 ** i
            inner = int(bottleneck_factor * out)
            n = int(math.ceil(depth_factor * d))
            kws = [{"inner": inner, "se_ratio": se_ratio if j % 2 == 0 else 0.0} for j in range(n)]
            stage = make_layer(X3DBlock, ChannelwiseConv3d, cin, out, n, 2, kws)
            if cin == out:      # pytorchvideo normalises the shortcut only where the width changes
                stage[0].downsample = nn.Sequential(stage[0].downsample[0])
            layers.append(stage)
            cin = out
        self.layers = nn.Sequential(*layers)
        inner = int(bottleneck_factor * cin)
        self.head_pre = nn.Sequential(nn.Conv3d(cin, inner, 1, bias=False), nn.BatchNorm3d(inner),
                                      nn.ReLU(inplace=True))
        self.head_post = nn.Sequential(nn.Conv3d(inner, head_dim, 1, bias=False), nn.ReLU(inplace=True))
        self.feature_dim = head_dim
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(head_dim, num_classes))
        init_weights(self)

    def features(self, x):
        """The 2048-d pre-logit vector (after pooling and the post 1x1x1 conv)."""
        check_clip(x, 5, "X3D")
        x = self.head_pre(self.layers(self.stem(x)))
        x = nn.functional.adaptive_avg_pool3d(x, 1)
        return self.head_post(x).flatten(1)


_ZOO = "PySlowFast MODEL_ZOO X3D (params M, GFLOPs at the training crop)"
for _name, _depth, _t, _size, _tau, _ref, _pub in [
    ("x3d_xs", 2.2, 4, 160, 12, 3_794_274, (3.8, 0.60)),
    ("x3d_s", 2.2, 13, 160, 6, 3_794_274, (3.8, 1.96)),
    ("x3d_m", 2.2, 16, 224, 5, 3_794_274, (3.8, 4.73)),
    ("x3d_l", 5.0, 16, 312, 5, 6_153_384, (6.2, 18.37)),
]:
    register(ModelSpec(
        name=_name, builder=partial(X3D, depth_factor=_depth),
        inputs={"rgb": InputSpec(3, _t, _size, min_frames=1, min_size=32, frame_stride=_tau)},
        family="x3d", paper="Feichtenhofer 2020, X3D: Expanding Architectures for Efficient Video Recognition",
        ref_params=_ref, ref_source="pytorchvideo create_x3d built from its source (exact; 3.79M / 6.15M in its zoo)",
        published={"params_m": _pub[0], "gflops": _pub[1], "source": _ZOO},
        tiny={"rgb": (2, 32)}))
