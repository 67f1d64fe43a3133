"""MotionNet's unsupervised losses against values computed by hand on tiny inputs.

Reference settings: bryanyzhu/Hidden-Two-Stream, models/multiframe_MotionNet/train.prototxt
(CharbonnierLoss alpha/beta, SSIMLoss kernel 8 / stride 8 / c1 1e-4 / c2 1e-3, borderMask 0.1).
"""
from __future__ import annotations

import math

import pytest
import torch

from components.video.models.motionnet import (PAPER_LOSS, border_mask, charbonnier, flow_deltas, ssim_loss,
                                               unsupervised_flow_losses)


def test_charbonnier_by_hand():
    x = torch.tensor([[[[1.0, -2.0], [0.0, 3.0]]]])
    # alpha 0.5, beta 2, eps 0: |2x| = 2, 4, 0, 6 -> mean over the 4 pixels = 3
    torch.testing.assert_close(charbonnier(x, alpha=0.5, beta=2.0, eps=0.0), torch.tensor(3.0))
    mask = torch.tensor([[[[1.0, 0.0], [1.0, 1.0]]]])
    torch.testing.assert_close(charbonnier(x, 0.5, 2.0, 0.0, mask), torch.tensor(8.0 / 3))   # (2 + 0 + 6) / 3
    # channels are summed per pixel: two identical channels double the value
    torch.testing.assert_close(charbonnier(torch.cat([x, x], 1), 0.5, 2.0, 0.0), torch.tensor(6.0))
    # the floor at x = 0 is (eps^2)^alpha
    torch.testing.assert_close(charbonnier(torch.zeros(1, 1, 3, 3), 0.4, 255.0, 1e-3), torch.tensor(1e-6 ** 0.4))


def test_border_mask_and_flow_deltas_by_hand():
    m = border_mask(10, 20, 0.1)                     # round(0.1 * 10) = 1 pixel band
    assert m.shape == (1, 1, 10, 20) and float(m.sum()) == 8 * 18
    assert float(m[0, 0, 0].sum()) == 0 and float(m[0, 0, :, -1].sum()) == 0
    assert float(border_mask(4, 4, 0.1).sum()) == 16  # round(0.4) = 0: no band
    f = torch.tensor([[[[1.0, 2.0, 4.0], [0.0, 0.0, 0.0]]]])
    d = flow_deltas(f)                                # f(x) - f(x+1), f(y) - f(y+1), zero on the last col / row
    torch.testing.assert_close(d[0, 0], torch.tensor([[-1.0, -2.0, 0.0], [0.0, 0.0, 0.0]]))
    torch.testing.assert_close(d[0, 1], torch.tensor([[1.0, 2.0, 4.0], [0.0, 0.0, 0.0]]))


