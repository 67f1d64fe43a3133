"""One generic 3D ResNet builder with pluggable stems, blocks and convolution builders.

``VideoResNet(block, conv_makers, layers, stem)`` follows torchvision's VideoResNet layout
(``stem``, ``layer1..4``, ``fc``), so R3D-18, MC3-18 and R(2+1)D-18 load torchvision
state dicts with ``strict=True``. The same pieces build:

* R3D-18/34   : BasicBlock + Conv3DSimple everywhere
* MC3-18      : Conv3DSimple in layer1, Conv3DNoTemporal (2D) after ("mixed convolutions")
* R(2+1)D-18/34: BasicBlock + Conv2Plus1D (spatial 1x3x3 then temporal 3x1x1, ``midplanes``
  chosen so the block has the parameters of its 3D counterpart), R2Plus1dStem
* I3D-ResNet-50: Bottleneck (temporal kernel on conv_a, 1x3x3 conv_b), 5x7x7 stem
* SlowFast pathways (see ``slowfast.py``) and X3D stages (``x3d.py``) reuse :func:`make_layer`
* a frame-wise 2D ResNet (kernels 1xkxk), the backbone of two-stream and TSN (``frame_resnet``)

A convolution builder is a class ``(in, out, midplanes, stride, padding)`` with a static
``get_downsample_stride(stride)`` giving the shortcut's stride.
"""
from __future__ import annotations

from typing import Sequence

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from components.video.models.layers import check_clip
from components.video.models.registry import InputSpec, ModelSpec, register


# ---------------------------------------------------------------- convolution builders
class TemporalConv3d(nn.Conv3d):
    """A Conv3d whose kernel is kt x 1 x 1 (temporal or pointwise). Same parameters and result as
    ``nn.Conv3d``; when it has no spatial stride or padding it runs as a 2D convolution with a
    (kt, 1) kernel over a free (B, C, T, H*W) view, which is markedly faster on CPU than the 3D
    kernel (see benchmarks/bench_video_models.py). ``TemporalConv3d.fast = False`` turns the 2D
    path off (for that benchmark's ablation)."""

    fast = True

    def forward(self, x):
        kt, kh, kw = self.kernel_size
        if not self.fast or (kh, kw) != (1, 1) or self.stride[1:] != (1, 1) or tuple(self.padding[1:]) != (0, 0) \
                or self.dilation != (1, 1, 1) or self.padding_mode != "zeros" or not x.is_contiguous():
            return super().forward(x)
        b, c, t, h, w = x.shape
        y = F.conv2d(x.view(b, c, t, h * w), self.weight.view(self.out_channels, -1, kt, 1), self.bias,
                     (self.stride[0], 1), (self.padding[0], 0), 1, self.groups)
        return y.view(b, self.out_channels, y.shape[2], h, w)


class Conv3DSimple(nn.Conv3d):
    """Full 3x3x3 convolution (R3D)."""

    def __init__(self, in_planes, out_planes, midplanes=None, stride=1, padding=1):
        super().__init__(in_planes, out_planes, (3, 3, 3), stride, padding, bias=False)

    @staticmethod
    def get_downsample_stride(stride):
        return (stride, stride, stride)


class Conv3DNoTemporal(nn.Conv3d):
    """1x3x3 convolution: a 2D convolution applied frame by frame (MC3, SlowFast, I3D-ResNet)."""

    def __init__(self, in_planes, out_planes, midplanes=None, stride=1, padding=1):
        super().__init__(in_planes, out_planes, (1, 3, 3), (1, stride, stride), (0, padding, padding), bias=False)

    @staticmethod
    def get_downsample_stride(stride):
        return (1, stride, stride)


class Conv2Plus1D(nn.Sequential):
    """(2+1)D factorisation: 1x3x3 (in -> midplanes), BN, ReLU, 3x1x1 (midplanes -> out)."""

    def __init__(self, in_planes, out_planes, midplanes, stride=1, padding=1):
        super().__init__(
            nn.Conv3d(in_planes, midplanes, (1, 3, 3), (1, stride, stride), (0, padding, padding), bias=False),
            nn.BatchNorm3d(midplanes),
            nn.ReLU(inplace=True),
            TemporalConv3d(midplanes, out_planes, (3, 1, 1), (stride, 1, 1), (padding, 0, 0), bias=False))

    @staticmethod
    def get_downsample_stride(stride):
        return (stride, stride, stride)


