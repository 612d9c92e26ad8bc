"""Which hand is it, asked in each hand's own frame (`NetworkConfig.handedness = "hand_frame"`).

A right hand and a left one differ only by a mirror, so the cue (which side the thumb is on,
seen from the palm or from the back) means something only relative to the hand's own
orientation. Asked of the whole crop, as the release's global head does, the rule must be
learnt at every in-plane turn and box jitter, which on the synthetic default takes more images
than the CPU demo sees (BENCHMARKS.md, "Where the rule is lost"). Here each hand slot's
predicted 2D joints (detached: the frame is an input of this branch, not something it is
trained to move) give a frame, upright from the wrist to the middle finger's base, centred on
the hand and sized to it; the backbone features F are resampled in it and a small head says
"a right hand" or not (one logit per slot). Whether there are two hands is another small head
on F (one logit); the two are combined into the (right present, left present) logits of the
output contract by `handedness_from_frames`.

Conventions: joints in heatmap units (crop pixel / 4, pixel centres at integers, as the
targets); grid coordinates as `grid_sample` with align_corners False (-1 and 1 the crop's
outer edges). Not the release's: off in `paper`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.joints import HAND_JOINTS, RIGHT_ROOT
from core.parts import LEFT_OFFSET, NUM_CLASSES, NUM_PARTS, RIGHT_OFFSET
from core.parts import swap_hands as swap_part_classes
from digit.model.config import FEATURE_STRIDE, ROOT_BINS
from digit.model.output import DigitOutput

if TYPE_CHECKING:  # digit.targets imports digit.model (a cycle at run time)
    from digit.targets import PoseTargets

MIDDLE_BASE = 11  # middle1 in one hand's skeleton.txt order (core.joints.HAND_JOINT_NAMES)
FRAME_CELLS = 16  # side of the resampled feature crop, cells
FRAME_MARGIN = 1.2  # the crop's half-side: this x the largest joint distance from the centre
_PROB_EPS = 1e-6  # probabilities are clamped to [eps, 1 - eps] before their logit


def heatmap_to_grid(joints_hm: torch.Tensor, input_size: int) -> torch.Tensor:
    """Heatmap units -> grid_sample coordinates of a crop of `input_size` pixels:
    (..., 2) -> (..., 2), float64 (crop pixel p, centred at integer p, is (p + 0.5) 2 / S - 1)."""
    return (joints_hm.double() * FEATURE_STRIDE + 0.5) * (2.0 / input_size) - 1.0


def hand_frame_theta(
    xy: torch.Tensor, valid: torch.Tensor, frame: str = "hand"
) -> tuple[torch.Tensor, torch.Tensor]:
    """The affine maps (for `F.affine_grid`) of each hand's frame, from one hand's joints.

    xy (B, 21, 2) grid coordinates (`heatmap_to_grid`) in one hand's skeleton.txt order;
    valid (B, 21) bool. frame "rotate": the crop turned about its centre so that the wrist ->
    middle base direction becomes the output's -y (up); "hand": the same turn about the centre
    of the valid joints, the output's half-side FRAME_MARGIN x the largest distance of a valid
    joint from that centre. Returns (theta (B, 2, 3) float64, ok (B,) bool); where the wrist
    or middle base is invalid or they coincide, ok is False and theta the identity.
    """
    if frame not in ("rotate", "hand"):
        raise ValueError(f"frame: {frame!r}, expected 'rotate' or 'hand'")
    xy = xy.double()
    d = xy[:, MIDDLE_BASE] - xy[:, RIGHT_ROOT]
    norm = d.norm(dim=1)
    ok = valid[:, MIDDLE_BASE] & valid[:, RIGHT_ROOT] & torch.isfinite(norm) & (norm > 0)
    # affine_grid maps output to input coordinates: the output's (0, -1) must land on d / |d|
    sin = torch.where(ok, d[:, 0] / norm.clamp_min(1e-12), 0.0)
    cos = torch.where(ok, -d[:, 1] / norm.clamp_min(1e-12), 1.0)
    scale = torch.ones_like(norm)
    centre = torch.zeros_like(d)
    if frame == "hand":
        good = valid & torch.isfinite(xy).all(-1)
        count = good.sum(1, keepdim=True).clamp_min(1)
        mean = torch.where(good[..., None], xy, 0.0).sum(1) / count
        reach = torch.where(good, (xy - mean[:, None]).norm(dim=-1), 0.0).amax(1)
        ok = ok & (reach > 0)
        centre = torch.where(ok[:, None], mean, 0.0)
        scale = torch.where(ok, FRAME_MARGIN * reach, 1.0)
    sin, cos = torch.where(ok, sin, 0.0), torch.where(ok, cos, 1.0)
    theta = torch.zeros(len(xy), 2, 3, dtype=torch.float64, device=xy.device)
    theta[:, 0, 0], theta[:, 0, 1] = scale * cos, -scale * sin
    theta[:, 1, 0], theta[:, 1, 1] = scale * sin, scale * cos
    theta[:, :, 2] = centre
    return theta, ok


def resample_in_frame(
    maps: torch.Tensor, theta: torch.Tensor, cells: int | None = None
) -> torch.Tensor:
    """maps (B, C, H, W) resampled bilinearly on the frames theta (B, 2, 3) into
    (B, C, cells, cells) (default: the input's size); outside the input is 0."""
    size = (cells or maps.shape[-2], cells or maps.shape[-1])
    grid = F.affine_grid(theta.to(maps.dtype), [len(maps), maps.shape[1], *size], False)
    return F.grid_sample(maps, grid, align_corners=False)


def _conv_bn_relu(layers: tuple[tuple[int, int, int], ...]) -> list[nn.Module]:
    """Conv3x3-BN-ReLU for each (in, out, stride)."""
    out: list[nn.Module] = []
    for c_in, c_out, stride in layers:
        out += [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out)]
        out.append(nn.ReLU(inplace=True))
    return out


