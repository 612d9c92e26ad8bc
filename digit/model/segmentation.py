"""Segmentation head (S) and the semantic features S' computed from it.

Class order of S: this project's ids (0 background, 1..16 right = 1 + MANO joint, 17..32 left),
or (background, right, left) for the 3-class variant. The released checkpoint's channels are in
DIGIT's order and are reordered when it is loaded (`digit.official`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from digit.model.config import FEATURE_CHANNELS, SEMANTIC_CHANNELS
from digit.model.unet import DoubleConv, Up


class SegmentationHead(nn.Module):
    """F (B, 32, h, w) -> S logits (B, num_classes, 2h, 2w).

    Bilinear x2 (align_corners=True); conv3x3 32->16, BN, ReLU; conv3x3 16->64, BN, ReLU;
    conv3x3 64->C, BN, ReLU; conv3x3 C->C (paper Table 9). 43,005 parameters at C = 33.
    """

    def __init__(self, num_classes: int, in_ch: int = FEATURE_CHANNELS) -> None:
        super().__init__()
        # "upsampler.up1" and "segm_net" are the released checkpoint's names
        self.upsampler = nn.ModuleDict({"up1": Up(in_ch, 64, in_ch // 2)})
        self.segm_net = DoubleConv(64, num_classes, num_classes, final_bn_relu=False)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.segm_net(self.upsampler["up1"](features))


def semantic_input(segm_logits: torch.Tensor, mode: str, detach: bool = False) -> torch.Tensor:
    """What S' is computed from: (B, C, H, W) -> (B, C, H, W).

    mode "logits": S itself (released model); "probs": softmax over classes (paper text);
    "labels": one-hot of the argmax class (ablation), always detached. detach: no gradient
    flows back into S, so the segmentation head learns from the segmentation loss alone.
    """
    if detach:
        segm_logits = segm_logits.detach()
    if mode == "logits":
        return segm_logits
    if mode == "probs":
        return torch.softmax(segm_logits, dim=1)
    if mode == "labels":
        labels = segm_logits.detach().argmax(dim=1)
        one_hot = F.one_hot(labels, segm_logits.shape[1])  # (B, H, W, C)
        return one_hot.permute(0, 3, 1, 2).to(segm_logits.dtype)
    raise ValueError(f"unknown semantic input mode {mode!r}")


def semantic_features(
    num_classes: int, out_ch: int = SEMANTIC_CHANNELS, mid_ch: int = 64
) -> nn.Sequential:
    """S' from S: conv3x3 C->64, ReLU, conv3x3 64->512, ReLU, maxpool 2 (released widths).

    (B, C, H, W) -> (B, out_ch, H/2, W/2). 314,496 parameters at C = 33.
    """
    return nn.Sequential(
        nn.Conv2d(num_classes, mid_ch, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.Conv2d(mid_ch, out_ch, 3, padding=1),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )
