"""Training targets of DIGIT from crop-space annotations (pure, batched, device-agnostic).

Follows `reference/interhand26m.md`, "Official training-time processing":
- x, y: crop pixels / 4 -> heatmap units (the inverse of `decode.heatmap_to_pixels`).
- z: camera depth minus that hand's root depth (mm), mapped as (z / 200 + 1) / 2 x 64.
- A joint is valid when its input validity is set, it lies inside the crop (0 <= u, v < 256,
  the official test) and its mapped z lies in [0, 64).
- Relative root depth: left root minus right root (mm), mapped the same way over 64 bins; valid
  only for hand type [1, 1] with both roots valid (input validity and inside the crop) and the
  bin coordinate in [0, 64).
Joints 0..20 are the right hand (root 20), 21..41 the left (root 41).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from core.joints import LEFT_ROOT, NUM_JOINTS, RIGHT_ROOT, ROOT_OF_JOINT, with_root_validity
from digit.data.crop import CROP_SIZE, inside_crop
from digit.model.config import DEPTH_UNITS, FEATURE_STRIDE, ROOT_BINS
from digit.model.decode import mm_to_heatmap_depth, mm_to_root_bins


@dataclass(frozen=True)
class PoseTargets:
    """Targets of one batch (B samples), on the device of the inputs.

    joints_hm: (B, 42, 3) float 2.5D joints in heatmap units: x, y = crop pixel / 4 (0..64),
        z = root-relative depth mapped to 0..64 (32 = the root's depth). Entries of invalid
        joints are whatever the formulas give (possibly out of range or non-finite); the
        losses ignore them.
    joint_valid: (B, 42) bool.
    rel_root_bins: (B,) float left-minus-right root depth as a bin coordinate (0..64 <->
        -200..200 mm); meaningless where `rel_root_valid` is False.
    rel_root_valid: (B,) bool.
    hand_type: (B, 2) float (right present, left present), each 0 or 1.
    hand_type_valid: (B,) bool.
    """

    joints_hm: torch.Tensor
    joint_valid: torch.Tensor
    rel_root_bins: torch.Tensor
    rel_root_valid: torch.Tensor
    hand_type: torch.Tensor
    hand_type_valid: torch.Tensor


def hand_root_depth(depth_mm: torch.Tensor) -> torch.Tensor:
    """Each joint's hand root depth: (B, 42) mm -> (B, 42) mm (right joints get joint 20's
    depth, left joints joint 41's)."""
    return depth_mm[:, list(ROOT_OF_JOINT)]


def in_unit_range(coord: torch.Tensor, size: int) -> torch.Tensor:
    """0 <= coord < size (False for NaN): any shape -> same shape, bool."""
    return (coord >= 0) & (coord < size)


def build_pose_targets(
    joints_px: torch.Tensor,
    depth_mm: torch.Tensor,
    joint_valid: torch.Tensor,
    hand_type: torch.Tensor,
    hand_type_valid: torch.Tensor,
    crop_size: int = CROP_SIZE,
    require_valid_root: bool = False,
) -> PoseTargets:
    """2.5D joint, relative root depth and hand-type targets of a batch.

    joints_px: (B, 42, 2) joints (u, v) in crop pixels (after the crop warp and any flip).
    depth_mm: (B, 42) camera-frame depth of each joint, mm.
    joint_valid: (B, 42) annotation validity (bool, or nonzero = valid).
    hand_type: (B, 2) (right present, left present): [1, 0] right, [0, 1] left, [1, 1] both.
    hand_type_valid: (B,) bool (or nonzero = valid).
    crop_size: side of the square crop, pixels (heatmap side = crop_size / 4).
    require_valid_root: also invalidate every joint of a hand whose root is invalid (its depth
        reference is then unreliable). False reproduces the official processing.
    Returns `PoseTargets`; floats in the dtype of `joints_px` (float32 if it is not floating).
    """
    b = joints_px.shape[0]
    expected = {
        "joints_px": (joints_px.shape, (b, NUM_JOINTS, 2)),
        "depth_mm": (depth_mm.shape, (b, NUM_JOINTS)),
        "joint_valid": (joint_valid.shape, (b, NUM_JOINTS)),
        "hand_type": (hand_type.shape, (b, 2)),
        "hand_type_valid": (hand_type_valid.shape, (b,)),
    }
    for name, (got, want) in expected.items():
        if tuple(got) != want:
            raise ValueError(f"{name}: expected shape {want}, got {tuple(got)}")

    dtype = joints_px.dtype if joints_px.is_floating_point() else torch.float32
    px = joints_px.to(dtype)
    depth = depth_mm.to(dtype)

    xy_hm = px / FEATURE_STRIDE
    z_hm = mm_to_heatmap_depth(depth - hand_root_depth(depth))
    joints_hm = torch.cat([xy_hm, z_hm.unsqueeze(-1)], dim=-1)

    valid = (
        joint_valid.to(torch.bool)
        & inside_crop(px, crop_size)
        & in_unit_range(z_hm, DEPTH_UNITS)
        & torch.isfinite(px).all(dim=-1)
    )
    if require_valid_root:
        valid = with_root_validity(valid)

    hand_type_f = hand_type.to(dtype)
    both_hands = (hand_type_f > 0.5).all(dim=-1)
    rel_root_bins = mm_to_root_bins(depth[:, LEFT_ROOT] - depth[:, RIGHT_ROOT])
    # A root's own mapped z is 32, so its final validity is input validity AND inside the crop.
    rel_root_valid = (
        both_hands
        & valid[:, RIGHT_ROOT]
        & valid[:, LEFT_ROOT]
        & in_unit_range(rel_root_bins, ROOT_BINS)
    )
    return PoseTargets(
        joints_hm=joints_hm,
        joint_valid=valid,
        rel_root_bins=rel_root_bins,
        rel_root_valid=rel_root_valid,
        hand_type=hand_type_f,
        hand_type_valid=hand_type_valid.to(torch.bool),
    )
