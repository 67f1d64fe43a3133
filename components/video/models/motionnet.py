"""MotionNet (Zhu et al. 2017, Hidden Two-Stream): a small encoder-decoder that estimates optical
flow from stacked frames, trained without flow labels.

Input: frames ``(B, 3, T, H, W)``; output: T-1 flow fields ``(B, 2, T-1, H, W)`` in pixels
(u = horizontal, v = vertical), predicted at four scales (1/8, 1/4, 1/2, 1) with skip connections
(FlowNet-style). :func:`unsupervised_flow_losses` gives the paper's training signals at every
scale: the photometric reconstruction error between frame t and frame t+1 warped back by the
flow (Charbonnier penalty) and the smoothness of the flow (Charbonnier of its spatial gradients).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _cbr(cin, cout, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.LeakyReLU(0.1, inplace=True))


def charbonnier(x: torch.Tensor, eps: float = 1e-3, alpha: float = 0.4) -> torch.Tensor:
    """Robust penalty (x^2 + eps^2)^alpha, averaged."""
    return ((x * x + eps * eps) ** alpha).mean()


def warp(img: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
    """Sample ``img`` (N, C, H, W) at p + flow(p) (bilinear, border padding): backward warping."""
    n, _, h, w = img.shape
    ys, xs = torch.meshgrid(torch.arange(h, device=img.device, dtype=img.dtype),
                            torch.arange(w, device=img.device, dtype=img.dtype), indexing="ij")
    x = xs + flow[:, 0]
    y = ys + flow[:, 1]
    grid = torch.stack([2 * x / max(w - 1, 1) - 1, 2 * y / max(h - 1, 1) - 1], -1)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=True)


class MotionNet(nn.Module):
    """Encoder (3 stride-2 stages) / decoder with flow heads at 1/8, 1/4, 1/2 and full resolution."""

    def __init__(self, frames: int, width: int = 32, max_flow: float = 20.0):
        super().__init__()
        pairs, w = frames - 1, width
        self.pairs, self.max_flow = pairs, max_flow
        self.enc1 = nn.Sequential(_cbr(3 * frames, w), _cbr(w, w))
        self.enc2 = nn.Sequential(_cbr(w, 2 * w, 2), _cbr(2 * w, 2 * w))
        self.enc3 = nn.Sequential(_cbr(2 * w, 4 * w, 2), _cbr(4 * w, 4 * w))
        self.enc4 = nn.Sequential(_cbr(4 * w, 8 * w, 2), _cbr(8 * w, 8 * w))
        self.up3 = nn.ConvTranspose2d(8 * w, 4 * w, 4, 2, 1)
        self.up2 = nn.ConvTranspose2d(4 * w + 2 * pairs, 2 * w, 4, 2, 1)
        self.up1 = nn.ConvTranspose2d(2 * w + 2 * pairs, w, 4, 2, 1)
        self.flow3 = nn.Conv2d(8 * w, 2 * pairs, 3, 1, 1)
        self.flow2 = nn.Conv2d(4 * w + 2 * pairs, 2 * pairs, 3, 1, 1)
        self.flow1 = nn.Conv2d(2 * w + 2 * pairs, 2 * pairs, 3, 1, 1)
        self.flow0 = nn.Conv2d(w + w + 2 * pairs, 2 * pairs, 3, 1, 1)

    def forward(self, frames: torch.Tensor) -> list[torch.Tensor]:
        """Flows ``(B, 2, T-1, h, w)`` from coarse (1/8) to full resolution (4 scales)."""
        b, c, t, h, w = frames.shape
        x = frames.reshape(b, c * t, h, w)
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        e4 = self.enc4(e3)
        f3 = self.flow3(e4)
        up = lambda f, ref: F.interpolate(f, size=ref.shape[-2:], mode="bilinear", align_corners=False) * (  # noqa: E731
            ref.shape[-1] / f.shape[-1])
        d3 = torch.cat([F.leaky_relu(self._fit(self.up3(e4), e3), 0.1) + e3, up(f3, e3)], 1)
        f2 = self.flow2(d3)
        d2 = torch.cat([F.leaky_relu(self._fit(self.up2(d3), e2), 0.1) + e2, up(f2, e2)], 1)
        f1 = self.flow1(d2)
        d1 = torch.cat([F.leaky_relu(self._fit(self.up1(d2), e1), 0.1), e1, up(f1, e1)], 1)
        f0 = self.flow0(d1)
        out = []
        for f in (f3, f2, f1, f0):
            f = self.max_flow * torch.tanh(f / self.max_flow)
            out.append(f.view(b, self.pairs, 2, *f.shape[-2:]).transpose(1, 2))
        return out

    @staticmethod
    def _fit(x, ref):
        return x[..., : ref.shape[-2], : ref.shape[-1]] if x.shape[-2:] != ref.shape[-2:] else x


def unsupervised_flow_losses(frames: torch.Tensor, flows: list[torch.Tensor], smooth_weight: float = 0.1) -> dict:
    """Photometric reconstruction + smoothness, summed over scales (MotionNet's training signal).

    ``frames`` (B, C, T, H, W); each flow (B, 2, T-1, h, w). For every pair (t, t+1) frame t+1 is
    warped back with the flow and compared to frame t.
    """
    photo, smooth = 0.0, 0.0
    for flow in flows:
        b, _, p, h, w = flow.shape
        scale = w / frames.shape[-1]
        fr = F.interpolate(frames.flatten(1, 2), size=(h, w), mode="bilinear", align_corners=False) if scale != 1 \
            else frames.flatten(1, 2)
        fr = fr.view(b, frames.shape[1], frames.shape[2], h, w)
        cur = fr[:, :, :-1].transpose(1, 2).reshape(b * p, -1, h, w)
        nxt = fr[:, :, 1:].transpose(1, 2).reshape(b * p, -1, h, w)
        fl = flow.transpose(1, 2).reshape(b * p, 2, h, w)
        photo = photo + charbonnier(warp(nxt, fl) - cur)
        smooth = smooth + charbonnier(fl[..., :, 1:] - fl[..., :, :-1]) + charbonnier(fl[..., 1:, :] - fl[..., :-1, :])
    return {"photometric": photo, "smoothness": smooth_weight * smooth}
