"""Flip test: the network's answer on the mirrored crop, mapped back and averaged with its answer
on the crop itself (`digit-eval --flip-test`).

A mirrored right hand looks like a left hand, so the answer on the mirror says of each hand what
the plain answer says of the other: the joint blocks (right 0..20, left 21..41) and the two
presence logits exchange, left-minus-right root depth changes sign, and the part classes of the
two sides exchange. Crop pixel centres sit at integers (`digit.data.crop`), so column j of the
mirror is column S - 1 - j of the crop: u -> S - 1 - u. Root-relative depths do not change.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from core.joints import LEFT, RIGHT
from digit.model.hand_frame import swap_class_map
from digit.model.output import DigitOutput


def unmirror_joints_uvd(uvd: torch.Tensor, size: int) -> torch.Tensor:
    """Joints (B, 42, 3) (u, v crop pixels, d mm) predicted on a mirrored crop of `size` px ->
    the same joints in the crop itself, right block first."""
    out = torch.cat([uvd[:, LEFT], uvd[:, RIGHT]], dim=1)
    out[..., 0] = (size - 1) - out[..., 0]
    return out


def unmirror_segm_logits(logits: torch.Tensor) -> torch.Tensor:
    """Part logits (B, C, h, w) predicted on a mirrored crop -> the crop's, sides exchanged."""
    # the map is an exchange (its own inverse), so it also says whose logit each class takes
    order = swap_class_map(logits.shape[1], logits.device)
    return logits.flip(-1).index_select(1, order)


@dataclass(frozen=True)
class FlipAveraged:
    """What evaluation reads from the network, each the mean of the crop's answer and its
    mirror's mapped back. Shapes as in `DigitOutput`: joints_uvd (B, 42, 3),
    rel_root_depth_mm (B,), handedness_logits (B, 2), segm_logits (B, C, H/2, W/2) or None."""

    joints_uvd: torch.Tensor
    rel_root_depth_mm: torch.Tensor
    handedness_logits: torch.Tensor
    segm_logits: torch.Tensor | None


def flip_averaged(net: nn.Module, images: torch.Tensor) -> FlipAveraged:
    """Run `net` on images (B, 3, S, S) and on their mirrors; average the two answers."""
    plain: DigitOutput = net(images)
    mirror: DigitOutput = net(images.flip(-1))
    size = images.shape[-1]
    segm = None
    if plain.segm_logits is not None:
        segm = (plain.segm_logits + unmirror_segm_logits(mirror.segm_logits)) / 2
    return FlipAveraged(
        joints_uvd=(plain.joints_uvd + unmirror_joints_uvd(mirror.joints_uvd, size)) / 2,
        rel_root_depth_mm=(plain.rel_root_depth_mm - mirror.rel_root_depth_mm) / 2,
        handedness_logits=(plain.handedness_logits + mirror.handedness_logits.flip(-1)) / 2,
        segm_logits=segm,
    )
