"""Two-stream networks: a spatial 2D CNN on an RGB frame + a temporal 2D CNN on 2L stacked flow
channels (Simonyan & Zisserman 2014), fused

* late: the (weighted) average of the two streams' softmax scores. ``forward`` returns the log of
  that average, so ``softmax(forward(x))`` *is* the fused score and cross-entropy on it is the
  negative log-likelihood of the fused prediction;
* ``conv`` at the last conv layer (Feichtenhofer et al. 2016, 2D variant: stack both feature maps,
  1x1 conv 2C -> C, then one classifier);
* ``conv3d`` (:class:`TwoStream3DFusion`, Feichtenhofer et al. 2016 "3D Conv + 3D Pooling"): both
  streams run on T time steps, their last-layer maps are stacked over time (2C x T x h x w),
  fused by a 3x3x3 convolution 2C -> C and 3D max-pooled, then classified.

Hidden two-stream (Zhu et al. 2017) replaces the precomputed flow by a :class:`MotionNet` trained
end to end with its unsupervised losses.

Inputs (``spec.inputs``): ``rgb`` (B, 3, H, W) — a (B, 3, T, H, W) clip uses its middle frame —
and ``flow`` (B, 2L, H, W) stacked u1, v1, u2, v2, ... — a (B, 2, L, H, W) tensor is stacked
in that order.
"""
from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from components.errors import ConfigError, InputError
from components.video.models.backbones2d import backbone2d
from components.video.models.layers import ClipClassifier, ClippedMaxPool3d, check_clip, unpack_inputs
from components.video.models.motionnet import MotionNet, unsupervised_flow_losses
from components.video.models.registry import InputSpec, ModelSpec, register
from components.video.transforms import NORMALIZATIONS


def middle_frame(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) as is; (B, C, T, H, W) -> its middle frame."""
    return x[:, :, x.shape[2] // 2] if x.dim() == 5 else x


def stack_flow(x: torch.Tensor) -> torch.Tensor:
    """(B, 2L, H, W) as is; (B, 2, L, H, W) -> (B, 2L, H, W) ordered u1, v1, u2, v2, ..."""
    if x.dim() == 5:
        b, c, t, h, w = x.shape
        return x.transpose(1, 2).reshape(b, c * t, h, w)
    return x


def late_fusion(spatial_logits, temporal_logits, weights=(1.0, 1.0)) -> torch.Tensor:
    """log of the weighted mean of the two streams' softmax scores (B, classes)."""
    ws, wt = (float(w) / (weights[0] + weights[1]) for w in weights)
    p = ws * F.softmax(spatial_logits.float(), 1) + wt * F.softmax(temporal_logits.float(), 1)
    return torch.log(p.clamp_min(1e-12))


class StreamFusion(nn.Module):
    """Two 2D trunks and a fusion rule: ``late`` (softmax scores averaged with ``late_weights``
    (spatial, temporal); the TSN paper uses 1 : 1.5) or ``conv`` (2D 1x1)."""

    def __init__(self, num_classes, spatial_in, temporal_in, fusion="late", backbone="resnet18", width=64,
                 dropout=0.5, late_weights=(1.0, 1.0)):
        super().__init__()
        if fusion not in ("late", "conv"):
            raise ConfigError(f"two-stream fusion must be 'late' or 'conv', got {fusion!r}", param="fusion")
        if len(late_weights) != 2 or min(late_weights) < 0 or sum(late_weights) <= 0:
            raise ConfigError(f"late_weights must be two non-negative numbers, got {late_weights!r}",
                              param="late_weights")
        self.fusion, self.late_weights = fusion, tuple(late_weights)
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
        return late_fusion(self.head_spatial(f[:, :c]), self.head_temporal(f[:, c:]), self.late_weights)


