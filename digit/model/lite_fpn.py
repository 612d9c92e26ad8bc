"""EfficientNet-Lite trunk with a small fusion neck: stride-4 features that carry the deep layers.

An EfficientNet tapped at stride 4 would use only its stem and first two stages (16 k of
lite0's 3.0 M trunk parameters). Here the trunk runs to stride 32 and a neck brings strides 4,
8, 16 and 32 back to stride 4: a 1x1 lateral conv per stride, bilinear upsampling to the
stride-4 grid, a sum, then conv3x3 + BN + ReLU to the 32 channels DIGIT's heads read
(HRNet-style fusion: every scale feeds the high-resolution map directly, without FPN's
top-down chain).

The pretrained EfficientNet-Lite weights expect TensorFlow's Lite preprocessing, pixels in
0..255 minus 127, over 128; DIGIT's images are RGB in [0, 1], so the backbone applies
(x - 127/255) / (128/255) itself (buffers `mean`, `std`). The packaged lite0 stem's batch-norm
running statistics agree with that, not with the ImageNet mean/std that the model package's
README shows: on a natural photograph, ImageNet normalisation gives stem outputs with about 5x
the stored running variance, TensorFlow's about 1.1x.

timm builds these BNs with TensorFlow's eps (1e-3) but PyTorch's momentum (0.1, TensorFlow
trained with 0.01): same outputs in eval mode; while fine-tuning, running statistics follow the
new data at the rate of the rest of the network.
"""

from __future__ import annotations

import timm
import torch
import torch.nn.functional as F
from torch import nn

from core.errors import DigitError
from digit.model.config import FEATURE_CHANNELS

# DIGIT backbone name -> timm trunk (TensorFlow "same" padding: the packaged weights' layout)
LITE_BACKBONES: dict[str, str] = {
    f"efficientnet_lite{n}_fpn": f"tf_efficientnet_lite{n}" for n in (0, 1, 2)
}
NECK_CHANNELS = 64  # lateral width: small next to the trunk (lite0: 3.0 M parameters)
LITE_MEAN = 127.0 / 255.0  # TensorFlow EfficientNet-Lite input mean and std, in [0, 1] units
LITE_STD = 128.0 / 255.0
_TAPS = (1, 2, 3, 4)  # timm feature indices at strides 4, 8, 16, 32


class LiteFPN(nn.Module):
    """Images (B, 3, H, W), RGB in [0, 1], H and W multiples of 32 -> a one-element list
    [features (B, 32, H/4, W/4)], like the timm backbones.

    `trunk` is timm's `features_only` `tf_efficientnet_liteN` (strides 4..32); pretrained
    weights in timm names go there. `out_channels` is 32 (DIGIT's F), so the network needs no
    adapter.
    """

    def __init__(self, name: str, pretrained_timm: bool = False) -> None:
        super().__init__()
        self.trunk = timm.create_model(
            LITE_BACKBONES[name], features_only=True, out_indices=_TAPS, pretrained=pretrained_timm
        )
        strides = self.trunk.feature_info.reduction()
        if strides != [4, 8, 16, 32]:  # a timm layout change
            raise DigitError(
                f"--backbone {name}: timm {timm.__version__} gives trunk strides {strides}, "
                "expected [4, 8, 16, 32]"
            )
        # constants of the weights' training, not learned: kept out of the state dict
        self.register_buffer("mean", torch.full((1, 3, 1, 1), LITE_MEAN), persistent=False)
        self.register_buffer("std", torch.full((1, 3, 1, 1), LITE_STD), persistent=False)
        self.lateral = nn.ModuleList(
            nn.Conv2d(c, NECK_CHANNELS, 1) for c in self.trunk.feature_info.channels()
        )
        self.fuse = nn.Sequential(
            nn.Conv2d(NECK_CHANNELS, FEATURE_CHANNELS, 3, padding=1, bias=False),
            nn.BatchNorm2d(FEATURE_CHANNELS),
            nn.ReLU(inplace=True),
        )
        self.out_channels = FEATURE_CHANNELS

    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        levels = self.trunk((images - self.mean) / self.std)  # strides 4, 8, 16, 32
        size = levels[0].shape[-2:]
        fused = self.lateral[0](levels[0])
        for lateral, level in zip(self.lateral[1:], levels[1:], strict=True):
            fused = fused + F.interpolate(
                lateral(level), size=size, mode="bilinear", align_corners=False
            )
        return [self.fuse(fused)]
