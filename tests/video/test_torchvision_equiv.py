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
