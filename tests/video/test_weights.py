"""Starting zoo models from weights files: torchvision / pytorchvideo naming, 2D checkpoints.

The reference layouts (``data/reference_layouts.json.gz``: key -> shape) were dumped from models
built by torchvision 0.28.0 and pytorchvideo's own code (commit f3142bb); the state dicts here are
random tensors in exactly those layouts, so every key of the reference must land somewhere in our
model and every tensor of ours must come from the file (strict). Output equality with the
reference libraries' models was checked where they import (tests/video/test_torchvision_equiv.py;
pytorchvideo: docs/video-models.md, "Weights from files").
"""
from __future__ import annotations

import gzip
import json
import pathlib

import pytest
import torch

from components.errors import InputError
from components.video.models import build
from components.video.models.inception3d import googlenet_bn
from components.video.models.weights import (detect_naming, from_pytorchvideo, googlenet_from_torchvision,
                                             load_weights, resnet2d_from_torchvision)

LAYOUTS = json.load(gzip.open(pathlib.Path(__file__).parent / "data" / "reference_layouts.json.gz", "rt"))


def _synthetic(name: str, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.rand(shape, generator=g) + 0.5 for k, shape in LAYOUTS[name].items()}


def _assert_all_used(model, converted: dict):
    """Every model tensor came from ``converted`` (same values), nothing of it was left over."""
    sd = model.state_dict()
    keys = [k for k in sd if not k.endswith("num_batches_tracked")]
    assert set(keys) == set(converted), (set(keys) ^ set(converted))
    for k in keys:
        torch.testing.assert_close(sd[k], converted[k].to(sd[k].dtype), msg=k)


@pytest.mark.parametrize("layout,name,arch", [
    ("ptv_x3d_xs", "x3d_xs", "x3d"), pytest.param("ptv_x3d_l", "x3d_l", "x3d", marks=pytest.mark.slow),
    ("ptv_slowfast_r50_8x8", "slowfast_r50_8x8", "slowfast"),
    pytest.param("ptv_slowfast_r50_4x16", "slowfast_r50_4x16", "slowfast", marks=pytest.mark.slow),
    ("ptv_i3d_r50", "i3d_r50", "resnet")])
def test_pytorchvideo_state_dicts_load_strictly(layout, name, arch, tmp_path):
    sd = _synthetic(layout)
    assert detect_naming(sd) == "pytorchvideo"
    path = tmp_path / "ckpt.pyth"
    torch.save({"model_state": sd}, path)          # PySlowFast / pytorchvideo checkpoint wrapper
    model = build(name, 400, weights=str(path))
    assert model.weights_report.naming == "pytorchvideo" and not model.weights_report.reinitialised
    _assert_all_used(model, from_pytorchvideo(sd, arch))
    # spot checks written from pytorchvideo's module code, independent of the converter's rules
    ours = model.state_dict()
    head = {"x3d": ("blocks.5.proj.weight", "head.1.weight"), "slowfast": ("blocks.6.proj.weight", "head.1.weight"),
            "resnet": ("blocks.6.proj.weight", "fc.weight")}[arch]
    torch.testing.assert_close(ours[head[1]], sd[head[0]])
    if arch == "x3d":   # conv_t is pytorchvideo's name for the 1x3x3 stem conv, conv_xy for the 5x1x1 one
        torch.testing.assert_close(ours["stem.0.weight"], sd["blocks.0.conv.conv_t.weight"])
        torch.testing.assert_close(ours["stem.1.weight"], sd["blocks.0.conv.conv_xy.weight"])
        torch.testing.assert_close(ours["layers.0.0.se.fc1.weight"],
                                   sd["blocks.1.res_blocks.0.branch2.norm_b.1.block.0.weight"])
    if arch == "slowfast":
        torch.testing.assert_close(ours["fuse.2.conv.weight"], sd["blocks.2.multipathway_fusion.conv_fast_to_slow.weight"])
        torch.testing.assert_close(ours["fast_layers.3.2.conv3.1.running_var"],
                                   sd["blocks.4.multipathway_blocks.1.res_blocks.2.branch2.norm_c.running_var"])


def test_new_class_count_keeps_a_fresh_classifier(tmp_path):
    sd = _synthetic("ptv_x3d_xs")
    torch.save(sd, tmp_path / "k400.pt")
    model = build("x3d_xs", 7, weights=str(tmp_path / "k400.pt"))
    assert model.weights_report.reinitialised == ["head.1.weight", "head.1.bias"]
    torch.testing.assert_close(model.state_dict()["layers.3.6.conv_c.0.weight"],
                               sd["blocks.4.res_blocks.6.branch2.conv_c.weight"])
    assert model.head[1].weight.shape == (7, 2048)


def test_native_and_torchvision_video_naming_round_trip(tmp_path):
    torch.manual_seed(0)
    src = build("r2plus1d_18", 5, width=8)
    torch.save({"state_dict": {"module." + k: v for k, v in src.state_dict().items()}}, tmp_path / "w.pth")
    dst = build("r2plus1d_18", 5, width=8, weights=str(tmp_path / "w.pth"))
    assert dst.weights_report.naming == "native"
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(dst.eval()(x), src.eval()(x))


