"""Convolutional building blocks shared by every VQ-VAE level.

The paper's CIFAR-10 encoder is two stride-2 4x4 convolutions followed by a 3x3 convolution and
two residual blocks (ReLU, 3x3 conv, ReLU, 1x1 conv); the decoder mirrors it with two
stride-2 transposed convolutions. `Encoder` and `Decoder` take the number of x2 resampling steps,
so the same classes build the bottom (x4), top (x2) and any further level of VQ-VAE-2.
"""
from __future__ import annotations

from torch import nn


class ResBlock(nn.Module):
    """x + Conv1x1(ReLU(Conv3x3(ReLU(x))))."""

    def __init__(self, channels: int, res_channels: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReLU(), nn.Conv2d(channels, res_channels, 3, padding=1),
            nn.ReLU(), nn.Conv2d(res_channels, channels, 1))

    def forward(self, x):
        return x + self.body(x)


class ResStack(nn.Sequential):
    """`n` residual blocks followed by a ReLU."""

    def __init__(self, channels: int, res_channels: int, n: int):
        super().__init__(*[ResBlock(channels, res_channels) for _ in range(n)], nn.ReLU())


class Encoder(nn.Module):
    """Downsample by 2**`downsample` with stride-2 4x4 convs, then a 3x3 conv and a residual stack."""

    def __init__(self, in_ch: int, hidden: int, res_channels: int, n_res: int, downsample: int):
        super().__init__()
        layers = []
        ch = in_ch
        for i in range(downsample):
            out = hidden // 2 if (i < downsample - 1) else hidden
            layers += [nn.Conv2d(ch, out, 4, stride=2, padding=1), nn.ReLU()]
            ch = out
        layers += [nn.Conv2d(ch, hidden, 3, padding=1), ResStack(hidden, res_channels, n_res)]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class Decoder(nn.Module):
    """3x3 conv, residual stack, then upsample by 2**`upsample` with stride-2 4x4 transposed convs."""

    def __init__(self, in_ch: int, out_ch: int, hidden: int, res_channels: int, n_res: int,
                 upsample: int):
        super().__init__()
        layers = [nn.Conv2d(in_ch, hidden, 3, padding=1), ResStack(hidden, res_channels, n_res)]
        ch = hidden
        for i in range(upsample):
            last = i == upsample - 1
            out = out_ch if last else hidden // 2
            layers.append(nn.ConvTranspose2d(ch, out, 4, stride=2, padding=1))
            if not last:
                layers.append(nn.ReLU())
            ch = out
        if upsample == 0:
            layers.append(nn.Conv2d(ch, out_ch, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)