class TwoStream(ClipClassifier):
    """Spatial RGB stream + temporal stream over ``2 * flow_frames`` stacked flow channels."""

    def __init__(self, num_classes, flow_frames=10, fusion="late", backbone="resnet18", width=64, dropout=0.5,
                 late_weights=(1.0, 1.0)):
        super().__init__()
        self.streams = StreamFusion(num_classes, 3, 2 * flow_frames, fusion, backbone, width, dropout, late_weights)
        self.feature_dim = self.streams.feature_dim

    def features(self, x):
        rgb, flow = unpack_inputs(x, ("rgb", "flow"), "TwoStream")
        rgb, flow = middle_frame(rgb), stack_flow(flow)
        check_clip(rgb, 4, "TwoStream rgb")
        check_clip(flow, 4, "TwoStream flow")
        return self.streams.embed(rgb, flow)

    def forward(self, x):
        return self.streams.classify(self.features(x))


class TwoStream3DFusion(ClipClassifier):
    """Two-stream with 3D conv + 3D pooling fusion (Feichtenhofer et al. 2016, Sec. 3.2 / Table 2).

    Inputs: ``rgb`` (B, 3, T, H, W) — T frames, one per time step — and ``flow`` (B, 2, T*L, H, W)
    — T consecutive stacks of L flow fields (stack t: fields t*L .. t*L+L-1, as 2L channels). Each
    stream's 2D trunk runs on every step; the two (B, C, h, w) maps of a step are stacked over the
    T steps into (B, 2C, T, h, w), fused by a 3x3x3 convolution 2C -> C (BN, ReLU) and a 3x3x3
    max-pool of stride 2 (clipped to short inputs), then averaged and classified.
    Differences from the paper: ResNet trunks instead of VGG-M/VGG-16, no separate temporal tower
    kept beside the fused one, global average instead of fc6/fc7 after the pooling.
    """

    def __init__(self, num_classes, flow_frames=10, steps=5, backbone="resnet18", width=64, dropout=0.5):
        super().__init__()
        self.steps, self.flow_frames = steps, flow_frames
        self.spatial = backbone2d(backbone, 3, width)
        self.temporal = backbone2d(backbone, 2 * flow_frames, width)
        c = self.spatial.feature_dim
        self.fuse = nn.Sequential(nn.Conv3d(2 * c, c, 3, 1, 1, bias=False), nn.BatchNorm3d(c), nn.ReLU(inplace=True))
        self.pool = ClippedMaxPool3d(3, 2, 1)
        self.feature_dim = c
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(c, num_classes))

    def fused_map(self, x) -> torch.Tensor:
        rgb, flow = unpack_inputs(x, ("rgb", "flow"), "TwoStream3DFusion")
        check_clip(rgb, 5, "TwoStream3DFusion rgb")
        check_clip(flow, 5, "TwoStream3DFusion flow")
        b, t, L = rgb.shape[0], self.steps, self.flow_frames
        if rgb.shape[2] != t or flow.shape[2] != t * L or flow.shape[1] != 2:
            raise InputError(f"TwoStream3DFusion(steps={t}, flow_frames={L}) needs rgb (B, 3, {t}, H, W) and flow "
                             f"(B, 2, {t * L}, H, W), got {tuple(rgb.shape)} and {tuple(flow.shape)}", field="x")
        frames = rgb.transpose(1, 2).reshape(b * t, 3, *rgb.shape[-2:])                    # (B*T, 3, H, W)
        stacks = flow.view(b, 2, t, L, *flow.shape[-2:]).permute(0, 2, 3, 1, 4, 5)          # B, T, L, 2, H, W
        stacks = stacks.reshape(b * t, 2 * L, *flow.shape[-2:])                             # u1 v1 u2 v2 ...
        ms, mt = self.spatial.feature_map(frames), self.temporal.feature_map(stacks)       # (B*T, C, h, w)
        m = torch.cat([ms, mt], 1)
        m = m.view(b, t, *m.shape[1:]).transpose(1, 2)                                     # (B, 2C, T, h, w)
        return self.pool(self.fuse(m))

    def features(self, x):
        return self.fused_map(x).flatten(2).mean(-1)


#: end-to-end stage of the reference (ucf101_split*_unsup_end): the MotionNet losses at weight 1
#: beside the action loss, SSIM weights a tenth of pre-training's (0.016 .. 0.001)
END_TO_END_LOSS = {"ssim_weight_per_res": 0.0005}