class HandFrameHandedness(nn.Module):
    """features F (B, C, h, w), joints_hm (B, 42, >=2) (detached here), input_size ->
    (two_hands_logit (B,), chirality logits (B, 2)).

    chirality: per slot (right, left), "the hand in this slot's frame is a right hand":
    F resampled in the slot's frame (FRAME_CELLS cells), conv-BN-ReLU at 16, 8 and 4 cells,
    then a linear layer over the whole 4 x 4 map (its layout is the hand's: which side is the
    thumb's). two_hands: conv-BN-ReLU at strides 2, 4 and 8 of F, mean over space, linear: a
    head of its own on F, because the release's global head, which reads the fusion UNet's
    output, learnt "one hand or two" too slowly for the CPU demo (0.68 after 900 steps;
    BENCHMARKS.md)."""

    def __init__(self, in_channels: int, cells: int = FRAME_CELLS) -> None:
        super().__init__()
        self.cells = cells
        side = cells // 4
        frame = ((in_channels, 64, 1), (64, 64, 2), (64, 128, 2))
        self.frame_head = nn.Sequential(
            *_conv_bn_relu(frame), nn.Flatten(), nn.Linear(128 * side * side, 1)
        )
        count = ((in_channels, 64, 2), (64, 128, 2), (128, 128, 2))
        self.count_head = nn.Sequential(
            *_conv_bn_relu(count), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, 1)
        )

    def forward(
        self, features: torch.Tensor, joints_hm: torch.Tensor, input_size: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        b = len(features)
        crops = []
        for slot in range(2):
            hand = joints_hm[:, slot * HAND_JOINTS : (slot + 1) * HAND_JOINTS, :2].detach()
            xy = heatmap_to_grid(hand, input_size)
            theta, _ = hand_frame_theta(xy, torch.isfinite(xy).all(-1), "hand")
            crops.append(resample_in_frame(features, theta, self.cells))
        chirality = self.frame_head(torch.cat(crops)).view(2, b).t()  # slot 0's, then slot 1's
        return self.count_head(features)[:, 0], chirality


def handedness_from_frames(two_hands_logit: torch.Tensor, chirality: torch.Tensor) -> torch.Tensor:
    """(right present, left present) logits (B, 2) from the global head's "two hands" logit
    (B,) and the slots' chirality logits (B, 2): with p2 = P(two hands) and c = P(right | one
    hand) from the mean of the two slots' logits (one hand: both slots find it),
    P(right) = p2 + (1 - p2) c and P(left) = p2 + (1 - p2)(1 - c). Float32."""
    p2 = torch.sigmoid(two_hands_logit.float())
    c = torch.sigmoid(chirality.float().mean(dim=1))
    right = p2 + (1 - p2) * c
    left = p2 + (1 - p2) * (1 - c)
    probs = torch.stack([right, left], dim=1).clamp(_PROB_EPS, 1 - _PROB_EPS)
    return torch.logit(probs)


def chirality_targets(
    hand_type: torch.Tensor, valid: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """What each slot's frame shows: hand_type (B, 2) presence bits, valid (B,) -> (target
    (B, 2) float: 1 = a right hand, valid (B, 2) bool). Two hands: slot 0 right, slot 1 left;
    one hand: both slots find it, both say its side; no hand or invalid: not counted."""
    right, left = hand_type[:, 0] > 0, hand_type[:, 1] > 0
    both = right & left
    target = torch.stack([right, right & ~both], dim=1).float()
    ok = valid.to(torch.bool) & (right | left)
    return target, ok[:, None].expand(-1, 2)


# ----------------------------------------------------------------------- which slot is which
# With this branch the pose heads need not know which of two hands is the right one: on
# two-hand images slot 0 is trained on the hand further left in the crop (`spatial_assignment`,
# `swap_target_hands`), which they can see, and the branch's chirality says which slot holds
# the right hand (`assign_hands`, applied by the network in eval mode). A fixed right/left
# assignment asks a network that cannot yet tell the hands apart to hedge between them, and
# the better of the two assignments (tried first) lets it keep hedging: in both, the two slots
# sit between the hands (predicted hands 0.19 x as far apart as the true ones on the demo
# model's test images; left to right: 0.68 x; BENCHMARKS.md, "Two slots, one place").
# Single-hand images keep the fixed assignment (the annotated side's slot; both slots may
# find the hand), and their part labels their true side: that supervision is what teaches the
# features the branch reads which hand is which (trained instead with one side for every single
# hand, the segmentation's right vs left rose but the branch's fell, 0.93 -> 0.87; BENCHMARKS.md,
# "Two slots, one place"). Outside training, a single hand's part classes take their side from
# the branch (`sides_from_branch`).


def swap_slots(x: torch.Tensor, swap: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """x with its two hand halves along `dim` (42 joints, or 2 per-hand values) exchanged
    where swap (B,) is True."""
    half = x.shape[dim] // 2
    swapped = torch.cat([x.narrow(dim, half, half), x.narrow(dim, 0, half)], dim)
    shape = [len(x)] + [1] * (x.ndim - 1)
    return torch.where(swap.view(shape), swapped, x)


def swap_class_map(num_classes: int, device: torch.device | None = None) -> torch.Tensor:
    """(C,) long: each segmentation class's counterpart on the other hand (background stays):
    33 classes: `core.parts.swap_hands` (1..16 <-> 17..32, the flip's); 3 classes
    (`lr_segm`): 1 <-> 2."""
    if num_classes == 3:
        return torch.tensor([0, 2, 1], device=device)
    return torch.as_tensor(swap_part_classes(np.arange(num_classes)), device=device)


def spatial_assignment(
    target_hm: torch.Tensor, valid: torch.Tensor, hand_type: torch.Tensor
) -> torch.Tensor:
    """(B,) bool: two-hand samples whose right hand lies right of their left hand in the crop
    (mean x of each hand's valid joints; equal: not exchanged), i.e. those whose targets are
    exchanged so that slot 0 holds the hand further left. target_hm (B, 42, >=1) heatmap
    units; valid (B, 42) bool; hand_type (B, 2). Samples where either hand has no valid joint
    keep the fixed assignment."""
    v = valid.to(torch.bool)
    x = torch.where(v, target_hm[..., 0].float(), 0.0)
    right, left = slice(0, HAND_JOINTS), slice(HAND_JOINTS, 2 * HAND_JOINTS)
    n_r, n_l = v[:, right].sum(1), v[:, left].sum(1)
    mean_r = x[:, right].sum(1) / n_r.clamp_min(1)
    mean_l = x[:, left].sum(1) / n_l.clamp_min(1)
    two = (hand_type > 0).all(dim=1) & (n_r > 0) & (n_l > 0)
    return two & (mean_r > mean_l)


def swap_target_hands(
    targets: PoseTargets, segm_target: torch.Tensor | None, swap: torch.Tensor, num_classes: int
) -> tuple[PoseTargets, torch.Tensor | None]:
    """The targets of the samples where swap (B,) is True described with the hands exchanged:
    joints and their validity slot for slot, the left-minus-right root depth negated (bin
    coordinate 64 - b), the presence bits exchanged, and each part class for its counterpart
    on the other hand (`swap_class_map`). segm_target (B, H, W) long or None."""
    if segm_target is not None:
        mapped = swap_class_map(num_classes, segm_target.device)[
            segm_target.clamp(0, num_classes - 1)
        ]
        segm_target = torch.where(swap[:, None, None], mapped, segm_target)
    return (
        replace(
            targets,
            joints_hm=swap_slots(targets.joints_hm, swap),
            joint_valid=swap_slots(targets.joint_valid, swap),
            rel_root_bins=torch.where(
                swap, ROOT_BINS - targets.rel_root_bins, targets.rel_root_bins
            ),
            hand_type=swap_slots(targets.hand_type, swap),
        ),
        segm_target,
    )


def sides_from_branch(segm_logits: torch.Tensor, chirality: torch.Tensor) -> torch.Tensor:
    """A one-hand image's part segmentation with its side from the branch: segm_logits (B, 33,
    H, W), chirality (B,) "right hand" logit -> (B, 33, H, W) log-probabilities (float32).
    Each pixel keeps its background probability and its probability of each part k, summed
    over both hands (p(k) = p(right k) + p(left k)); the hand is the branch's, P(right) = c:
    right part k gets p(k) c, left part k p(k) (1 - c). One hand: every hand pixel is that
    hand's, whose side a pixel head sees far worse than the branch does."""
    logp = torch.log_softmax(segm_logits.float(), dim=1)
    right = logp[:, RIGHT_OFFSET : RIGHT_OFFSET + NUM_PARTS]
    left = logp[:, LEFT_OFFSET : LEFT_OFFSET + NUM_PARTS]
    part = torch.logaddexp(right, left)
    c = chirality.float()[:, None, None, None]
    log_r, log_l = F.logsigmoid(c), F.logsigmoid(-c)
    return torch.cat([logp[:, :1], part + log_r, part + log_l], dim=1)


def assign_hands(output: DigitOutput) -> DigitOutput:
    """The output with its slots exchanged where the branch sees two hands (P(two) > 0.5) and
    slot 0's hand looks less like a right hand than slot 1's: every per-hand field swapped
    (joints, heatmaps, chirality), the relative root depth negated (its bins reversed), the
    part classes exchanged. Where the branch sees one hand, the part classes take their side
    from it (`sides_from_branch`). Needs `chirality_logits` and `two_hands_logit`."""
    c = output.chirality_logits
    two = output.two_hands_logit > 0
    swap = two & (c[:, 0] < c[:, 1])
    segm = output.segm_logits
    if segm is not None:
        order = swap_class_map(segm.shape[1], segm.device)
        segm = torch.where(swap[:, None, None, None], segm[:, order], segm)
        if segm.shape[1] == NUM_CLASSES:
            one = sides_from_branch(segm, c.mean(dim=1))
            segm = torch.where(two[:, None, None, None], segm, one)
    return replace(
        output,
        joints_uvd=swap_slots(output.joints_uvd, swap),
        joints_hm=swap_slots(output.joints_hm, swap),
        heatmaps=swap_slots(output.heatmaps, swap),
        rel_root_depth_mm=torch.where(swap, -output.rel_root_depth_mm, output.rel_root_depth_mm),
        rel_root_depth_bins=torch.where(
            swap, ROOT_BINS - output.rel_root_depth_bins, output.rel_root_depth_bins
        ),
        root_depth_logits=torch.where(
            swap[:, None], output.root_depth_logits.flip(-1), output.root_depth_logits
        ),
        handedness_logits=swap_slots(output.handedness_logits, swap),
        chirality_logits=swap_slots(c, swap),
        segm_logits=segm,
    )