class ChannelwiseConv3d(nn.Conv3d):
    """Depthwise 3x3x3 convolution with spatial-only stride (X3D's conv_b)."""

    def __init__(self, in_planes, out_planes, midplanes=None, stride=1, padding=1):
        super().__init__(in_planes, out_planes, (3, 3, 3), (1, stride, stride), padding, bias=False,
                         groups=in_planes)

    @staticmethod
    def get_downsample_stride(stride):
        return (1, stride, stride)


def _midplanes(inplanes: int, planes: int) -> int:
    # parameters of a (2+1)D pair == those of one 3x3x3 convolution (R(2+1)D paper, Sec. 3.5)
    return (inplanes * planes * 3 * 3 * 3) // (inplanes * 3 * 3 + 3 * planes)


# ---------------------------------------------------------------- blocks
class BasicBlock(nn.Module):
    """Two convolutions + identity (or 1x1x1 projection) shortcut."""

    expansion = 1

    def __init__(self, inplanes, planes, conv_builder, stride=1, downsample=None):
        super().__init__()
        mid = _midplanes(inplanes, planes)
        self.conv1 = nn.Sequential(conv_builder(inplanes, planes, mid, stride), nn.BatchNorm3d(planes),
                                   nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(conv_builder(planes, planes, mid), nn.BatchNorm3d(planes))
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv2(self.conv1(x)) + residual)


class Bottleneck(nn.Module):
    """conv_a (kt x 1 x 1) -> conv_b (conv_builder, carries the stride) -> conv_c (1x1x1), x4 out.

    ``temporal_kernel`` is conv_a's temporal size (1 or 3: I3D-ResNet / SlowFast "inflation").
    """

    expansion = 4

    def __init__(self, inplanes, planes, conv_builder, stride=1, downsample=None, temporal_kernel=1):
        super().__init__()
        kt = temporal_kernel
        self.conv1 = nn.Sequential(TemporalConv3d(inplanes, planes, (kt, 1, 1), padding=(kt // 2, 0, 0), bias=False),
                                   nn.BatchNorm3d(planes), nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(conv_builder(planes, planes, _midplanes(planes, planes), stride),
                                   nn.BatchNorm3d(planes), nn.ReLU(inplace=True))
        self.conv3 = nn.Sequential(TemporalConv3d(planes, planes * 4, 1, bias=False), nn.BatchNorm3d(planes * 4))
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        residual = x if self.downsample is None else self.downsample(x)
        return self.relu(self.conv3(self.conv2(self.conv1(x))) + residual)


def make_layer(block, conv_builder, inplanes: int, planes: int, blocks: int, stride: int = 1,
               block_kwargs: Sequence[dict] | dict | None = None, out_planes: int | None = None) -> nn.Sequential:
    """A residual stage of ``blocks`` blocks; the first one strides and projects the shortcut.

    ``block_kwargs``: one dict for all blocks or a list with one dict per block.
    ``out_planes`` defaults to ``planes * block.expansion``.
    """
    kws = block_kwargs if isinstance(block_kwargs, (list, tuple)) else [block_kwargs or {}] * blocks
    out = planes * block.expansion if out_planes is None else out_planes
    downsample = None
    if stride != 1 or inplanes != out:
        downsample = nn.Sequential(
            TemporalConv3d(inplanes, out, 1, stride=conv_builder.get_downsample_stride(stride), bias=False),
            nn.BatchNorm3d(out))
    layers = [block(inplanes, planes, conv_builder, stride, downsample, **kws[0])]
    for i in range(1, blocks):
        layers.append(block(out, planes, conv_builder, **kws[i]))
    return nn.Sequential(*layers)


# ---------------------------------------------------------------- stems
class BasicStem(nn.Sequential):
    """R3D/MC3 stem: 3x7x7 conv, stride 1x2x2 (no pooling)."""

    def __init__(self, in_channels=3, out=64):
        super().__init__(nn.Conv3d(in_channels, out, (3, 7, 7), (1, 2, 2), (1, 3, 3), bias=False),
                         nn.BatchNorm3d(out), nn.ReLU(inplace=True))


class R2Plus1dStem(nn.Sequential):
    """R(2+1)D stem: 1x7x7 (-> 45 for out=64) then 3x1x1 (-> out)."""

    def __init__(self, in_channels=3, out=64):
        mid = out * 45 // 64
        super().__init__(nn.Conv3d(in_channels, mid, (1, 7, 7), (1, 2, 2), (0, 3, 3), bias=False),
                         nn.BatchNorm3d(mid), nn.ReLU(inplace=True),
                         TemporalConv3d(mid, out, (3, 1, 1), 1, (1, 0, 0), bias=False),
                         nn.BatchNorm3d(out), nn.ReLU(inplace=True))


class PoolStem(nn.Sequential):
    """ImageNet-style stem: kt x 7 x 7 conv stride 1x2x2, BN, ReLU, 1x3x3 max-pool stride 1x2x2
    (I3D-ResNet, SlowFast pathways, the frame-wise 2D ResNet)."""

    def __init__(self, in_channels=3, out=64, temporal_kernel=1):
        kt = temporal_kernel
        super().__init__(nn.Conv3d(in_channels, out, (kt, 7, 7), (1, 2, 2), (kt // 2, 3, 3), bias=False),
                         nn.BatchNorm3d(out), nn.ReLU(inplace=True),
                         nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)))


def init_weights(model: nn.Module) -> None:
    """torchvision's initialisation: Kaiming-normal (fan_out) convs, BN = (1, 0), Linear N(0, 0.01)."""
    for m in model.modules():
        if isinstance(m, (nn.Conv3d, nn.Conv2d)):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm3d, nn.BatchNorm2d)):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)


