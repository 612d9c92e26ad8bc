"""What the network returns."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DigitOutput:
    """Network output for images (B, 3, H, W); h, w = H/4, W/4 (64 x 64 at 256 x 256).

    joints_uvd: (B, 42, 3) u, v in crop pixels (0..W, 0..H; heatmap unit x 4) and d = depth
        relative to the joint's hand root in mm. Joints 0..20 right hand, 21..41 left
        (InterHand2.6M order, roots 20 and 41).
    rel_root_depth_mm: (B,) left root depth minus right root depth, mm.
    handedness_logits: (B, 2) logits of (right present, left present); sigmoid for
        probabilities.
    segm_logits: (B, C, H/2, W/2) segmentation logits in this project's class order (C = 33:
        0 background, 1..16 right = 1 + MANO joint, 17..32 left; C = 3 for `lr_segm`:
        background, right, left), or None for `baseline`.
    heatmaps: (B, 42, h, w) softmax-normalised 2D heatmaps (each sums to 1).
    joints_hm: (B, 42, 3) 2.5D joints in heatmap units: x, y (cell centres at index + 0.5) and
        z = root-relative depth in heatmap depth units (0..64 <-> -200..200 mm). The 2.5D and
        bone losses are computed on these.
    rel_root_depth_bins: (B,) relative root depth as a bin coordinate (expectation over bins
        0..63; the root-depth loss is L1 on this).
    root_depth_logits: (B, 64) relative root depth bin logits.
    chirality_logits: (B, 2) per hand slot (right, left), "the hand in this slot's frame is a
        right hand" (`handedness = "hand_frame"` only; None otherwise).
    two_hands_logit: (B,) "two hands are shown" (`handedness = "hand_frame"` only).
    """

    joints_uvd: torch.Tensor
    rel_root_depth_mm: torch.Tensor
    handedness_logits: torch.Tensor
    segm_logits: torch.Tensor | None
    heatmaps: torch.Tensor
    joints_hm: torch.Tensor
    rel_root_depth_bins: torch.Tensor
    root_depth_logits: torch.Tensor
    chirality_logits: torch.Tensor | None = None
    two_hands_logit: torch.Tensor | None = None
