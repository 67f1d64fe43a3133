"""MotionNet (Zhu et al. 2017, Hidden Two-Stream): a small encoder-decoder that estimates optical
flow from stacked frames, trained without flow labels.

Input: frames ``(B, 3, T, H, W)``; output: T-1 flow fields ``(B, 2, T-1, H, W)`` in pixels
(u = horizontal, v = vertical), predicted at four scales (1/8, 1/4, 1/2, 1) with skip connections
(FlowNet-style). :func:`unsupervised_flow_losses` gives the training signals of the authors'
MotionNet (bryanyzhu/Hidden-Two-Stream, ``multiframe_MotionNet/train.prototxt``) at every scale:
a border-masked photometric reconstruction error between frame t and frame t+1 warped back by the
flow (generalised Charbonnier), a windowed SSIM loss between the same two images, and a
border-masked Charbonnier smoothness of the flow's spatial differences, with the reference's
per-scale weights.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _cbr(cin, cout, stride=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1), nn.LeakyReLU(0.1, inplace=True))


def charbonnier(x: torch.Tensor, alpha: float = 0.4, beta: float = 1.0, eps: float = 1e-3,
                mask: torch.Tensor | None = None) -> torch.Tensor:
    """Generalised Charbonnier penalty of the MotionNet reference (its ``CharbonnierLoss`` layer):
    ``((beta * x)^2 + eps^2)^alpha`` summed over channels and averaged over the (valid) pixels.

    ``x`` (N, C, H, W). ``mask`` (N or 1, 1, H, W) of 0/1 drops pixels; the mean is then over the
    N x (valid pixels). (The reference divides a masked sum by N x the mask's element count over
    all its channels — a normalisation that shrinks with batch and channel count; not copied.)
    """
    rho = ((beta * x) ** 2 + eps * eps) ** alpha
    n, _, h, w = x.shape
    if mask is None:
        return rho.sum() / (n * h * w)
    m = mask.expand(n, 1, h, w)
    return (rho * m).sum() / m.sum().clamp_min(1)


def border_mask(h: int, w: int, ratio: float = 0.1, device=None, dtype=None) -> torch.Tensor:
    """(1, 1, h, w) mask with a zero band of ``round(ratio * min(h, w))`` pixels along the four
    borders (the reference's ``borderMask`` filler): border pixels often warp from outside the
    frame, so their reconstruction error says nothing about the flow."""
    m = torch.ones(1, 1, h, w, device=device, dtype=dtype)
    b = int(round(min(h, w) * ratio))
    if b:
        m[..., :b, :] = 0
        m[..., h - b:, :] = 0
        m[..., :, :b] = 0
        m[..., :, w - b:] = 0
    return m


def flow_deltas(f: torch.Tensor) -> torch.Tensor:
    """(N, 1, H, W) flow component -> (N, 2, H, W): ``f(x) - f(x+1)`` and ``f(y) - f(y+1)``, zero in
    the last column / row (the reference's fixed 3x3 delta filters and its ``flowBorderMask``)."""
    dx = torch.zeros_like(f)
    dy = torch.zeros_like(f)
    dx[..., :, :-1] = f[..., :, :-1] - f[..., :, 1:]
    dy[..., :-1, :] = f[..., :-1, :] - f[..., 1:, :]
    return torch.cat([dx, dy], 1)


def _ssim_kernel(k: int, device, dtype) -> torch.Tensor:
    # the reference's window: Gaussian with sigma = 2k/12, centred at k/2, normalised to sum 1
    sigma = 2 * k / 12
    r = torch.arange(k, device=device, dtype=torch.float64) - k / 2.0
    g = torch.exp(-(r[:, None] ** 2 + r[None, :] ** 2) / (2 * sigma * sigma))
    return (g / g.sum()).to(dtype)


def ssim_loss(x: torch.Tensor, y: torch.Tensor, kernel: int = 8, stride: int = 8, c1: float = 1e-4,
              c2: float = 1e-3) -> torch.Tensor:
    """The reference's ``SSIMLoss``: SSIM over Gaussian-weighted ``kernel`` x ``kernel`` windows
    taken every ``stride`` pixels (windows past the border are cut, i.e. zero-padded), per
    channel; loss = sum over windows and channels of (1 - SSIM), divided by the batch size."""
    n, c, h, w = x.shape
    ph = max(-(-(h - kernel) // stride), 0) + 1
    pw = max(-(-(w - kernel) // stride), 0) + 1
    pad = (0, (pw - 1) * stride + kernel - w, 0, (ph - 1) * stride + kernel - h)
    g = _ssim_kernel(kernel, x.device, x.dtype).expand(c, 1, kernel, kernel)

    def blur(t):
        return F.conv2d(F.pad(t, pad), g, stride=stride, groups=c)

    ux, uy = blur(x), blur(y)
    sx2, sy2, sxy = blur(x * x) - ux * ux, blur(y * y) - uy * uy, blur(x * y) - ux * uy
    ssim = (2 * ux * uy + c1) / (ux * ux + uy * uy + c1) * (2 * sxy + c2) / (sx2 + sy2 + c2)
    return (1 - ssim).sum() / n


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


#: the reference's loss settings (multiframe_MotionNet/train.prototxt): photometric Charbonnier
#: alpha 0.4, beta 255 (frames in [0, 1]) and smoothness alpha 0.3 at weight 1 on every scale;
#: SSIM weight 0.005 / r for a scale of resolution r (1/32 .. 1/2 there: 0.16 .. 0.01); border
#: ratio 0.1. Smoothness beta 1 on flow in pixels of its scale: the reference's network outputs
#: flow in units of 1/20 full-resolution pixel at every scale (FlowNet's convention) and scales it
#: by 20 r (its ``FlowScale`` layers, 0.625 .. 10) into pixels of the scale before warping, while
#: its smoothness Charbonnier takes the unscaled output with beta 20 r — i.e. beta 1 on pixels.
PAPER_LOSS = {"photo_alpha": 0.4, "photo_beta": 255.0, "smooth_alpha": 0.3, "smooth_beta": 1.0,
              "ssim_weight_per_res": 0.005, "border_ratio": 0.1, "eps": 1e-3}


def unsupervised_flow_losses(frames: torch.Tensor, flows: list[torch.Tensor], *, border_ratio: float = 0.1,
                             photo_alpha: float = 0.4, photo_beta: float = 255.0, smooth_alpha: float = 0.3,
                             smooth_beta: float = 1.0, ssim_weight_per_res: float = 0.005,
                             eps: float = 1e-3) -> dict:
    """MotionNet's unsupervised training signal, summed over the scales of ``flows``.

    ``frames`` (B, C, T, H, W); each flow (B, 2, T-1, h, w) in pixels of its own scale. At each
    scale, with r = w / W: frames are resized to (h, w); for every pair (t, t+1) frame t+1 is
    warped back by the flow and compared with frame t (each term is a sum over the T-1 pairs, as
    in the reference, where the pairs are channels of one blob) —

    * ``photometric``: Charbonnier(alpha 0.4, beta 255) of the difference, border-masked;
    * ``ssim``: (0.005 / r) x the windowed SSIM loss (:func:`ssim_loss`) of warped vs target;
    * ``smoothness``: Charbonnier(alpha 0.3, beta 1) of the forward differences (in pixels of the
      scale) of u and of v (:func:`flow_deltas`), border-masked, u and v terms added.

    Defaults are the reference's (:data:`PAPER_LOSS`; its scales are 1/32 .. 1/2 of a 224 input,
    ours 1/8 .. 1 — the resolution rule above carries its SSIM weights over).
    """
    photo, smooth, ssim = 0.0, 0.0, 0.0
    for flow in flows:
        b, _, p, h, w = flow.shape
        r = w / frames.shape[-1]
        fr = frames.flatten(1, 2)
        if (h, w) != tuple(frames.shape[-2:]):
            fr = F.interpolate(fr, size=(h, w), mode="bilinear", align_corners=False)
        fr = fr.view(b, frames.shape[1], frames.shape[2], h, w)
        cur = fr[:, :, :-1].transpose(1, 2).reshape(b * p, -1, h, w)
        nxt = fr[:, :, 1:].transpose(1, 2).reshape(b * p, -1, h, w)
        fl = flow.transpose(1, 2).reshape(b * p, 2, h, w)
        mask = border_mask(h, w, border_ratio, fl.device, fl.dtype)
        warped = warp(nxt, fl)
        # the reference stacks the T-1 pairs as channels of one blob: its per-sample sums add them up (x p)
        photo = photo + p * charbonnier(cur - warped, photo_alpha, photo_beta, eps, mask)
        ssim = ssim + (ssim_weight_per_res / r) * p * ssim_loss(warped, cur)
        for comp in (fl[:, :1], fl[:, 1:]):
            smooth = smooth + p * charbonnier(flow_deltas(comp), smooth_alpha, smooth_beta, eps, mask)
    return {"photometric": photo, "smoothness": smooth, "ssim": ssim}