# ---------------------------------------------------------------- the generic network
class VideoResNet(nn.Module):
    """stem -> layer1..layerN -> global average pool -> (dropout) -> fc.

    Args:
        block: BasicBlock or Bottleneck (or any block with the same signature).
        conv_makers: one convolution builder per stage.
        layers: blocks per stage.
        stem: the stem module (its output width must be ``stem_out``).
        planes / strides: per-stage width and (spatial, and temporal for 3D builders) stride.
        block_kwargs: per stage, a dict or a per-block list of dicts for the block.
        stage_pools: {stage index: pooling module applied after that stage}.
    """

    def __init__(self, block, conv_makers, layers, stem, num_classes=400, planes=(64, 128, 256, 512),
                 strides=(1, 2, 2, 2), stem_out=64, block_kwargs=None, stage_pools=None, dropout=0.0,
                 zero_init_residual=False):
        super().__init__()
        self.stem = stem
        self.stage_names = []
        inplanes = stem_out
        for i, (conv, n, p, s) in enumerate(zip(conv_makers, layers, planes, strides)):
            kw = block_kwargs[i] if block_kwargs else None
            setattr(self, f"layer{i + 1}", make_layer(block, conv, inplanes, p, n, s, kw))
            self.stage_names.append(f"layer{i + 1}")
            inplanes = p * block.expansion
        self.stage_pools = nn.ModuleDict({str(k): v for k, v in (stage_pools or {}).items()})
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.feature_dim = inplanes
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(inplanes, num_classes)
        init_weights(self)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, Bottleneck):
                    nn.init.zeros_(m.conv3[1].weight)
                elif isinstance(m, BasicBlock):
                    nn.init.zeros_(m.conv2[1].weight)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's output (B, C, T', H', W')."""
        check_clip(x, 5, type(self).__name__)
        x = self.stem(x)
        for i, name in enumerate(self.stage_names):
            x = getattr(self, name)(x)
            if str(i) in self.stage_pools:
                x = self.stage_pools[str(i)](x)
        return x

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Clip embedding (B, feature_dim): globally pooled last-stage features."""
        return self.avgpool(self.feature_map(x)).flatten(1)

    def forward(self, x):
        return self.fc(self.dropout(self.features(x)))


# ---------------------------------------------------------------- named constructors
def _basic_resnet(conv_makers, stem_cls, depth, num_classes, in_channels, width, **kw) -> VideoResNet:
    return VideoResNet(BasicBlock, conv_makers, _DEPTHS[depth], stem_cls(in_channels, width), num_classes,
                       planes=tuple(width * m for m in (1, 2, 4, 8)), stem_out=width, **kw)


def r3d(depth: int = 18, num_classes: int = 400, in_channels: int = 3, width: int = 64, **kw) -> VideoResNet:
    """R3D-18/34: 3x3x3 convolutions everywhere (Tran et al. 2018; Hara et al. 2017).
    ``width`` (64) scales every stage, for small-budget training."""
    return _basic_resnet([Conv3DSimple] * 4, BasicStem, depth, num_classes, in_channels, width, **kw)


def mc3(depth: int = 18, num_classes: int = 400, in_channels: int = 3, width: int = 64, **kw) -> VideoResNet:
    """MC3-18: 3D convolutions in the first residual stage, 2D (1x3x3) after."""
    return _basic_resnet([Conv3DSimple] + [Conv3DNoTemporal] * 3, BasicStem, depth, num_classes, in_channels,
                         width, **kw)


def r2plus1d(depth: int = 18, num_classes: int = 400, in_channels: int = 3, width: int = 64, **kw) -> VideoResNet:
    """R(2+1)D-18/34: every 3x3x3 convolution factorised into 1x3x3 + 3x1x1."""
    return _basic_resnet([Conv2Plus1D] * 4, R2Plus1dStem, depth, num_classes, in_channels, width, **kw)


