"""Inception-v1 family: 2D GoogLeNet-BN, I3D (inflated 3D), S3D (separable) and S3D-G (gated).

One network (:class:`InceptionNet`) with a pluggable *unit*: the k x k (x k) convolution used in
the stem and in the 3x3 branches of every Inception block.

* ``unit="2d"``   : Conv2d (the 2D Inception-v1 with BN that I3D inflates; TSN's backbone family)
* ``unit="3d"``   : full k x k x k Conv3d (I3D, Carreira & Zisserman 2017)
* ``unit="sep"``  : 1xkxk then kx1x1, each with BN+ReLU (S3D, Xie et al. 2018)
* ``gating=True`` : S3D-G: self-gating on every Inception branch output and after Conv_2c

The layout (``features`` Sequential, ``classifier``) matches torchvision's ``S3D`` so a torchvision
s3d state dict loads with ``strict=True``. :func:`inflate_state_dict` turns a 2D model's weights
into a 3D model's (each 2D kernel repeated over time and divided by its temporal size, Sec. 2.4 of
the I3D paper), so an inflated I3D reproduces the 2D model on a temporally constant ("boring")
clip when built with ``temporal_padding="replicate"``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from components.errors import InputError
from components.video.models.layers import ConvBNAct, SelfGating3d, check_clip
from components.video.models.registry import InputSpec, ModelSpec, register

# Inception-v1 blocks: (in, b0_out, b1_mid, b1_out, b2_mid, b2_out, b3_out)
_BLOCKS = {
    "3b": (192, 64, 96, 128, 16, 32, 32), "3c": (256, 128, 128, 192, 32, 96, 64),
    "4b": (480, 192, 96, 208, 16, 48, 64), "4c": (512, 160, 112, 224, 24, 64, 64),
    "4d": (512, 128, 128, 256, 24, 64, 64), "4e": (512, 112, 144, 288, 32, 64, 64),
    "4f": (528, 256, 160, 320, 32, 128, 128), "5b": (832, 256, 160, 320, 32, 128, 128),
    "5c": (832, 384, 192, 384, 48, 128, 128),
}


class Conv3dTPad(nn.Conv3d):
    """Conv3d that pads time by replicating the edge frames (space is zero-padded as usual)."""

    def __init__(self, cin, cout, kernel, stride, padding, **kw):
        self.tpad = padding[0]
        super().__init__(cin, cout, kernel, stride, (0,) + tuple(padding[1:]), **kw)

    def forward(self, x):
        if self.tpad:
            x = F.pad(x, (0, 0, 0, 0, self.tpad, self.tpad), mode="replicate")
        return super().forward(x)


class _Unit:
    """Factory of the k x k (x k) unit and of 1x1 units, for one (dim, kind, bn) choice."""

    def __init__(self, kind: str, bn_eps: float, bn_momentum: float, temporal_padding: str,
                 pool_style: str = "s3d"):
        self.kind, self.dim = kind, 2 if kind == "2d" else 3
        self.bn = {"bn_eps": bn_eps, "bn_momentum": bn_momentum}
        self.tpad = temporal_padding
        self.ceil = pool_style == "googlenet"

    def one(self, cin, cout):
        return ConvBNAct(cin, cout, 1, 1, 0, dim=self.dim, **self.bn)

    def kxk(self, cin, cout, k, stride, pad):
        if self.kind == "sep":
            return nn.Sequential(ConvBNAct(cin, cout, (1, k, k), (1, stride, stride), (0, pad, pad), **self.bn),
                                 ConvBNAct(cout, cout, (k, 1, 1), (stride, 1, 1), (pad, 0, 0), **self.bn))
        unit = ConvBNAct(cin, cout, k, stride, pad, dim=self.dim, **self.bn)
        if self.kind == "3d" and self.tpad == "replicate":
            unit[0] = Conv3dTPad(cin, cout, (k,) * 3, (stride,) * 3, (pad,) * 3, bias=False)
        return unit

    def maxpool(self, k, stride, pad, inner=False):
        """``k``/``stride``/``pad`` as 3-tuples (t, h, w); 2D drops t. With the ``googlenet``
        pool style the strided pools are unpadded with ``ceil_mode`` (torchvision's GoogLeNet;
        the same windows as TensorFlow's 'SAME' pooling of the I3D release on even sizes)."""
        ceil = self.ceil
        if ceil and not inner:
            pad = (0, 0, 0)
        if self.dim == 2:
            return nn.MaxPool2d(k[1:], stride[1:], pad[1:], ceil_mode=ceil)
        return nn.MaxPool3d(k, stride, pad, ceil_mode=ceil)


class InceptionBlock(nn.Module):
    """Four branches (1x1 | 1x1->kxk | 1x1->kxk | pool->1x1) concatenated; optional gating."""

    def __init__(self, u: _Unit, cin, b0, b1m, b1, b2m, b2, b3, gating=False):
        super().__init__()
        self.branch0 = u.one(cin, b0)
        self.branch1 = nn.Sequential(u.one(cin, b1m), u.kxk(b1m, b1, 3, 1, 1))
        self.branch2 = nn.Sequential(u.one(cin, b2m), u.kxk(b2m, b2, 3, 1, 1))
        self.branch3 = nn.Sequential(u.maxpool((3, 3, 3), (1, 1, 1), (1, 1, 1), inner=True), u.one(cin, b3))
        self.gates = nn.ModuleList([SelfGating3d(c) for c in (b0, b1, b2, b3)]) if gating else None
        self.out_channels = b0 + b1 + b2 + b3

    def forward(self, x):
        ys = [self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)]
        if self.gates is not None:
            ys = [g(y) for g, y in zip(self.gates, ys)]
        return torch.cat(ys, 1)


