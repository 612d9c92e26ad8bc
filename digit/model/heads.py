"""Pose heads: 2D heatmap and depth convs, the global head and its two MLPs (no BN, as released;
Sequential indices match the released checkpoint's keys)."""

from __future__ import annotations

from torch import nn

from core.joints import NUM_JOINTS
from digit.model.config import scaled_width


def joint_map_conv(in_ch: int) -> nn.Conv2d:
    """1x1 conv to one map per joint: (B, in_ch, h, w) -> (B, 42, h, w)."""
    return nn.Conv2d(in_ch, NUM_JOINTS, 1)


def global_head(in_ch: int, width: float = 1.0, norm: bool = False) -> nn.Sequential:
    """Global feature trunk (paper Table 10): (B, in_ch, h, w) -> (B, 512 x width, h/8, w/8).

    conv3x3 in->64, ReLU, conv 64->128, ReLU, maxpool 2, conv 128->256, ReLU, conv 256->512,
    ReLU, maxpool 2, conv 512->512, ReLU, conv 512->512, ReLU, maxpool 2 (widths x `width`).
    The caller averages over space to get (B, 512 x width). `norm`: each conv followed by
    BatchNorm (conv without bias), not the release's: a plain ReLU trunk trained at the `cpu`
    recipe's rate can die (every unit of a layer negative for every image, so the pooled
    features, the root depth and the handedness are constants; BENCHMARKS.md).
    """
    a, b, c, d = (scaled_width(n, width) for n in (64, 128, 256, 512))

    def conv(i: int, o: int) -> list[nn.Module]:
        if norm:
            return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(True)]
        return [nn.Conv2d(i, o, 3, padding=1), nn.ReLU(inplace=True)]

    return nn.Sequential(
        *conv(in_ch, a),
        *conv(a, b),
        nn.MaxPool2d(2),
        *conv(b, c),
        *conv(c, d),
        nn.MaxPool2d(2),
        *conv(d, d),
        *conv(d, d),
        nn.MaxPool2d(2),
    )


def mlp(out_dim: int, in_dim: int = 512, hidden: int = 512) -> nn.Sequential:
    """Linear in->hidden, ReLU, Linear hidden->out: (B, in_dim) -> (B, out_dim)."""
    return nn.Sequential(
        nn.Linear(in_dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, out_dim)
    )