#: default ``aux_weight`` of :class:`HiddenTwoStream`: the MotionNet losses are sums over the
#: clip's T-1 frame pairs and 4 scales of a Charbonnier in pixel units (beta 255), so at
#: initialisation the photometric term is ~140-520x the classification cross-entropy even on
#: [0, 1] frames (procedural motion clips, 4-11 frames, 16-32 px; docs/video-models.md); 0.01
#: brings it to 1.4-5.2x, so neither term swamps the other. (The reference trains end to end at
#: weight 1 after MotionNet pre-training.)
AUX_WEIGHT = 0.01


class HiddenTwoStream(ClipClassifier):
    """Spatial stream on the middle frame + MotionNet -> temporal stream on the estimated flow.

    Input: an RGB clip (B, 3, T, H, W) (T = L + 1 frames give L flow fields), normalised with
    ``input_norm`` (a :data:`~components.video.transforms.NORMALIZATIONS` key; None: frames in
    [0, 1]). ``forward_train`` returns ``(logits, {"photometric": ..., "smoothness": ...,
    "ssim": ...})``; add those to the task loss so MotionNet learns flow end to end
    (``aux_weight`` scales them, default :data:`AUX_WEIGHT`). The losses are computed on the
    frames mapped back to [0, 1] (:meth:`unit_frames`), the range the reference's photometric
    beta of 255 assumes. Pre-train MotionNet alone first (``pretrain`` stage of the video
    pipeline), as the paper does.
    """

    def __init__(self, num_classes, frames=11, fusion="late", backbone="resnet18", width=64, motion_width=32,
                 aux_weight=AUX_WEIGHT, input_norm="imagenet", dropout=0.5):
        super().__init__()
        if input_norm is not None and input_norm not in NORMALIZATIONS:
            raise ConfigError(f"HiddenTwoStream: input_norm must be one of {sorted(NORMALIZATIONS)} or None "
                              f"(frames in [0, 1]), got {input_norm!r}")
        if aux_weight < 0:
            raise ConfigError(f"HiddenTwoStream: aux_weight must be >= 0, got {aux_weight}")
        self.frames, self.aux_weight, self.input_norm = frames, aux_weight, input_norm
        mean, std = NORMALIZATIONS[input_norm] if input_norm else ((0.0,) * 3, (1.0,) * 3)
        # not in the state dict: a property of the input pipeline, not a learned weight
        self.register_buffer("frame_mean", torch.tensor(mean).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("frame_std", torch.tensor(std).view(1, 3, 1, 1, 1), persistent=False)
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

    def unit_frames(self, x):
        """The input clip mapped back to [0, 1] (undoes ``input_norm``) for the MotionNet losses."""
        # .to(x): the pretrain stage moves only the MotionNet to the training device
        return x * self.frame_std.to(x) + self.frame_mean.to(x)

    def forward_train(self, x):
        f, flows = self._run(x)
        aux = unsupervised_flow_losses(self.unit_frames(x), flows, **END_TO_END_LOSS)
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
    name="two_stream_conv3d", builder=TwoStream3DFusion,
    inputs={"rgb": InputSpec(3, 5, 224, min_frames=1, min_size=32),
            "flow": InputSpec(2, 50, 224, min_frames=10, min_size=32, modality="flow")},
    family="two_stream", ref_classes=101, paper=_TS,
    published={"source": "Feichtenhofer et al. 2016 (3D conv + 3D pooling fusion, T=5 steps of L=10 flow "
                         "fields) — backbone here: ResNet-18"},
    tiny={"rgb": (2, 32), "flow": (4, 32)}, tiny_kwargs={"flow_frames": 2, "steps": 2, "width": 16}))

register(ModelSpec(
    name="hidden_two_stream", builder=HiddenTwoStream,
    inputs={"rgb": InputSpec(3, 11, 224, min_frames=11, min_size=32)},
    family="two_stream", ref_classes=101, paper="Zhu et al. 2017, Hidden Two-Stream Convolutional Networks",
    published={"source": "Zhu et al. 2017 (MotionNet on 11 frames) — backbone here: ResNet-18"},
    aux_loss=True, tiny={"rgb": (3, 32)}, tiny_kwargs={"frames": 3, "motion_width": 8, "width": 16}))