def test_ssim_loss_by_hand():
    a, b = 0.5, 0.25
    x, y = torch.full((1, 1, 8, 8), a), torch.full((1, 1, 8, 8), b)
    # one 8x8 window, constant images: mean a / b, variances 0 -> SSIM = (2ab + c1) / (a^2 + b^2 + c1)
    want = 1 - (2 * a * b + 1e-4) / (a * a + b * b + 1e-4)
    torch.testing.assert_close(ssim_loss(x, y), torch.tensor(want))
    # sum over windows and channels, divided by the batch: 2 channels x 2 x 2 windows of 16x16
    x2, y2 = torch.full((3, 2, 16, 16), a), torch.full((3, 2, 16, 16), b)
    torch.testing.assert_close(ssim_loss(x2, y2), torch.tensor(8 * want), rtol=1e-4, atol=1e-5)   # float32 variances
    img = torch.rand(2, 3, 12, 12)
    assert abs(float(ssim_loss(img, img))) < 1e-5     # identical (cut windows at the border too)
    # a window with structure: x = +-s checkerboard, y = x -> 0; y = -x -> SSIM = (c1/c1) * (-2s^2 + c2)/(2s^2 + c2)
    s = 0.3
    chk = s * (1 - 2 * ((torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2)).float().view(1, 1, 8, 8)
    g = torch.exp(-((torch.arange(8.) - 4)[:, None] ** 2 + (torch.arange(8.) - 4)[None, :] ** 2) / (2 * (16 / 12) ** 2))
    g = g / g.sum()
    mu = float((g * chk[0, 0]).sum())                 # the window's weighted mean is not exactly 0 (off-centre)
    var = float((g * chk[0, 0] ** 2).sum()) - mu * mu
    lum = (-2 * mu * mu + 1e-4) / (2 * mu * mu + 1e-4)
    want2 = 1 - lum * (-2 * var + 1e-3) / (2 * var + 1e-3)
    torch.testing.assert_close(ssim_loss(chk, -chk), torch.tensor(want2), rtol=1e-4, atol=1e-5)


def test_unsupervised_losses_by_hand():
    # one pair, 1 channel, 8x8: frame 0 = 0, frame 1 = 0.1 everywhere, zero flow -> warped = 0.1
    frames = torch.stack([torch.zeros(1, 1, 8, 8), torch.full((1, 1, 8, 8), 0.1)], 2)
    zero = [torch.zeros(1, 2, 1, 8, 8)]
    out = unsupervised_flow_losses(frames, zero)
    photo = ((255 * 0.1) ** 2 + 1e-6) ** 0.4                      # every valid pixel alike
    torch.testing.assert_close(out["photometric"], torch.tensor(photo))
    torch.testing.assert_close(out["smoothness"], torch.tensor(4 * 1e-6 ** 0.3))   # u, v x (dx, dy) at the floor
    ssim1 = 1 - 1e-4 / (0.01 + 1e-4)                               # a = 0.1 (warped) vs b = 0 (target)
    torch.testing.assert_close(out["ssim"], torch.tensor(0.005 * ssim1), rtol=1e-4, atol=1e-7)
    # the border band is ignored: changing only border pixels leaves the photometric term unchanged
    f1 = frames.clone()
    f1[..., 1, 0, :] = 5.0                                          # top row of frame 1 (band = round(0.8) = 1)
    assert math.isclose(float(unsupervised_flow_losses(f1, zero)["photometric"]), photo, rel_tol=1e-5)
    # two scales: r = 1/2 and 1 -> SSIM weights 0.01 and 0.005 (the reference's rule)
    # (16x16 frames: every SSIM window is whole at both scales — 1 window at 8x8, 4 at 16x16)
    f16 = torch.stack([torch.zeros(1, 1, 16, 16), torch.full((1, 1, 16, 16), 0.1)], 2)
    two = unsupervised_flow_losses(f16, [torch.zeros(1, 2, 1, 8, 8), torch.zeros(1, 2, 1, 16, 16)])
    torch.testing.assert_close(two["photometric"], torch.tensor(2 * photo))
    torch.testing.assert_close(two["ssim"], torch.tensor((0.01 * 1 + 0.005 * 4) * ssim1), rtol=1e-4, atol=1e-7)
    # smoothness: u = x (a ramp) -> beta 1 on pixels of the scale at every scale (the reference's beta
    # 20 r on its outputs in 1/20 full-resolution pixels), du/dx = -1 on every valid pixel
    ramp = torch.zeros(1, 2, 1, 8, 8)
    ramp[:, 0, 0] = torch.arange(8.0)
    sm = unsupervised_flow_losses(frames, [ramp])["smoothness"]
    floor = 1e-6 ** 0.3
    torch.testing.assert_close(sm, torch.tensor((1 + 1e-6) ** 0.3 + 3 * floor))
    half = unsupervised_flow_losses(f16, [ramp])["smoothness"]                    # the same ramp at r = 1/2
    torch.testing.assert_close(half, sm)
    # a pair count of p sums p pairs (the reference's pairs are channels of one blob)
    three = torch.cat([frames, frames[:, :, :1]], 2)               # pairs (0 -> 0.1) and (0.1 -> 0)
    out3 = unsupervised_flow_losses(three, [torch.zeros(1, 2, 2, 8, 8)])
    torch.testing.assert_close(out3["photometric"], torch.tensor(2 * photo))
    assert PAPER_LOSS["photo_beta"] == 255.0 and PAPER_LOSS["smooth_alpha"] == 0.3 and PAPER_LOSS["smooth_beta"] == 1.0


def test_true_flow_beats_zero_flow_on_every_term():
    torch.manual_seed(0)
    img = torch.rand(1, 3, 24, 24)
    nxt = torch.roll(img, shifts=2, dims=3)
    true = torch.zeros(1, 2, 1, 24, 24)
    true[:, 0] = 2.0
    frames = torch.stack([img, nxt], 2)
    good = unsupervised_flow_losses(frames, [true])
    bad = unsupervised_flow_losses(frames, [torch.zeros_like(true)])
    assert good["photometric"] < 0.2 * bad["photometric"] and good["ssim"] < 0.2 * bad["ssim"]


def test_weighted_objective_prefers_the_true_flow_to_zero_flow():
    """The whole weighted objective pre-training minimises (photometric + SSIM + smoothness over 4
    scales, default weights) is lower at the true flow than at zero flow, and lower at zero flow than
    at the opposite flow: a textured square moving 3 px left over a static textured background (a
    flow with edges, so smoothness counts; flows area-resized to each scale, in its pixels)."""
    F = torch.nn.functional
    torch.manual_seed(0)
    bg = F.avg_pool2d(torch.rand(2, 3, 36, 36), 5, 1)                   # smooth textures, 32 and 16 px
    fg = F.avg_pool2d(torch.rand(2, 3, 20, 20), 5, 1)
    f0, f1 = bg.clone(), bg.clone()
    f0[..., 8:24, 11:27] = fg
    f1[..., 8:24, 8:24] = fg
    frames = torch.stack([f0, f1], 2)
    true = torch.zeros(2, 2, 1, 32, 32)
    true[:, 0, 0, 8:24, 11:27] = -3.0                                   # frame 1 sampled at p + flow = frame 0

    def total(full):
        flows = [F.interpolate(full[:, :, 0], size=(s, s), mode="area").unsqueeze(2) * (s / 32) for s in (4, 8, 16)]
        return float(sum(unsupervised_flow_losses(frames, flows + [full]).values()))

    t, z, w = total(true), total(torch.zeros_like(true)), total(-true)
    assert t < 0.8 * z and z < w, (t, z, w)


@pytest.mark.slow
def test_motionnet_learns_a_shift_from_the_losses_alone():
    """MotionNet-only pre-training on its unsupervised losses recovers a 1 px motion (no flow labels)."""
    from components.video.models.motionnet import MotionNet

    torch.manual_seed(0)
    img = torch.nn.functional.avg_pool2d(torch.rand(2, 3, 28, 28), 3, 1)          # smooth texture
    frames = torch.stack([img[..., 1:25, 1:25], img[..., 1:25, 0:24]], 2)         # content moves 1 px right
    net = MotionNet(2, 8)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3)
    for _ in range(30):
        loss = sum(unsupervised_flow_losses(frames, net(frames)).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        flow = net(frames)[-1][:, :, 0, 6:-6, 6:-6]
    # warping frame t+1 at p + flow(p) gives frame t: the content moved right, so u ~ +1, v ~ 0
    assert abs(float(flow[:, 0].mean()) - 1.0) < 0.25 and abs(float(flow[:, 1].mean())) < 0.25


def test_hidden_two_stream_losses_do_not_swamp_the_cross_entropy_at_init():
    """At initialisation on a tiny random batch, the weighted MotionNet photometric loss is within
    0.1x..10x the classification cross-entropy (it was ~500-1100x with the losses on normalised
    frames at weight 1; docs/video-models.md), and the losses are computed on the [0, 1] frames
    whatever the input normalisation."""
    import torch.nn.functional as F

    from components.video import models
    from components.video.models.twostream import AUX_WEIGHT, END_TO_END_LOSS
    from components.video.transforms import NORMALIZATIONS

    torch.manual_seed(0)
    kw = models.spec("hidden_two_stream").tiny_kwargs                    # 3 frames, 32 px
    x01 = torch.rand(6, 3, kw["frames"], 32, 32)
    y = torch.randint(0, 12, (6,))
    for norm in ("imagenet", "inception"):
        mean, std = (torch.tensor(v).view(1, 3, 1, 1, 1) for v in NORMALIZATIONS[norm])
        xn = (x01 - mean) / std
        m = models.build("hidden_two_stream", 12, input_norm=norm, **kw).train()
        assert m.aux_weight == AUX_WEIGHT and not any(k.startswith("frame_") for k in m.state_dict())
        torch.testing.assert_close(m.unit_frames(xn), x01, rtol=1e-5, atol=1e-5)
        torch.manual_seed(1)                                              # same dropout in both passes
        with torch.no_grad():
            logits, aux = m.forward_train(xn)
        ce = float(F.cross_entropy(logits, y))
        ratio = float(aux["photometric"]) / ce
        assert 0.1 <= ratio <= 10, (norm, ratio)
        assert 0.1 <= sum(float(v) for v in aux.values()) / ce <= 10
        torch.manual_seed(1)
        with torch.no_grad():
            by_hand = unsupervised_flow_losses(x01, m.motionnet(xn), **END_TO_END_LOSS)
        torch.testing.assert_close(aux["photometric"], AUX_WEIGHT * by_hand["photometric"])
    with pytest.raises(Exception, match="input_norm must be one of"):
        models.build("hidden_two_stream", 12, input_norm="rgb255", **kw)
