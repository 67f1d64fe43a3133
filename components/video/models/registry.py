"""One registry for every video model.

Each entry is a :class:`ModelSpec`: the builder plus *data* describing what the model eats
(``inputs``), the size it is usually run at, and the reference figures it is checked against.
The training pipeline reads ``inputs`` to cut the right clips; ``docs/video-models.md`` is
generated from the same entries (``python -m components.video.models.report``).

Call contract (every model):

* ``model(x)`` -> logits ``(B, num_classes)``. ``x`` is a clip tensor ``(B, C, T, H, W)`` for
  single-input models, or a ``dict`` keyed by the names in ``spec.inputs`` (a ``tuple`` in the
  same order is accepted too) for multi-input models (two-stream, SlowFast).
* ``model.features(x)`` -> clip embeddings ``(B, model.feature_dim)`` (what the classifier sees).
* Models whose ``spec.aux_loss`` is true (hidden two-stream) also offer
  ``model.forward_train(x) -> (logits, {name: scalar loss})``; add the losses to the task loss.
  Their builders take ``input_norm`` (the clips' :data:`~components.video.transforms.NORMALIZATIONS`
  key), so losses on the frames see them in [0, 1].
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from components.errors import ConfigError


@dataclass(frozen=True)
class InputSpec:
    """One input tensor of a model.

    ``channels`` x ``frames`` x ``size`` x ``size`` is the standard (published) input;
    ``min_frames`` / ``min_size`` is the smallest input the network accepts (used by tests).
    ``layout`` names the dimension order: ``"BCTHW"`` for clips, ``"BCHW"`` for one frame or
    stacked flow (``frames`` then counts the stacked frames: channels already include them).
    ``modality`` is ``rgb``, ``flow`` (2 channels u,v per frame, TV-L1 style) or ``rgbdiff``.
    ``frame_stride`` is the published sampling stride (tau) between frames, when there is one.
    """

    channels: int
    frames: int
    size: int
    min_frames: int = 1
    min_size: int = 32
    layout: str = "BCTHW"
    modality: str = "rgb"
    frame_stride: int | None = None

    def shape(self, batch: int = 1, frames: int | None = None, size: int | None = None) -> tuple:
        t, s = frames or self.frames, size or self.size
        if self.layout == "BCHW":
            return (batch, self.channels, s, s)
        return (batch, self.channels, t, s, s)


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: builder + data about its input and its reference figures."""

    name: str
    builder: Callable[..., nn.Module]
    inputs: dict[str, InputSpec]
    family: str
    paper: str
    ref_params: int | None = None          # exact reference parameter count (at ref_classes)
    ref_params_atol: int = 0               # absolute tolerance when the reference is rounded
    ref_classes: int = 400
    ref_source: str = ""                   # where ref_params comes from
    # {"params_m", "gflops" (as the source counts them), "source", "input": {key: (frames, size)}
    #  when the published FLOPs are for another input than ``inputs``}
    published: dict = field(default_factory=dict)
    aux_loss: bool = False
    tiny: dict = field(default_factory=dict)  # per-input (frames, size) used by fast tests
    tiny_kwargs: dict = field(default_factory=dict)  # builder kwargs for fast tests

    @property
    def multi_input(self) -> bool:
        return len(self.inputs) > 1

    def example_input(self, batch: int = 1, tiny: bool = False, device=None, dtype=None, sizes=None):
        """A random input of the right structure (tensor or dict): standard size, ``tiny`` (the
        size fast tests use) or ``sizes`` = {key: (frames, size)}."""
        out = {}
        for key, spec in self.inputs.items():
            if sizes is not None:
                t, s = sizes[key]
            elif tiny:
                t, s = self.tiny.get(key, (spec.min_frames, spec.min_size))
            else:
                t, s = spec.frames, spec.size
            out[key] = torch.randn(spec.shape(batch, t, s), device=device, dtype=dtype)
        return out if self.multi_input else next(iter(out.values()))


_REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to the registry (names are unique)."""
    if spec.name in _REGISTRY:
        raise ConfigError(f"video model '{spec.name}' is registered twice")
    _REGISTRY[spec.name] = spec
    return spec


def _load_all() -> None:
    # importing the family modules registers their models
    from components.video.models import (  # noqa: F401
        c3d, densenet3d, inception3d, resnet3d, slowfast, tsn, twostream, x3d)


def names() -> list[str]:
    """Names of all registered video models, sorted."""
    _load_all()
    return sorted(_REGISTRY)


def spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of ``name``; ConfigError naming the choices if unknown."""
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown video model '{name}'; choose one of: {', '.join(sorted(_REGISTRY))}") from None


def build(name: str, num_classes: int, weights=None, **kw) -> nn.Module:
    """Build model ``name`` with a ``num_classes``-way classifier.

    Extra keyword arguments go to the model's builder (e.g. ``dropout``, ``in_channels``,
    ``segments`` for TSN, ``fusion`` for two-stream). The returned module carries ``.spec``.
    ``weights``: a local state-dict file (or dict) to start from, in our / torchvision /
    pytorchvideo naming or a 2D checkpoint for I3D inflation and 2D trunks
    (:func:`components.video.models.weights.load_weights`; its report is ``model.weights_report``).
    """
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ConfigError(f"num_classes must be a positive integer, got {num_classes!r}")
    s = spec(name)
    try:
        model = s.builder(num_classes=num_classes, **kw)
    except TypeError as e:
        if "keyword argument" not in str(e):
            raise
        raise ConfigError(f"video model '{name}': bad builder arguments {sorted(kw)}: {e}") from None
    model.spec = s
    if weights is not None:
        from components.video.models.weights import load_weights
        model.weights_report = load_weights(model, weights)
    return model


def count_params(model: nn.Module) -> int:
    """Number of parameters (trainable or not; buffers excluded)."""
    return sum(p.numel() for p in model.parameters())
