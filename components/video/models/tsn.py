"""Temporal Segment Networks (Wang et al. 2016): K snippets, one per equal segment of the video,
through one shared 2D network; a segmental consensus (average, or max) of their class scores.

Input: (B, C, K * n, H, W) — the K snippets in order, n frames each:

* ``rgb``    : C = 3, n = 1 (one frame per segment)
* ``flow``   : C = 2, n = L (L flow fields per segment, stacked into 2L channels)
* ``rgbdiff``: C = 3, n = L + 1 (L differences of consecutive frames, stacked into 3L channels)
"""
from __future__ import annotations

from functools import partial

import torch
from torch import nn

from components.errors import ConfigError, InputError
from components.video.models.backbones2d import backbone2d
from components.video.models.layers import ClipClassifier, check_clip
from components.video.models.registry import InputSpec, ModelSpec, register

_PER_SEGMENT = {"rgb": lambda L: 1, "flow": lambda L: L, "rgbdiff": lambda L: L + 1}


class TSN(ClipClassifier):
    """TSN over ``segments`` snippets of ``modality``; ``consensus`` is ``avg`` or ``max``.

    ``features`` averages the snippets' embeddings; ``forward`` applies the consensus to the
    snippets' logits (for ``avg`` the two orders give the same result).
    """

    def __init__(self, num_classes, modality="rgb", segments=3, new_length=5, consensus="avg",
                 backbone="inception", width=64, dropout=0.8):
        super().__init__()
        if modality not in _PER_SEGMENT:
            raise ConfigError(f"TSN modality must be one of {sorted(_PER_SEGMENT)}, got {modality!r}")
        if consensus not in ("avg", "max"):
            raise ConfigError(f"TSN consensus must be 'avg' or 'max', got {consensus!r}")
        self.modality, self.segments, self.consensus = modality, segments, consensus
        self.n = _PER_SEGMENT[modality](new_length)
        in_ch = {"rgb": 3, "flow": 2 * self.n, "rgbdiff": 3 * (self.n - 1)}[modality]
        self.trunk = backbone2d(backbone, in_ch, width)
        self.feature_dim = self.trunk.feature_dim
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(self.feature_dim, num_classes))

    def snippets(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, K*n, H, W) -> (B*K, channels, H, W) network inputs of the K snippets."""
        check_clip(x, 5, "TSN")
        b, c, t, h, w = x.shape
        k, n = self.segments, self.n
        if t != k * n:
            raise InputError(f"TSN({self.modality}, K={k}) needs {k}x{n}={k * n} frames, got {t}", field="x",
                             fix="sample K segments with the TSN sampler")
        x = x.view(b, c, k, n, h, w).permute(0, 2, 3, 1, 4, 5)          # B, K, n, C, H, W
        if self.modality == "rgbdiff":
            x = x[:, :, 1:] - x[:, :, :-1]
        return x.reshape(b * k, -1, h, w)

    def segment_features(self, x) -> torch.Tensor:
        """(B, K, feature_dim)."""
        f = self.trunk.feature_map(self.snippets(x)).mean(dim=(2, 3))
        return f.view(x.shape[0], self.segments, -1)

    def features(self, x):
        return self.segment_features(x).mean(1)

    def forward(self, x):
        logits = self.head(self.segment_features(x))
        return logits.mean(1) if self.consensus == "avg" else logits.amax(1)


_PAPER = "Wang et al. 2016, Temporal Segment Networks"
for _mod, _c, _n in [("rgb", 3, 1), ("flow", 2, 5), ("rgbdiff", 3, 6)]:
    register(ModelSpec(
        name=f"tsn_{_mod}",
        builder=partial(TSN, modality=_mod),
        inputs={"rgb" if _mod != "flow" else "flow": InputSpec(
            _c, 3 * _n, 224, min_frames=3 * _n, min_size=32, modality="flow" if _mod == "flow" else "rgb")},
        family="tsn", ref_classes=101, paper=_PAPER,
        published={"source": _PAPER + " (K=3 segments; BN-Inception there, Inception-v1-BN here)"},
        tiny={("rgb" if _mod != "flow" else "flow"): (3 * _n, 32)}, tiny_kwargs={"backbone": "resnet18", "width": 16}))
