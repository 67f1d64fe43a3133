"""T3D (Diba et al. 2017): a 3D DenseNet whose transitions start with Temporal Transition Layers.

DenseNet-121 layout (growth rate 32, bottleneck 4k, blocks 6/12/24/16) with 3D kernels. After each
dense block but the last, a TTL runs parallel 3D convolutions of different temporal depths on the
same input and concatenates them (features of several temporal ranges are kept, like Inception),
followed by a DenseNet transition (1x1x1 conv + 2x2x2 average pooling). Depths, widths and stem
follow the authors' code (``models/T3D.py`` of MohsenFayyaz89/T3D): TTL branches of depth 1, 3
and 4 with 128 channels each, a 3x7x7 stem with stride 2 in time too, a 3x3x3 max-pool. That file
does not run as published (its ``_TTL`` calls the wrong ``super`` and builds its branches from
``add_module`` return values; convolutions lack padding), so the runnable reading here adds 'same'
padding (even depths: one more frame after than before) — see docs/video-models.md.
``features`` is the globally pooled final map (896-d for T3D-121: 384 + 16 x 32).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from components.video.models.layers import ClipClassifier, ClippedMaxPool3d, check_clip, global_avg_pool
from components.video.models.registry import InputSpec, ModelSpec, register


class DenseLayer3d(nn.Sequential):
    """BN-ReLU-1x1x1 (bn_size*growth) - BN-ReLU-3x3x3 (growth); output concatenated to input."""

    def __init__(self, cin, growth, bn_size):
        super().__init__(nn.BatchNorm3d(cin), nn.ReLU(inplace=True),
                         nn.Conv3d(cin, bn_size * growth, 1, bias=False),
                         nn.BatchNorm3d(bn_size * growth), nn.ReLU(inplace=True),
                         nn.Conv3d(bn_size * growth, growth, 3, 1, 1, bias=False))

    def forward(self, x):
        return torch.cat([x, super().forward(x)], 1)


class TemporalTransition(nn.Module):
    """TTL (authors' ``_TTL``): parallel branches, each BN-ReLU-Conv with ``width`` outputs, of
    temporal depths ``depths`` (a depth-1 branch is 1x1x1, the others d x 3 x 3), concatenated."""

    def __init__(self, cin, width=128, depths=(1, 3, 4)):
        super().__init__()
        self.depths = tuple(depths)
        self.branches = nn.ModuleList([nn.Sequential(
            nn.BatchNorm3d(cin), nn.ReLU(inplace=True),
            nn.Conv3d(cin, width, (d, 3, 3) if d > 1 else 1, padding=(0, 1, 1) if d > 1 else 0, bias=False))
            for d in self.depths])
        self.out_channels = width * len(self.depths)

    def forward(self, x):
        # 'same' temporal padding, also for even depths (one more frame after than before)
        return torch.cat([b[2](F.pad(b[1](b[0](x)), (0, 0, 0, 0, (d - 1) // 2, d // 2)))
                          for d, b in zip(self.depths, self.branches)], 1)


class Transition3d(nn.Sequential):
    """DenseNet transition after a TTL (authors' ``_Transition``): BN-ReLU-1x1x1 conv, 2x2x2 average
    pooling (clipped to 1 on an axis of size 1)."""

    def __init__(self, cin, cout):
        super().__init__(nn.BatchNorm3d(cin), nn.ReLU(inplace=True), nn.Conv3d(cin, cout, 1, bias=False))

    def forward(self, x):
        x = super().forward(x)
        k = tuple(min(2, s) for s in x.shape[2:])
        return F.avg_pool3d(x, k, k)


class T3D(ClipClassifier):
    """3D DenseNet with TTLs, laid out as the authors' ``models/T3D.py`` (MohsenFayyaz89/T3D).

    Stem: 3x7x7 conv with stride 2 in time and space, BN, ReLU, 3x3x3 max-pool stride 2. After each
    dense block but the last: TTL (branches of temporal depth ``ttl_depths`` = 1, 3, 4 with
    ``ttl_width`` = 128 channels each) then a transition (BN-ReLU-1x1x1 conv keeping the width,
    2x2x2 average pool). ``block_config`` (6, 12, 24, 16) is DenseNet-121.
    """

    def __init__(self, num_classes=400, growth=32, block_config=(6, 12, 24, 16), init_features=64, bn_size=4,
                 ttl_depths=(1, 3, 4), ttl_width=128, in_channels=3, dropout=0.0):
        super().__init__()
        layers = [nn.Conv3d(in_channels, init_features, (3, 7, 7), 2, (1, 3, 3), bias=False),
                  nn.BatchNorm3d(init_features), nn.ReLU(inplace=True),
                  ClippedMaxPool3d(3, 2, 1)]
        c = init_features
        for i, n in enumerate(block_config):
            for _ in range(n):
                layers.append(DenseLayer3d(c, growth, bn_size))
                c += growth
            if i < len(block_config) - 1:
                ttl = TemporalTransition(c, ttl_width, ttl_depths)
                layers += [ttl, Transition3d(ttl.out_channels, ttl.out_channels)]
                c = ttl.out_channels
        layers += [nn.BatchNorm3d(c), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.feature_dim = c
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(c, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight)

    def features(self, x):
        check_clip(x, 5, "T3D")
        return global_avg_pool(self.body(x))


register(ModelSpec(
    name="t3d", builder=T3D,
    inputs={"rgb": InputSpec(3, 32, 224, min_frames=1, min_size=32)},
    family="densenet3d", paper="Diba et al. 2017, Temporal 3D ConvNets (T3D, DenseNet-121 based)",
    published={"source": "Diba et al. 2017 (32x224x224 input); layout of the authors' models/T3D.py"},
    tiny={"rgb": (2, 32)},
    tiny_kwargs={"block_config": (1, 1, 1, 1)}))
