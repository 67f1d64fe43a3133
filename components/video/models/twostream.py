"""Two-stream networks: a spatial 2D CNN on an RGB frame + a temporal 2D CNN on 2L stacked flow
channels (Simonyan & Zisserman 2014), fused late (average of the streams' class scores) or by
convolution at the last conv layer (Feichtenhofer et al. 2016: stack both feature maps, 1x1 conv
2C -> C, then one classifier). Hidden two-stream (Zhu et al. 2017) replaces the precomputed flow
by a :class:`MotionNet` trained end to end with its unsupervised losses.

Inputs (``spec.inputs``): ``rgb`` (B, 3, H, W) — a (B, 3, T, H, W) clip uses its middle frame —
and ``flow`` (B, 2L, H, W) stacked u1, v1, u2, v2, ... — a (B, 2, L, H, W) tensor is stacked
in that order.
"""
from __future__ import annotations

from functools import partial

import torch
from torch import nn

from components.errors import ConfigError
from components.video.models.backbones2d import backbone2d
from components.video.models.layers import ClipClassifier, check_clip, unpack_inputs
from components.video.models.motionnet import MotionNet, unsupervised_flow_losses
from components.video.models.registry import InputSpec, ModelSpec, register


def middle_frame(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) as is; (B, C, T, H, W) -> its middle frame."""
    return x[:, :, x.shape[2] // 2] if x.dim() == 5 else x


def stack_flow(x: torch.Tensor) -> torch.Tensor:
    """(B, 2L, H, W) as is; (B, 2, L, H, W) -> (B, 2L, H, W) ordered u1, v1, u2, v2, ..."""
    if x.dim() == 5:
        b, c, t, h, w = x.shape
        return x.transpose(1, 2).reshape(b, c * t, h, w)
    return x


class StreamFusion(nn.Module):
    """Two 2D trunks and a fusion rule: ``late`` (mean of the two streams' logits) or ``conv``."""

    def __init__(self, num_classes, spatial_in, temporal_in, fusion="late", backbone="resnet18", width=64,
                 dropout=0.5):
        super().__init__()
        if fusion not in ("late", "conv"):
            raise ConfigError(f"two-stream fusion must be 'late' or 'conv', got {fusion!r}")
        self.fusion = fusion
        self.spatial = backbone2d(backbone, spatial_in, width)
        self.temporal = backbone2d(backbone, temporal_in, width)
        c = self.spatial.feature_dim
        if fusion == "conv":
            self.fuse = nn.Sequential(nn.Conv2d(2 * c, c, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True))
            self.feature_dim = c
            self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(c, num_classes))
        else:
            self.feature_dim = 2 * c
            self.head_spatial = nn.Sequential(nn.Dropout(dropout), nn.Linear(c, num_classes))
            self.head_temporal = nn.Sequential(nn.Dropout(dropout), nn.Linear(c, num_classes))

    def embed(self, rgb, flow):
        ms, mt = self.spatial.feature_map(rgb), self.temporal.feature_map(flow)
        if self.fusion == "conv":
            return self.fuse(torch.cat([ms, mt], 1)).mean(dim=(2, 3))
        return torch.cat([ms.mean(dim=(2, 3)), mt.mean(dim=(2, 3))], 1)

    def classify(self, f):
        if self.fusion == "conv":
            return self.head(f)
        c = f.shape[1] // 2
        return 0.5 * (self.head_spatial(f[:, :c]) + self.head_temporal(f[:, c:]))


class TwoStream(ClipClassifier):
    """Spatial RGB stream + temporal stream over ``2 * flow_frames`` stacked flow channels."""

    def __init__(self, num_classes, flow_frames=10, fusion="late", backbone="resnet18", width=64, dropout=0.5):
        super().__init__()
        self.streams = StreamFusion(num_classes, 3, 2 * flow_frames, fusion, backbone, width, dropout)
        self.feature_dim = self.streams.feature_dim

    def features(self, x):
        rgb, flow = unpack_inputs(x, ("rgb", "flow"), "TwoStream")
        rgb, flow = middle_frame(rgb), stack_flow(flow)
        check_clip(rgb, 4, "TwoStream rgb")
        check_clip(flow, 4, "TwoStream flow")
        return self.streams.embed(rgb, flow)

    def forward(self, x):
        return self.streams.classify(self.features(x))


class HiddenTwoStream(ClipClassifier):
    """Spatial stream on the middle frame + MotionNet -> temporal stream on the estimated flow.

    Input: an RGB clip (B, 3, T, H, W) (T = L + 1 frames give L flow fields). ``forward_train``
    returns ``(logits, {"photometric": ..., "smoothness": ...})``; add those to the task loss so
    MotionNet learns flow end to end (``aux_weight`` scales them).
    """

    def __init__(self, num_classes, frames=11, fusion="late", backbone="resnet18", width=64, motion_width=32,
                 aux_weight=1.0, dropout=0.5):
        super().__init__()
        self.frames, self.aux_weight = frames, aux_weight
        self.motionnet = MotionNet(frames, motion_width)
        self.streams = StreamFusion(num_classes, 3, 2 * (frames - 1), fusion, backbone, width, dropout)
        self.feature_dim = self.streams.feature_dim

    def _run(self, x):
        check_clip(x, 5, "HiddenTwoStream")
        if x.shape[2] != self.frames:
            raise ConfigError(f"HiddenTwoStream was built for {self.frames} frames, got a clip of {x.shape[2]}")
        flows = self.motionnet(x)
        return self.streams.embed(middle_frame(x), stack_flow(flows[-1])), flows

    def features(self, x):
        return self._run(x)[0]

    def forward(self, x):
        return self.streams.classify(self.features(x))

    def forward_train(self, x):
        f, flows = self._run(x)
        aux = unsupervised_flow_losses(x, flows)
        return self.streams.classify(f), {k: self.aux_weight * v for k, v in aux.items()}

    def estimate_flow(self, x) -> torch.Tensor:
        """MotionNet's full-resolution flow (B, 2, T-1, H, W)."""
        return self.motionnet(x)[-1]


_TS = "Simonyan & Zisserman 2014 (two-stream); Feichtenhofer et al. 2016 (conv fusion)"
for _name, _fusion in [("two_stream", "late"), ("two_stream_conv", "conv")]:
    register(ModelSpec(
        name=_name, builder=partial(TwoStream, fusion=_fusion),
        inputs={"rgb": InputSpec(3, 1, 224, min_size=32, layout="BCHW"),
                "flow": InputSpec(20, 10, 224, min_frames=10, min_size=32, layout="BCHW", modality="flow")},
        family="two_stream", ref_classes=101, paper=_TS, published={"source": _TS + " — backbone here: ResNet-18"},
        tiny={"rgb": (1, 32), "flow": (10, 32)}))

register(ModelSpec(
    name="hidden_two_stream", builder=HiddenTwoStream,
    inputs={"rgb": InputSpec(3, 11, 224, min_frames=11, min_size=32)},
    family="two_stream", ref_classes=101, paper="Zhu et al. 2017, Hidden Two-Stream Convolutional Networks",
    published={"source": "Zhu et al. 2017 (MotionNet on 11 frames) — backbone here: ResNet-18"},
    aux_loss=True, tiny={"rgb": (3, 32)}, tiny_kwargs={"frames": 3, "motion_width": 8, "width": 16}))
