"""Our r3d_18 / mc3_18 / r2plus1d_18 / s3d against torchvision's own models: same parameter
names and shapes, a torchvision state dict loads with strict=True, and the outputs agree.

Skipped where torchvision is not installed (the project venv); run it in a side venv:
    /tmp/tvenv/bin/python -m pytest tests/video/test_torchvision_equiv.py   (PYTHONPATH=repo root)
"""
from __future__ import annotations

import pytest
import torch

tvm = pytest.importorskip("torchvision.models.video")

from components.video.models import build  # noqa: E402

CASES = [("r3d_18", (2, 3, 4, 48, 48)), ("mc3_18", (2, 3, 4, 48, 48)),
         ("r2plus1d_18", (2, 3, 4, 48, 48)), ("s3d", (1, 3, 16, 224, 224))]


@pytest.mark.parametrize("name,shape", CASES)
def test_state_dict_and_outputs_match_torchvision(name, shape):
    torch.manual_seed(0)
    theirs = getattr(tvm, name)(num_classes=400).eval()
    ours = build(name, 400).eval()
    sd_t, sd_o = theirs.state_dict(), ours.state_dict()
    assert list(sd_t) == list(sd_o)
    assert all(sd_t[k].shape == sd_o[k].shape for k in sd_t)
    # randomise BN statistics too, so eval-mode BN is really exercised
    with torch.no_grad():
        for m in theirs.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    ours.load_state_dict(theirs.state_dict(), strict=True)
    x = torch.randn(*shape)
    with torch.no_grad():
        a, b = theirs(x), ours(x)
    assert a.shape == b.shape == (shape[0], 400)
    torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)
    # and back: our weights drive torchvision's model to our outputs
    theirs.load_state_dict(ours.state_dict(), strict=True)


def _random_bn(model):
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    return model.eval()


def test_googlenet_bn_runs_torchvision_googlenet_weights():
    """torchvision GoogLeNet (with its auxiliary heads, as in its checkpoints) -> googlenet_bn."""
    from torchvision.models import googlenet
    from components.video.models.inception3d import googlenet_bn
    from components.video.models.weights import load_weights
    torch.manual_seed(0)
    theirs = _random_bn(googlenet(num_classes=10, aux_logits=True, init_weights=True, transform_input=False))
    ours = googlenet_bn(10)
    load_weights(ours, theirs.state_dict())
    ours.eval()
    for shape in ((2, 3, 224, 224), (1, 3, 97, 131)):
        x = torch.randn(*shape)
        with torch.no_grad():
            torch.testing.assert_close(ours(x), theirs(x), rtol=1e-4, atol=1e-5)


def test_frame_resnet_runs_torchvision_resnet_weights():
    from torchvision.models import resnet18
    from components.video.models.resnet3d import FrameResNet
    from components.video.models.weights import load_weights
    torch.manual_seed(0)
    theirs = _random_bn(resnet18(num_classes=10))
    ours = FrameResNet(18, 3, 10)
    load_weights(ours, theirs.state_dict())
    x = torch.randn(2, 3, 64, 80)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), theirs(x), rtol=1e-4, atol=1e-5)