def i3d_resnet50(num_classes: int = 400, in_channels: int = 3, dropout: float = 0.5, **kw) -> VideoResNet:
    """I3D-ResNet-50 (Wang et al. 2018, as in PySlowFast/pytorchvideo ``i3d_r50``): 2D ResNet-50
    with inflated 3x1x1 conv_a in alternate blocks, a 5x7x7 stem and temporal pooling after res2."""
    t3 = {"temporal_kernel": 3}
    t1 = {"temporal_kernel": 1}
    kinds = [[t3] * 3, [t3, t1] * 2, [t3, t1] * 3, [t1, t3, t1]]
    return VideoResNet(Bottleneck, [Conv3DNoTemporal] * 4, (3, 4, 6, 3), PoolStem(in_channels, 64, 5),
                       num_classes, block_kwargs=kinds,
                       stage_pools={0: nn.MaxPool3d((2, 1, 1), (2, 1, 1))}, dropout=dropout, **kw)


class FrameResNet(nn.Module):
    """A 2D ResNet applied to single images ``(B, C, H, W)``: a VideoResNet whose kernels are all
    1 x k x k (stem 1x7x7 + max-pool, Conv3DNoTemporal blocks) run on a length-1 clip.

    The shared backbone of two-stream (spatial RGB stream, temporal stream over 2L stacked flow
    channels) and TSN. ``feature_map`` returns (B, C', H', W').
    """

    def __init__(self, depth: int = 18, in_channels: int = 3, num_classes: int = 1000, width: int = 64):
        super().__init__()
        block = BasicBlock if depth in (18, 34) else Bottleneck
        self.net = VideoResNet(block, [Conv3DNoTemporal] * 4, _DEPTHS[depth], PoolStem(in_channels, width),
                               num_classes, planes=tuple(width * m for m in (1, 2, 4, 8)), stem_out=width)
        self.feature_dim = self.net.feature_dim

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        check_clip(x, 4, "FrameResNet")
        return self.net.feature_map(x.unsqueeze(2)).squeeze(2)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature_map(x).mean(dim=(2, 3))

    def forward(self, x):
        return self.net.fc(self.features(x))


_DEPTHS = {10: (1, 1, 1, 1), 18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}

_TV = "torchvision.models.video (same classes -> strict state_dict load)"
_RGB112 = {"rgb": InputSpec(3, 16, 112, min_frames=2, min_size=32, frame_stride=None)}
_TV_PUB = "torchvision model docs (GFLOPS at 16x112x112)"
for _name, _fn, _depth, _ref, _pub, _paper in [
    ("r3d_18", r3d, 18, 33_371_472, {"params_m": 33.37, "gflops": 40.70, "source": _TV_PUB},
     "Tran et al. 2018, A Closer Look at Spatiotemporal Convolutions (R3D)"),
    ("r3d_34", r3d, 34, None, {},
     "Tran et al. 2018 (R3D-34)"),
    ("mc3_18", mc3, 18, 11_695_440, {"params_m": 11.70, "gflops": 43.34, "source": _TV_PUB},
     "Tran et al. 2018 (MC3)"),
    ("r2plus1d_18", r2plus1d, 18, 31_505_325, {"params_m": 31.51, "gflops": 40.52, "source": _TV_PUB},
     "Tran et al. 2018 (R(2+1)D)"),
    ("r2plus1d_34", r2plus1d, 34, None, {},
     "Tran et al. 2018 (R(2+1)D-34)"),
]:
    register(ModelSpec(
        name=_name, builder=partial(_fn, _depth),
        inputs=_RGB112, family="resnet3d", paper=_paper, ref_params=_ref,
        ref_source=_TV if _ref else "", published=_pub, tiny={"rgb": (2, 32)}))

register(ModelSpec(
    name="i3d_r50", builder=i3d_resnet50,
    inputs={"rgb": InputSpec(3, 8, 224, min_frames=2, min_size=32, frame_stride=8)},
    family="resnet3d", paper="Wang et al. 2018, Non-local Neural Networks (I3D-ResNet-50 baseline)",
    ref_params=28_040_000, ref_params_atol=5_000, ref_source="pytorchvideo model zoo i3d_r50 (28.04M)",
    published={"params_m": 28.04, "gflops": 37.53, "source": "pytorchvideo model zoo, K400 I3D R50 8x8 (256^2 test crop)",
               "input": {"rgb": (8, 256)}},
    tiny={"rgb": (2, 32)}))
