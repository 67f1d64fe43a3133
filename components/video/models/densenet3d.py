"""T3D (Diba et al. 2017): a 3D DenseNet whose transition layers are Temporal Transition Layers.

DenseNet-121 layout (growth rate 32, bottleneck 4k, blocks 6/12/24/16) with 3D kernels. Each
transition between dense blocks is a TTL: parallel 3D convolutions of different temporal depths
(1x1x1 and d x 3 x 3 for d in ``ttl_depths``, default (3, 6) as in the paper's figure) applied to
the same input, concatenated (so features of several temporal ranges are kept, like Inception)
and followed by 2x2x2 average pooling. The output width is ``compression`` x input, as in a
DenseNet transition. ``features`` is the globally pooled final map (1024-d for T3D-121).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from components.video.models.layers import ClipClassifier, check_clip, global_avg_pool
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
    """TTL: BN-ReLU, then 1x1x1 and d x 3 x 3 convolutions in parallel, concat, 2x2x2 avg-pool."""

    def __init__(self, cin, cout, depths=(3, 6)):
        super().__init__()
        n = 1 + len(depths)
        widths = [cout // n + (1 if i < cout % n else 0) for i in range(n)]
        self.pre = nn.Sequential(nn.BatchNorm3d(cin), nn.ReLU(inplace=True))
        self.depths = (1,) + tuple(depths)
        self.branches = nn.ModuleList([nn.Conv3d(cin, widths[0], 1, bias=False)] + [
            nn.Conv3d(cin, w, (d, 3, 3), padding=(0, 1, 1), bias=False) for d, w in zip(depths, widths[1:])])

    def forward(self, x):
        x = self.pre(x)
        # 'same' temporal padding, also for even depths (one more frame after than before)
        x = torch.cat([b(F.pad(x, (0, 0, 0, 0, (d - 1) // 2, d // 2))) for d, b in zip(self.depths, self.branches)], 1)
        k = tuple(min(2, s) for s in x.shape[2:])
        return F.avg_pool3d(x, k, k)


class T3D(ClipClassifier):
    """3D DenseNet with TTLs. ``block_config`` (6, 12, 24, 16) is DenseNet-121."""

    def __init__(self, num_classes=400, growth=32, block_config=(6, 12, 24, 16), init_features=64, bn_size=4,
                 compression=0.5, ttl_depths=(3, 6), in_channels=3, dropout=0.0):
        super().__init__()
        layers = [nn.Conv3d(in_channels, init_features, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False),
                  nn.BatchNorm3d(init_features), nn.ReLU(inplace=True),
                  nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))]
        c = init_features
        for i, n in enumerate(block_config):
            for _ in range(n):
                layers.append(DenseLayer3d(c, growth, bn_size))
                c += growth
            if i < len(block_config) - 1:
                out = int(c * compression)
                layers.append(TemporalTransition(c, out, ttl_depths))
                c = out
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
    published={"source": "Diba et al. 2017 (32x224x224 input)"}, tiny={"rgb": (2, 32)},
    tiny_kwargs={"block_config": (1, 1, 1, 1)}))
