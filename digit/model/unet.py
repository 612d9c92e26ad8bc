"""Fusion UNet (DIGIT's "merge layer") and its building blocks.

Module names (`inc`, `down1`, `maxpool_conv`, `double_conv`, `up1`, `conv`, `outc`) follow the
released checkpoint so its keys load without renaming.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from digit.model.config import scaled_width


class DoubleConv(nn.Module):
    """conv3x3, BN, ReLU, conv3x3, BN, ReLU (convs with bias, as released).

    (B, in_ch, H, W) -> (B, out_ch, H, W). `final_bn_relu=False` ends after the second conv
    (the segmentation head's last layers).
    """

    def __init__(
        self, in_ch: int, out_ch: int, mid_ch: int | None = None, final_bn_relu: bool = True
    ) -> None:
        super().__init__()
        mid_ch = mid_ch or out_ch
        layers: list[nn.Module] = [
            nn.Conv2d(in_ch, mid_ch, 3, padding=1),
            nn.BatchNorm2d(mid_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid_ch, out_ch, 3, padding=1),
        ]
        if final_bn_relu:
            layers += [nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True)]
        self.double_conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.double_conv(x)


class Down(nn.Module):
    """maxpool 2, DoubleConv: (B, in_ch, H, W) -> (B, out_ch, H/2, W/2)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.maxpool_conv = nn.Sequential(nn.MaxPool2d(2), DoubleConv(in_ch, out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool_conv(x)


def upsample2x(x: torch.Tensor) -> torch.Tensor:
    """Bilinear x2 with align_corners=True (as released): (B, C, H, W) -> (B, C, 2H, 2W)."""
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=True)


class Up(nn.Module):
    """Bilinear x2, then (with a skip) pad to the skip's size and concat [skip, upsampled],
    then DoubleConv(in_ch -> mid_ch -> out_ch); in_ch counts the concatenated channels.

    (B, c, H, W) [+ skip (B, s, 2H, 2W)] -> (B, out_ch, 2H, 2W).
    """

    def __init__(self, in_ch: int, out_ch: int, mid_ch: int | None = None) -> None:
        super().__init__()
        self.conv = DoubleConv(in_ch, out_ch, mid_ch)

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        x = upsample2x(x)
        if skip is not None:
            dy = skip.shape[-2] - x.shape[-2]
            dx = skip.shape[-1] - x.shape[-1]
            if dy or dx:  # odd sizes: centre the upsampled map on the skip
                x = F.pad(x, [dx // 2, dx - dx // 2, dy // 2, dy - dy // 2])
            x = torch.cat([skip, x], dim=1)
        return self.conv(x)


class OutConv(nn.Module):
    """1x1 conv: (B, in_ch, H, W) -> (B, out_ch, H, W)."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class FusionUNet(nn.Module):
    """DIGIT's small UNet over the fused features: (B, C, H, W) -> (B, C, H, W), H and W
    multiples of 8. Widths 64-128-256-256 down, 128-64-64 up (x `width`); ~4.63 M parameters
    at C = 544, width 1.
    """

    def __init__(self, channels: int, width: float = 1.0) -> None:
        super().__init__()
        a, b, c = (scaled_width(n, width) for n in (64, 128, 256))
        self.inc = DoubleConv(channels, a)
        self.down1 = Down(a, b)
        self.down2 = Down(b, c)
        self.down3 = Down(c, c)
        self.up1 = Up(c + c, b, c)
        self.up2 = Up(b + b, a, b)
        self.up3 = Up(a + a, a, a)
        self.outc = OutConv(a, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.inc(x)
        x2 = self.down1(x1)
        x3 = self.down2(x2)
        x4 = self.down3(x3)
        x = self.up1(x4, x3)
        x = self.up2(x, x2)
        x = self.up3(x, x1)
        return self.outc(x)