def test_errors_name_file_and_keys(tmp_path):
    with pytest.raises(InputError, match="not found"):
        build("r3d_18", 4, weights=str(tmp_path / "nope.pt"))
    sd = build("r3d_18", 4, width=8).state_dict()
    del sd["layer2.0.conv1.0.weight"]
    sd["extra.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "bad.pt")
    with pytest.raises(InputError) as e:
        build("r3d_18", 4, width=8, weights=str(tmp_path / "bad.pt"))
    msg = str(e.value)
    assert "bad.pt" in msg and "1 missing: layer2.0.conv1.0.weight" in msg and "1 unexpected: extra.weight" in msg
    torch.save(build("r3d_18", 4, width=16).state_dict(), tmp_path / "wide.pt")
    with pytest.raises(InputError, match="of another shape: stem.0.weight"):
        build("r3d_18", 4, width=8, weights=str(tmp_path / "wide.pt"))
    torch.save(_synthetic("ptv_x3d_xs"), tmp_path / "x3d.pt")
    with pytest.raises(InputError, match="pytorchvideo x3d checkpoint.*not r3d_18"):
        build("r3d_18", 4, weights=str(tmp_path / "x3d.pt"))
    torch.save({"epoch": 3}, tmp_path / "empty.pt")
    with pytest.raises(InputError, match="no state dict"):
        build("r3d_18", 4, weights=str(tmp_path / "empty.pt"))


def test_torchvision_googlenet_names_and_i3d_inflation_from_a_file(tmp_path):
    sd = _synthetic("tv_googlenet")
    assert any(k.startswith("aux1.") for k in sd) and detect_naming(sd) == "torchvision_googlenet"
    with torch.no_grad():       # BN statistics in a sane range so eval outputs are well conditioned
        for k in sd:
            if k.endswith("running_mean") or k.endswith("bn.bias"):
                sd[k] = sd[k] * 0.1 - 0.05
    torch.save(sd, tmp_path / "googlenet.pth")
    net2d = googlenet_bn(1000)
    rep = load_weights(net2d, str(tmp_path / "googlenet.pth"))          # aux heads dropped, fc -> 1x1 conv
    assert rep.loaded == len([k for k in googlenet_from_torchvision(sd)])
    torch.testing.assert_close(net2d.classifier[1].weight[:, :, 0, 0], sd["fc.weight"])
    torch.testing.assert_close(net2d.state_dict()["features.15.branch2.1.0.weight"],
                               sd["inception5b.branch3.1.conv.weight"])    # torchvision's 3x3 "5x5" branch
    i3d = build("i3d", 11, weights=str(tmp_path / "googlenet.pth"), temporal_padding="replicate")
    assert "inflated" in i3d.weights_report.naming
    frame = torch.randn(1, 3, 64, 64)
    clip = frame.unsqueeze(2).repeat(1, 1, 8, 1, 1)
    with torch.no_grad():      # an inflated I3D on a constant clip = the 2D network on the frame
        torch.testing.assert_close(i3d.eval().features(clip), net2d.eval().features(frame), rtol=1e-3, atol=1e-4)
    k = "features.0.0.weight"
    torch.testing.assert_close(i3d.state_dict()[k].sum(2), sd["conv1.conv.weight"])


def test_two_stream_and_tsn_trunks_start_from_a_2d_checkpoint(tmp_path):
    sd = _synthetic("tv_resnet18")
    assert detect_naming(sd) == "torchvision_resnet2d"
    torch.save(sd, tmp_path / "resnet18.pth")
    m = build("two_stream", 5, flow_frames=3, weights=str(tmp_path / "resnet18.pth"))
    conv = resnet2d_from_torchvision(sd)
    spatial, temporal = m.streams.spatial.net.state_dict(), m.streams.temporal.net.state_dict()
    torch.testing.assert_close(spatial["net.layer4.1.conv2.0.weight"], conv["net.layer4.1.conv2.0.weight"])
    torch.testing.assert_close(temporal["net.layer4.1.conv2.0.weight"], conv["net.layer4.1.conv2.0.weight"])
    torch.testing.assert_close(spatial["net.stem.0.weight"], sd["conv1.weight"].unsqueeze(2))
    # cross-modality initialisation: the RGB filters averaged over channels, for each of the 6 flow channels
    mean = sd["conv1.weight"].mean(1, keepdim=True).unsqueeze(2)
    assert temporal["net.stem.0.weight"].shape == (64, 6, 1, 7, 7)
    torch.testing.assert_close(temporal["net.stem.0.weight"], mean.expand(-1, 6, -1, -1, -1))
    assert m.weights_report.notes and m.weights_report.loaded > 0
    t = build("tsn_flow", 5, backbone="resnet18", new_length=2, weights=str(tmp_path / "resnet18.pth"))
    assert t.trunk.net.state_dict()["net.stem.0.weight"].shape == (64, 4, 1, 7, 7)
    torch.save(_synthetic("tv_resnet34"), tmp_path / "resnet34.pth")
    with pytest.raises(InputError, match="missing|unexpected"):
        build("two_stream", 5, flow_frames=3, weights=str(tmp_path / "resnet34.pth"))   # resnet18 trunks
    torch.save(_synthetic("tv_googlenet"), tmp_path / "googlenet.pth")
    g = build("tsn_rgb", 5, weights=str(tmp_path / "googlenet.pth"))                     # inception trunk
    assert g.weights_report.naming == "torchvision_googlenet"
