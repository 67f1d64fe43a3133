"""C3D (Tran et al. 2015): eight 3x3x3 convolutions, five poolings, two 4096-d fully connected layers.

Layout from the paper (Fig. 3): conv1a 64 | pool1 1x2x2 | conv2a 128 | pool2 | conv3a,b 256 | pool3 |
conv4a,b 512 | pool4 | conv5a,b 512 | pool5 | fc6 4096 | fc7 4096 | softmax. All kernels 3x3x3,
stride 1; pools 2x2x2 except pool1. Input 16 x 112 x 112; pool5 (padded 0x1x1 as in the released
model) leaves 512 x 1 x 4 x 4 = 8192 features for fc6. For other input sizes an adaptive pool
brings the map to 1 x 4 x 4 (an identity at the standard size) so fc6 keeps its shape.
"""
from __future__ import annotations

from torch import nn

from components.video.models.layers import ClipClassifier, ClippedMaxPool3d, check_clip
from components.video.models.registry import InputSpec, ModelSpec, register


def _conv(cin, cout):
    return [nn.Conv3d(cin, cout, 3, 1, 1), nn.ReLU(inplace=True)]


class C3D(ClipClassifier):
    """C3D; ``features`` is the fc7 activation (4096-d, the "C3D feature" of the paper)."""

    def __init__(self, num_classes=487, in_channels=3, dropout=0.5, width=64, fc_dim=4096):
        super().__init__()
        w = width
        pool = ClippedMaxPool3d
        self.convs = nn.Sequential(
            *_conv(in_channels, w), pool((1, 2, 2)),
            *_conv(w, 2 * w), pool((2, 2, 2)),
            *_conv(2 * w, 4 * w), *_conv(4 * w, 4 * w), pool((2, 2, 2)),
            *_conv(4 * w, 8 * w), *_conv(8 * w, 8 * w), pool((2, 2, 2)),
            *_conv(8 * w, 8 * w), *_conv(8 * w, 8 * w), ClippedMaxPool3d(2, 2, (0, 1, 1)),
            nn.AdaptiveAvgPool3d((1, 4, 4)))
        self.fc = nn.Sequential(
            nn.Linear(8 * w * 16, fc_dim), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(fc_dim, fc_dim), nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.feature_dim = fc_dim
        self.head = nn.Linear(fc_dim, num_classes)

    def features(self, x):
        check_clip(x, 5, "C3D")
        return self.fc(self.convs(x).flatten(1))


register(ModelSpec(
    name="c3d", builder=C3D,
    inputs={"rgb": InputSpec(3, 16, 112, min_frames=1, min_size=32)},
    family="c3d", ref_classes=487, paper="Tran et al. 2015, Learning Spatiotemporal Features with 3D ConvNets (C3D)",
    published={"source": "Tran et al. 2015 (16x112x112 input; Sports-1M: 487 classes)"},
    tiny={"rgb": (2, 32)}))