class InceptionFeatures(nn.Sequential):
    """The convolutional trunk (torchvision's ``S3D.features`` layout). Calling it returns the clip
    embedding (B, 1024): the stride-1 average pool of the S3D head (window ``pool``, clipped to
    the map so small inputs work) averaged over what remains. ``feature_map`` returns the map."""

    def __init__(self, *layers, pool, dim):
        super().__init__(*layers)
        self.pool, self.dim = pool, dim     # pool None: global average (torchvision GoogLeNet)

    def feature_map(self, x):
        check_clip(x, self.dim + 2, "InceptionNet")
        for m in self:
            x = m(x)
        return x

    def forward(self, x):
        m = self.feature_map(x)
        if self.pool is None:
            return m.flatten(2).mean(-1)
        k = tuple(min(a, b) for a, b in zip(self.pool, m.shape[2:]))
        pool = F.avg_pool3d if self.dim == 3 else F.avg_pool2d
        return pool(m, k, 1).flatten(2).mean(-1)


class InceptionNet(nn.Module):
    """Inception-v1 (BN) in 2D or 3D; see the module docstring for ``unit`` and ``gating``.

    ``pool`` is the final average pool (t, h, w) with stride 1 (torchvision S3D: (2, 7, 7)); None
    is a global average. ``pool_style``: ``s3d`` (padded max-pools, torchvision's S3D) or
    ``googlenet`` (unpadded ceil-mode max-pools, torchvision's GoogLeNet and the I3D release).
    ``model.features(x)`` gives the (B, 1024) clip embedding, ``model(x)`` the logits.
    """

    def __init__(self, num_classes=400, unit="3d", gating=False, in_channels=3, dropout=0.2,
                 bn_eps=1e-3, bn_momentum=0.1, temporal_padding="zeros", pool=(2, 7, 7), pool_style="s3d"):
        super().__init__()
        if unit not in ("2d", "3d", "sep"):
            raise ValueError(f"unit must be 2d, 3d or sep, got {unit!r}")
        if pool_style not in ("s3d", "googlenet"):
            raise ValueError(f"pool_style must be s3d or googlenet, got {pool_style!r}")
        u = _Unit(unit, bn_eps, bn_momentum, temporal_padding, pool_style)
        self.dim = u.dim
        conv2c = u.kxk(64, 192, 3, 1, 1)
        if gating:
            conv2c = nn.Sequential(conv2c, SelfGating3d(192))
        blocks = {k: InceptionBlock(u, *v, gating=gating) for k, v in _BLOCKS.items()}
        self.features = InceptionFeatures(
            u.kxk(in_channels, 64, 7, 2, 3),
            u.maxpool((1, 3, 3), (1, 2, 2), (0, 1, 1)),
            u.one(64, 64),
            conv2c,
            u.maxpool((1, 3, 3), (1, 2, 2), (0, 1, 1)),
            blocks["3b"], blocks["3c"],
            u.maxpool((3, 3, 3), (2, 2, 2), (1, 1, 1)),
            blocks["4b"], blocks["4c"], blocks["4d"], blocks["4e"], blocks["4f"],
            u.maxpool((2, 2, 2), (2, 2, 2), (0, 0, 0)),
            blocks["5b"], blocks["5c"],
            pool=None if pool is None else tuple(pool) if self.dim == 3 else tuple(pool[1:]), dim=self.dim)
        self.feature_dim = 1024
        conv = nn.Conv3d if self.dim == 3 else nn.Conv2d
        self.classifier = nn.Sequential(nn.Dropout(dropout), conv(1024, num_classes, 1, bias=True))
        for m in self.modules():
            if isinstance(m, (nn.Conv3d, nn.Conv2d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if isinstance(m, (nn.Conv3d, nn.Conv2d, nn.Linear)) and m.bias is not None:
                nn.init.zeros_(m.bias)

    def forward(self, x):
        f = self.features(x)
        return self.classifier(f.view(f.shape + (1,) * self.dim)).flatten(1)


def inflate_state_dict(state_2d: dict, model_3d: nn.Module) -> dict:
    """Inflate 2D weights into ``model_3d``'s state dict (I3D "bootstrapping", Sec. 2.4).

    Every tensor of ``model_3d`` takes the same-named tensor of ``state_2d``; a 2D kernel
    (O, I, kh, kw) becomes (O, I, kt, kh, kw) by repeating it kt times and dividing by kt, so a
    clip of identical frames gives the 2D response. Raises InputError on a missing name or a
    shape that cannot be inflated. Returns the new state dict (load it with ``strict=True``).
    """
    out = {}
    for name, target in model_3d.state_dict().items():
        if name not in state_2d:
            raise InputError(f"2D state dict has no tensor '{name}'", field=name,
                             fix="inflate from the matching 2D architecture (InceptionNet(unit='2d'))")
        w = state_2d[name]
        if w.dim() + 1 == target.dim() and target.dim() == 5:
            kt = target.shape[2]
            w = w.unsqueeze(2).repeat(1, 1, kt, 1, 1) / kt
        if tuple(w.shape) != tuple(target.shape):
            raise InputError(f"cannot inflate '{name}': 2D shape {tuple(state_2d[name].shape)} vs 3D "
                             f"{tuple(target.shape)}", field=name)
        out[name] = w.to(target.dtype).clone()
    return out


def googlenet_bn(num_classes=1000, in_channels=3, **kw) -> InceptionNet:
    """2D Inception-v1 with batch norm (the network I3D inflates; BN-Inception family of TSN).

    Same computation as torchvision's ``GoogLeNet(aux_logits=False, transform_input=False)``
    (ceil-mode max-pools, global average pool); its state dict loads through
    :func:`components.video.models.weights.googlenet_from_torchvision`."""
    kw.setdefault("pool_style", "googlenet")
    kw.setdefault("pool", None)
    return InceptionNet(num_classes, unit="2d", in_channels=in_channels, **kw)


def i3d(num_classes=400, **kw) -> InceptionNet:
    """I3D: Inception-v1 with every kernel inflated to 3D (Carreira & Zisserman 2017), with the
    release's pooling (unpadded ceil-mode max-pools: the windows of TF 'SAME' on even sizes),
    so it inflates :func:`googlenet_bn` exactly."""
    kw.setdefault("pool_style", "googlenet")
    return InceptionNet(num_classes, unit="3d", **kw)


def s3d(num_classes=400, **kw) -> InceptionNet:
    """S3D: I3D with every k x k x k convolution made separable (1 x k x k then k x 1 x 1)."""
    return InceptionNet(num_classes, unit="sep", **kw)


def s3d_g(num_classes=400, **kw) -> InceptionNet:
    """S3D-G: S3D plus self-gating of every Inception branch output (and of Conv_2c)."""
    return InceptionNet(num_classes, unit="sep", gating=True, **kw)


_S3D_ABSTRACT = "Xie et al. 2018 abstract: S3D 1.5x fewer FLOPs than I3D; S3D-G 34% fewer"
_IN = {"rgb": InputSpec(3, 64, 224, min_frames=8, min_size=64, frame_stride=1)}
register(ModelSpec(
    name="i3d", builder=i3d, inputs=_IN, family="inception3d",
    paper="Carreira & Zisserman 2017, Quo Vadis, Action Recognition? (I3D)",
    published={"source": "Carreira & Zisserman 2017 (64x224x224 RGB input)"}, tiny={"rgb": (8, 64)}))
register(ModelSpec(
    name="s3d", builder=s3d, inputs=_IN, family="inception3d",
    paper="Xie et al. 2018, Rethinking Spatiotemporal Feature Learning (S3D)",
    ref_params=8_320_048, ref_source="torchvision.models.video.s3d (same classes -> strict state_dict load)",
    published={"params_m": 8.32, "gflops": 17.98, "input": {"rgb": (16, 224)},
               "source": "torchvision model docs (num_params, GFLOPS; the GFLOPS match 16x224^2); " + _S3D_ABSTRACT},
    tiny={"rgb": (8, 64)}))
register(ModelSpec(
    name="s3d_g", builder=s3d_g, inputs=_IN, family="inception3d",
    paper="Xie et al. 2018, Rethinking Spatiotemporal Feature Learning (S3D-G)",
    published={"source": _S3D_ABSTRACT}, tiny={"rgb": (8, 64)}))
