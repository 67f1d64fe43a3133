"""SlowFast networks (Feichtenhofer et al. 2019), built from the generic 3D ResNet pieces.

Two ResNet-50 pathways made with :func:`resnet3d.make_layer`:

* Slow: T frames at a large stride, full width (64..2048), 1x7x7 stem, temporal kernels only
  in res4/res5 (conv_a 3x1x1).
* Fast: ``alpha`` x T frames, ``beta`` = 1/8 of the width, 5x7x7 stem, 3x1x1 conv_a everywhere.
* Lateral connections Fast -> Slow after the stem and res2..res4: a ``k``x1x1 convolution of
  stride ``alpha`` doubling the Fast channels (time-strided convolution), concatenated to Slow.

Presets (PySlowFast configs): 4x16 R50 (alpha 8, fusion kernel 5) and 8x8 R50 (alpha 4,
fusion kernel 7). Input: ``{"slow": (B,3,T,H,W), "fast": (B,3,alpha*T,H,W)}``; a single
tensor is taken as the Fast clip and the Slow clip is every ``alpha``-th frame of it.
"""
from __future__ import annotations

from functools import partial

import torch
from torch import nn

from components.video.models.layers import ClipClassifier, check_clip, global_avg_pool, unpack_inputs
from components.video.models.registry import InputSpec, ModelSpec, register
from components.video.models.resnet3d import (Bottleneck, Conv3DNoTemporal, PoolStem, TemporalConv3d, init_weights,
                                               make_layer)


class FuseFastToSlow(nn.Module):
    """Time-strided k x 1 x 1 convolution (Fast channels x ``ratio``), BN, ReLU; concat to Slow."""

    def __init__(self, fast_dim: int, alpha: int, kernel: int, ratio: int = 2):
        super().__init__()
        self.conv = TemporalConv3d(fast_dim, fast_dim * ratio, (kernel, 1, 1), (alpha, 1, 1), (kernel // 2, 0, 0),
                                   bias=False)
        self.bn = nn.BatchNorm3d(fast_dim * ratio)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, slow, fast):
        lateral = self.relu(self.bn(self.conv(fast)))
        if lateral.shape[2] != slow.shape[2]:
            raise ValueError(f"SlowFast: fast pathway gives {lateral.shape[2]} frames after the lateral "
                             f"stride, slow has {slow.shape[2]}; the fast clip must have alpha x slow frames")
        return torch.cat([slow, lateral], 1)


class SlowFast(ClipClassifier):
    """Generic SlowFast with bottleneck ResNet pathways.

    Args:
        alpha: frame-rate ratio Fast/Slow. beta_inv: channel ratio Slow/Fast (8).
        fusion_kernel: temporal size of the lateral convolutions. depths: blocks per stage.
        slow_temporal: per stage, conv_a temporal kernel of the Slow pathway.
    """

    def __init__(self, num_classes=400, alpha=4, beta_inv=8, fusion_kernel=7, depths=(3, 4, 6, 3),
                 width=64, slow_temporal=(1, 1, 3, 3), fast_temporal=(3, 3, 3, 3), fusion_ratio=2,
                 in_channels=3, dropout=0.5):
        super().__init__()
        self.alpha = alpha
        fw = width // beta_inv
        self.slow_stem = PoolStem(in_channels, width, 1)
        self.fast_stem = PoolStem(in_channels, fw, 5)
        self.fuse = nn.ModuleList([FuseFastToSlow(fw, alpha, fusion_kernel, fusion_ratio)])
        self.slow_layers, self.fast_layers = nn.ModuleList(), nn.ModuleList()
        s_in, f_in = width + fw * fusion_ratio, fw
        for i, n in enumerate(depths):
            sp, fp, stride = width * 2 ** i, fw * 2 ** i, 1 if i == 0 else 2
            self.slow_layers.append(make_layer(Bottleneck, Conv3DNoTemporal, s_in, sp, n, stride,
                                               {"temporal_kernel": slow_temporal[i]}))
            self.fast_layers.append(make_layer(Bottleneck, Conv3DNoTemporal, f_in, fp, n, stride,
                                               {"temporal_kernel": fast_temporal[i]}))
            s_in, f_in = sp * 4, fp * 4
            if i < len(depths) - 1:
                self.fuse.append(FuseFastToSlow(f_in, alpha, fusion_kernel, fusion_ratio))
                s_in += f_in * fusion_ratio
        self.feature_dim = s_in + f_in
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.feature_dim, num_classes))
        init_weights(self)

    def _split(self, x):
        if isinstance(x, torch.Tensor):
            check_clip(x, 5, "SlowFast")
            return x[:, :, :: self.alpha], x
        slow, fast = unpack_inputs(x, ("slow", "fast"), "SlowFast")
        check_clip(slow, 5, "SlowFast slow")
        check_clip(fast, 5, "SlowFast fast")
        return slow, fast

    def features(self, x) -> torch.Tensor:
        """Concatenated globally pooled Slow and Fast features (B, 2048 + 256 for R50)."""
        slow, fast = self._split(x)
        slow, fast = self.slow_stem(slow), self.fast_stem(fast)
        slow = self.fuse[0](slow, fast)
        for i, (sl, fl) in enumerate(zip(self.slow_layers, self.fast_layers)):
            slow, fast = sl(slow), fl(fast)
            if i + 1 < len(self.fuse):
                slow = self.fuse[i + 1](slow, fast)
        return torch.cat([global_avg_pool(slow), global_avg_pool(fast)], 1)


_PUB = "pytorchvideo model zoo (K400; GFLOPs per view, 256^2 test crop)"
for _name, _t, _tau, _alpha, _k, _ref, _gf in [
    ("slowfast_r50_4x16", 4, 16, 8, 5, 34_480_000, 36.69),
    ("slowfast_r50_8x8", 8, 8, 4, 7, 34_570_000, 65.71),
]:
    register(ModelSpec(
        name=_name,
        builder=partial(SlowFast, alpha=_alpha, fusion_kernel=_k),
        inputs={"slow": InputSpec(3, _t, 224, min_frames=1, min_size=32, frame_stride=_tau),
                "fast": InputSpec(3, _t * _alpha, 224, min_frames=_alpha, min_size=32, frame_stride=_tau // _alpha)},
        family="slowfast", paper="Feichtenhofer et al. 2019, SlowFast Networks for Video Recognition",
        ref_params=_ref, ref_params_atol=5_000, ref_source="pytorchvideo model zoo (rounded to 0.01M)",
        published={"params_m": _ref / 1e6, "gflops": _gf, "source": _PUB,
                   "input": {"slow": (_t, 256), "fast": (_t * _alpha, 256)}},
        tiny={"slow": (1, 32), "fast": (_alpha, 32)}))
