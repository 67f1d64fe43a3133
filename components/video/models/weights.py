"""Start a zoo model from a local weights file: torchvision / pytorchvideo naming, 2D checkpoints.

    model = build("x3d_m", 101, weights="x3d_m_k400.pyth")          # pytorchvideo naming
    model = build("r2plus1d_18", 101, weights="r2plus1d_18.pth")    # torchvision naming
    model = build("i3d", 101, weights="googlenet.pth")              # 2D GoogLeNet -> inflated
    model = build("tsn_flow", 101, weights="resnet18.pth", backbone="resnet18")  # 2D ImageNet

:func:`load_weights` reads the file (``torch.load(weights_only=True)``; a ``{"model_state": ...}``,
``{"state_dict": ...}`` or ``{"model": ...}`` wrapper and a DataParallel ``module.`` prefix are
unwrapped), recognises its naming, converts it to ours and loads it strictly: every tensor of the
model must be in the file with the same shape and every tensor of the file must be used, else an
:class:`InputError` names the file, the missing / unexpected / mis-shaped keys and what to do.
The one allowed difference is the final classifier when the number of classes differs (e.g.
Kinetics-400 weights fine-tuned on UCF101): it keeps its fresh initialisation and the returned
:class:`LoadReport` lists it under ``reinitialised``.

Namings (the key layouts were written from the libraries' model code; the converters are checked
against models built by that code in ``tests/video/test_weights.py``):

* ours / torchvision video (``r3d_18``, ``mc3_18``, ``r2plus1d_18``, ``s3d``): identical names.
* pytorchvideo (``create_x3d``, ``create_slowfast``, ``create_resnet`` as in ``i3d_r50``):
  ``blocks.<i>...`` with ``res_blocks.<j>.branch1_conv/branch1_norm/branch2.conv_a|norm_a|...``,
  ``multipathway_blocks.<0 slow|1 fast>``, ``multipathway_fusion.conv_fast_to_slow``,
  ``blocks.<last>.proj``; X3D's stem ``conv.conv_t`` (the 1x3x3 one) / ``conv.conv_xy`` (the
  depthwise 5x1x1 one), squeeze-excitation ``norm_b.1.block.{0,2}``, head ``pool.pre_conv`` /
  ``pre_norm`` / ``post_conv``.
* torchvision GoogLeNet (``conv1.conv``, ``inception3a.branch1.conv``, ``fc``; the auxiliary
  classifiers ``aux1``/``aux2`` are dropped) -> :func:`googlenet_bn`; an I3D is inflated from it
  (or from our own 2D ``googlenet_bn`` naming), see :func:`inception3d.inflate_state_dict`.
* torchvision 2D ResNet-18/34 (``conv1``, ``bn1``, ``layer1.0.conv1``, ``fc``) -> the frame-wise
  ResNet trunk of two-stream / TSN (kernels get a time axis of 1).

2D checkpoints for the two-stream family (TSN, two-stream, hidden two-stream) initialise every
2D trunk (classifiers stay fresh). A trunk whose input is not 3-channel RGB (stacked flow, RGB
differences) gets TSN's cross-modality initialisation (Wang et al. 2016, Sec. 3.2): the first
convolution's RGB filters are averaged over the three channels and copied to every input channel.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import torch
from torch import nn

from components.errors import InputError

__all__ = ["LoadReport", "read_state_dict", "detect_naming", "load_weights", "load_trunk", "googlenet_from_torchvision",
           "resnet2d_from_torchvision", "from_pytorchvideo"]

_SHOW = 8   # keys listed per category in an error message


@dataclass
class LoadReport:
    """What :func:`load_weights` did: the naming it recognised, how many tensors it loaded and which
    classifier tensors kept their fresh initialisation (class count differs)."""

    naming: str
    loaded: int
    reinitialised: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- reading
def read_state_dict(weights, *, param: str = "weights") -> dict[str, torch.Tensor]:
    """A state dict from a file path (or a dict, returned unwrapped). Only tensors are kept."""
    src = weights
    if isinstance(weights, (str, os.PathLike)):
        path = os.fspath(weights)
        if not os.path.isfile(path):
            raise InputError("weights file not found", path=path, param=param,
                             fix="give the path of a local .pt/.pth/.pyth state dict (nothing is downloaded)")
        try:
            src = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # noqa: BLE001 - any unreadable file is the same user error
            raise InputError(f"cannot read the weights file ({type(e).__name__}: {e})", path=path, param=param,
                             fix="save the state dict with torch.save(model.state_dict(), path)") from None
    else:
        path = "<state dict>"
    for _ in range(3):      # checkpoint wrappers: PySlowFast/pytorchvideo, Lightning, ours
        if isinstance(src, dict) and not any(isinstance(v, torch.Tensor) for v in src.values()):
            inner = next((src[k] for k in ("model_state", "state_dict", "model", "model_state_dict")
                          if isinstance(src.get(k), dict)), None)
            if inner is None:
                break
            src = inner
    if not isinstance(src, dict) or not any(isinstance(v, torch.Tensor) for v in src.values()):
        raise InputError("the file holds no state dict (no tensors found)", path=path, param=param,
                         fix="save model.state_dict(), or a dict with it under 'model_state' / 'state_dict'")
    sd = {k: v for k, v in src.items() if isinstance(v, torch.Tensor)}
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    return sd


def detect_naming(sd: dict) -> str:
    """``pytorchvideo``, ``torchvision_googlenet``, ``torchvision_resnet2d`` or ``native`` (ours,
    which is also torchvision's for the video ResNets and S3D)."""
    keys = set(sd)
    if any(k.startswith("blocks.0.") for k in keys) and any(".res_blocks." in k for k in keys):
        return "pytorchvideo"
    if "conv1.conv.weight" in keys and any(k.startswith("inception3a.") for k in keys):
        return "torchvision_googlenet"
    if "conv1.weight" in keys and "bn1.weight" in keys and any(k.startswith("layer1.0.") for k in keys):
        return "torchvision_resnet2d"
    return "native"


# ---------------------------------------------------------------- converters
def _rename(sd: dict, rules: list[tuple[str, str]], drop: tuple[str, ...] = ()) -> tuple[dict, list[str]]:
    """Apply the first matching regex rule to every key; keys matching ``drop`` are left out.
    Returns (converted, unmatched keys) — unmatched keys are kept under their own name so the
    strict check reports them as unexpected."""
    out, unmatched = {}, []
    compiled = [(re.compile(p), r) for p, r in rules]
    for k, v in sd.items():
        if any(re.match(d, k) for d in drop):
            continue
        for pat, rep in compiled:
            if pat.match(k):
                out[pat.sub(rep, k, count=1)] = v
                break
        else:
            unmatched.append(k)
            out[k] = v
    return out, unmatched


_GOOGLENET_BLOCKS = {"3a": 5, "3b": 6, "4a": 8, "4b": 9, "4c": 10, "4d": 11, "4e": 12, "5a": 14, "5b": 15}
_BRANCH = {"branch1": "branch0", "branch2": "branch1", "branch3": "branch2", "branch4": "branch3"}


def googlenet_from_torchvision(sd: dict) -> dict:
    """torchvision ``GoogLeNet`` names -> :func:`inception3d.googlenet_bn` names.

    ``conv1/conv2/conv3`` -> ``features.0/2/3``, ``inception3a..5b`` -> ``features.5..15``
    (branch1..4 -> branch0..3; ``BasicConv2d.conv/bn`` -> ``0/1``), ``fc`` (Linear) -> the 1x1
    ``classifier.1`` convolution; ``aux1``/``aux2`` (training-time auxiliary heads) are dropped.
    """
    rules = [(r"^conv1\.conv\.", "features.0.0."), (r"^conv1\.bn\.", "features.0.1."),
             (r"^conv2\.conv\.", "features.2.0."), (r"^conv2\.bn\.", "features.2.1."),
             (r"^conv3\.conv\.", "features.3.0."), (r"^conv3\.bn\.", "features.3.1."),
             (r"^fc\.", "classifier.1.")]
    for name, idx in _GOOGLENET_BLOCKS.items():
        for tb, ob in _BRANCH.items():
            # branch1 = BasicConv2d; branch2/3 = Sequential(BasicConv2d, BasicConv2d); branch4 = (pool, BasicConv2d)
            if tb == "branch1":
                rules += [(rf"^inception{name}\.{tb}\.conv\.", f"features.{idx}.{ob}.0."),
                          (rf"^inception{name}\.{tb}\.bn\.", f"features.{idx}.{ob}.1.")]
            else:
                rules += [(rf"^inception{name}\.{tb}\.(\d)\.conv\.", rf"features.{idx}.{ob}.\1.0."),
                          (rf"^inception{name}\.{tb}\.(\d)\.bn\.", rf"features.{idx}.{ob}.\1.1.")]
    out, _ = _rename(sd, rules, drop=(r"^aux[12]\.",))
    if "classifier.1.weight" in out and out["classifier.1.weight"].dim() == 2:
        out["classifier.1.weight"] = out["classifier.1.weight"][:, :, None, None]
    return out


def resnet2d_from_torchvision(sd: dict) -> dict:
    """torchvision 2D ``resnet18/34`` names -> :class:`resnet3d.FrameResNet` names (``net.``
    prefix; 2D kernels (O, I, kh, kw) become (O, I, 1, kh, kw))."""
    rules = [(r"^conv1\.", "net.stem.0."), (r"^bn1\.", "net.stem.1."),
             (r"^(layer\d\.\d+)\.conv1\.", r"net.\1.conv1.0."), (r"^(layer\d\.\d+)\.bn1\.", r"net.\1.conv1.1."),
             (r"^(layer\d\.\d+)\.conv2\.", r"net.\1.conv2.0."), (r"^(layer\d\.\d+)\.bn2\.", r"net.\1.conv2.1."),
             (r"^(layer\d\.\d+)\.conv3\.", r"net.\1.conv3.0."), (r"^(layer\d\.\d+)\.bn3\.", r"net.\1.conv3.1."),
             (r"^(layer\d\.\d+)\.downsample\.", r"net.\1.downsample."), (r"^fc\.", "net.fc.")]
    out, _ = _rename(sd, rules)
    return {k: (v.unsqueeze(2) if v.dim() == 4 else v) for k, v in out.items()}


# pytorchvideo's bottleneck ResBlock -> our Bottleneck / X3DBlock
_PTV_BLOCK = [(r"branch1_conv\.", "downsample.0."), (r"branch1_norm\.", "downsample.1.")]
_PTV_BOTTLENECK = _PTV_BLOCK + [(r"branch2\.conv_a\.", "conv1.0."), (r"branch2\.norm_a\.", "conv1.1."),
                                (r"branch2\.conv_b\.", "conv2.0."), (r"branch2\.norm_b\.", "conv2.1."),
                                (r"branch2\.conv_c\.", "conv3.0."), (r"branch2\.norm_c\.", "conv3.1.")]
_PTV_X3D_BLOCK = _PTV_BLOCK + [(r"branch2\.conv_a\.", "conv_a.0."), (r"branch2\.norm_a\.", "conv_a.1."),
                               (r"branch2\.conv_b\.", "conv_b.0."), (r"branch2\.norm_b\.0\.", "conv_b.1."),
                               (r"branch2\.norm_b\.1\.block\.0\.", "se.fc1."),
                               (r"branch2\.norm_b\.1\.block\.2\.", "se.fc2."),
                               (r"branch2\.norm_b\.", "conv_b.1."),
                               (r"branch2\.conv_c\.", "conv_c.0."), (r"branch2\.norm_c\.", "conv_c.1.")]


def _stage_rules(src: str, dst: str, block_rules) -> list[tuple[str, str]]:
    """Rules for ``<src>.res_blocks.<j>.<block key>`` -> ``<dst>.<j>.<our key>``."""
    return [(rf"^{src}\.res_blocks\.(\d+)\.{p}", rf"{dst}.\1.{r}") for p, r in block_rules]


def from_pytorchvideo(sd: dict, arch: str) -> dict:
    """pytorchvideo names -> ours for ``arch`` in ``x3d``, ``slowfast``, ``resnet`` (i3d_r50:
    stem, res2, the parameter-free temporal pool as ``blocks.2``, res3..res5, head ``blocks.6``)."""
    if arch == "x3d":
        rules = [(r"^blocks\.0\.conv\.conv_t\.", "stem.0."), (r"^blocks\.0\.conv\.conv_xy\.", "stem.1."),
                 (r"^blocks\.0\.norm\.", "stem.2."),
                 (r"^blocks\.5\.pool\.pre_conv\.", "head_pre.0."), (r"^blocks\.5\.pool\.pre_norm\.", "head_pre.1."),
                 (r"^blocks\.5\.pool\.post_conv\.", "head_post.0."), (r"^blocks\.5\.proj\.", "head.1.")]
        for i in range(4):
            rules += _stage_rules(rf"blocks\.{i + 1}", f"layers.{i}", _PTV_X3D_BLOCK)
    elif arch == "slowfast":
        rules = [(r"^blocks\.0\.multipathway_blocks\.0\.conv\.", "slow_stem.0."),
                 (r"^blocks\.0\.multipathway_blocks\.0\.norm\.", "slow_stem.1."),
                 (r"^blocks\.0\.multipathway_blocks\.1\.conv\.", "fast_stem.0."),
                 (r"^blocks\.0\.multipathway_blocks\.1\.norm\.", "fast_stem.1."),
                 (r"^blocks\.6\.proj\.", "head.1.")]
        for i in range(4):
            rules += [(rf"^blocks\.{i}\.multipathway_fusion\.conv_fast_to_slow\.", f"fuse.{i}.conv."),
                      (rf"^blocks\.{i}\.multipathway_fusion\.norm\.", f"fuse.{i}.bn.")]
            rules += _stage_rules(rf"blocks\.{i + 1}\.multipathway_blocks\.0", f"slow_layers.{i}", _PTV_BOTTLENECK)
            rules += _stage_rules(rf"blocks\.{i + 1}\.multipathway_blocks\.1", f"fast_layers.{i}", _PTV_BOTTLENECK)
    elif arch == "resnet":
        rules = [(r"^blocks\.0\.conv\.", "stem.0."), (r"^blocks\.0\.norm\.", "stem.1."), (r"^blocks\.6\.proj\.", "fc.")]
        for src, dst in ((1, 1), (3, 2), (4, 3), (5, 4)):
            rules += _stage_rules(rf"blocks\.{src}", f"layer{dst}", _PTV_BOTTLENECK)
    else:
        raise ValueError(f"arch must be x3d, slowfast or resnet, got {arch!r}")
    return _rename(sd, rules)[0]


# ---------------------------------------------------------------- loading
_CLASSIFIER = re.compile(r"(^|\.)(fc|head|head_spatial|head_temporal|classifier|proj)(\.\d+)?\.(weight|bias)$")


def _check_and_load(model: nn.Module, sd: dict, where: str, naming: str, param: str,
                    allow_missing: tuple[str, ...] = ()) -> LoadReport:
    """Strict load with a clear error; a classifier of another class count is kept fresh."""
    target = model.state_dict()
    # BN's num_batches_tracked counter is absent from older checkpoints and does not change outputs
    missing = [k for k in target if k not in sd and not k.startswith(allow_missing)
               and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in sd if k not in target]
    reinit, bad = [], []
    for k in target:
        if k in sd and tuple(sd[k].shape) != tuple(target[k].shape):
            same_rest = sd[k].dim() == target[k].dim() and tuple(sd[k].shape[1:]) == tuple(target[k].shape[1:])
            (reinit if _CLASSIFIER.search(k) and same_rest else bad).append(k)
    if missing or unexpected or bad:
        def show(ks):
            return ", ".join(ks[:_SHOW]) + (f" (+{len(ks) - _SHOW} more)" if len(ks) > _SHOW else "")
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing: {show(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected: {show(unexpected)}")
        if bad:
            parts.append(f"{len(bad)} of another shape: " + show(
                [f"{k} {tuple(sd[k].shape)} vs {tuple(target[k].shape)}" for k in bad]))
        arch = getattr(getattr(model, "spec", None), "name", type(model).__name__)
        raise InputError(f"weights ({naming} naming) do not fit {arch}: " + "; ".join(parts), path=where,
                         param=param, fix="use a checkpoint of the same architecture and builder options "
                         "(torchvision naming for r3d/mc3/r(2+1)d/s3d, pytorchvideo for x3d/slowfast/i3d_r50)")
    use = {k: v.to(target[k].dtype) for k, v in sd.items() if k not in reinit}
    model.load_state_dict(use, strict=False)
    return LoadReport(naming, len(use), reinit)


def _cross_modality(sd: dict, first_conv: str, in_channels: int) -> dict:
    """TSN cross-modality initialisation of ``first_conv`` for ``in_channels`` inputs."""
    w = sd[first_conv]
    if w.shape[1] == in_channels:
        return sd
    sd = dict(sd)
    sd[first_conv] = w.mean(dim=1, keepdim=True).expand(-1, in_channels, *w.shape[2:]).contiguous()
    return sd


def _load_trunk(trunk: nn.Module, sd2d: dict, naming: str, where: str, param: str) -> int:
    """Initialise one ``backbones2d`` trunk (``_ResNetTrunk`` / ``_InceptionTrunk``) from a 2D state dict."""
    from components.video.models.inception3d import InceptionNet
    net = trunk.net
    if isinstance(net, InceptionNet):
        sd = googlenet_from_torchvision(sd2d) if naming == "torchvision_googlenet" else dict(sd2d)
        first = "features.0.0.weight"
    else:
        sd = resnet2d_from_torchvision(sd2d) if naming == "torchvision_resnet2d" else dict(sd2d)
        first = "net.stem.0.weight"
    target = net.state_dict()
    # the trunk has no classifier: drop the checkpoint's
    sd = {k: v for k, v in sd.items() if not k.startswith(("classifier.", "net.fc."))}
    if first in sd:
        sd = _cross_modality(sd, first, target[first].shape[1])
    report = _check_and_load(net, sd, where, naming, param)
    return report.loaded


def load_trunk(trunk: nn.Module, weights, *, param: str = "weights") -> int:
    """Initialise one 2D trunk of :func:`backbones2d.backbone2d` from a 2D checkpoint (path or
    dict; torchvision ResNet / GoogLeNet naming or ours); returns the number of tensors loaded."""
    where = os.fspath(weights) if isinstance(weights, (str, os.PathLike)) else "<state dict>"
    sd = read_state_dict(weights, param=param)
    return _load_trunk(trunk, sd, detect_naming(sd), where, param)


def load_weights(model: nn.Module, weights, *, param: str = "weights") -> LoadReport:
    """Load ``weights`` (a path or a state dict) into ``model`` (a zoo model); see the module doc."""
    from components.video.models.inception3d import InceptionNet, inflate_state_dict
    from components.video.models.slowfast import SlowFast
    from components.video.models.x3d import X3D
    from components.video.models.resnet3d import VideoResNet

    where = os.fspath(weights) if isinstance(weights, (str, os.PathLike)) else "<state dict>"
    sd = read_state_dict(weights, param=param)
    naming = detect_naming(sd)
    trunks = _trunks(model)
    if trunks and (naming != "native" or any(k.startswith(("features.0.0.", "net.stem.0.")) for k in sd)):
        n = sum(_load_trunk(t, sd, naming, where, param) for t in trunks)
        return LoadReport(naming, n, notes=[f"initialised {len(trunks)} 2D trunk(s); classifiers are fresh"])
    if naming == "pytorchvideo":
        arch = {X3D: "x3d", SlowFast: "slowfast", VideoResNet: "resnet"}.get(type(model))
        found = "x3d" if "blocks.0.conv.conv_t.weight" in sd else \
            "slowfast" if any(".multipathway_blocks." in k for k in sd) else "resnet"
        if arch is None or arch != found:
            raise InputError(f"this is a pytorchvideo {found} checkpoint; pytorchvideo weights load into "
                             f"x3d_* / slowfast_* / i3d_r50 models of the same kind, not "
                             f"{getattr(getattr(model, 'spec', None), 'name', type(model).__name__)}",
                             path=where, param=param, fix="build the model this checkpoint was made for")
        sd = from_pytorchvideo(sd, arch)
    elif isinstance(model, InceptionNet) and model.dim == 3 and naming in ("torchvision_googlenet", "native") \
            and _looks_2d(sd):
        sd2 = googlenet_from_torchvision(sd) if naming == "torchvision_googlenet" else sd
        target = model.state_dict()
        head = {k for k in target if k.startswith("classifier.")}
        body = {k: v for k, v in sd2.items() if not k.startswith("classifier.")}
        probe = {k: target[k] for k in target if k not in head
                 and (k in body or not k.endswith("num_batches_tracked"))}
        _check_names(body, probe, where, naming, param)
        inflated = inflate_state_dict(body, _Dict(probe))
        report = _check_and_load(model, inflated, where, naming + " (2D, inflated)", param,
                                 allow_missing=("classifier.",))
        report.notes.append("2D weights inflated to 3D (repeated over time / kt); classifier fresh")
        return report
    elif naming in ("torchvision_googlenet", "torchvision_resnet2d"):
        from components.video.models.resnet3d import FrameResNet
        if naming == "torchvision_googlenet" and isinstance(model, InceptionNet) and model.dim == 2:
            sd = googlenet_from_torchvision(sd)
        elif naming == "torchvision_resnet2d" and isinstance(model, FrameResNet):
            sd = resnet2d_from_torchvision(sd)
        else:
            raise InputError(f"a 2D {naming.split('_')[1]} checkpoint fits the 2D-backbone models (tsn_*, "
                             f"two_stream*, hidden_two_stream), googlenet_bn and i3d (inflation), not "
                             f"{type(model).__name__}", path=where, param=param,
                             fix="pick one of those models, or a checkpoint of the model itself")
    return _check_and_load(model, sd, where, naming, param)


class _Dict:
    """Adapter: ``inflate_state_dict`` reads only ``.state_dict()`` of its target."""

    def __init__(self, sd):
        self.sd = sd

    def state_dict(self):
        return self.sd


def _check_names(sd: dict, target: dict, where: str, naming: str, param: str) -> None:
    missing = [k for k in target if k not in sd]
    unexpected = [k for k in sd if k not in target]
    if missing or unexpected:
        raise InputError(f"2D weights ({naming} naming) do not fit the inflated network: {len(missing)} missing "
                         f"{missing[:_SHOW]}, {len(unexpected)} unexpected {unexpected[:_SHOW]}", path=where,
                         param=param, fix="inflate from a GoogLeNet / googlenet_bn (Inception-v1 with BN) checkpoint")


def _looks_2d(sd: dict) -> bool:
    """True when every convolution kernel of ``sd`` is 2D (O, I, kh, kw)."""
    dims = [v.dim() for k, v in sd.items() if k.endswith("weight") and v.dim() >= 4]
    return bool(dims) and all(d == 4 for d in dims)


def _trunks(model: nn.Module) -> list[nn.Module]:
    """The 2D trunks of a two-stream-family model (empty for every other model)."""
    from components.video.models.backbones2d import _InceptionTrunk, _ResNetTrunk
    return [m for m in model.modules() if isinstance(m, (_InceptionTrunk, _ResNetTrunk))]
