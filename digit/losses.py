"""DIGIT's training losses as pure functions (`reference/digit_network.md`, "Losses").

Every term is averaged, then the weighted terms are summed. Two ways to average:
- "valid" (default): the mean over the valid elements only, i.e. the masked sum divided by the
  number of valid elements; a batch with no valid element gives exactly 0 (finite gradients).
- "release": as the released code reduces: the masked sum divided by the count of ALL elements
  (invalid ones count as zeros), and the bone term as left-hand mean + right-hand mean.
What "element" means per term (B = batch):
| term | element | "valid" divides by | "release" divides by |
|---|---|---|---|
| joints | one coordinate of one joint | 3 x valid joints | B x 42 x 3 |
| root | one sample | valid samples | B |
| handedness | one of the 2 outputs of a sample | 2 x valid samples | B x 2 |
| segmentation | one pixel of a sample | H x W x valid samples | B x H x W |
| bone | one coordinate of one bone | 3 x valid bones | B x 20 x 3 (once per hand, summed) |
| heatmap | one joint's map | valid joints inside the map | B x 42 |
| chirality | one hand slot of a sample | 2 x valid samples with a hand | B x 2 |

The heatmap term is not the release's (weight 0 there): the KL divergence from a Gaussian around
the target to the softmax heatmap. Soft-argmax alone hands a broad heatmap only a weak gradient
towards the target; supervising the map's shape as well is the usual remedy (integral pose
regression), and it makes the 2D error fall several times faster on short CPU budgets.
The chirality term is not the release's either: it exists only for networks with
`handedness = "hand_frame"` (binary cross-entropy of each slot's "right hand" logit against
`digit.model.hand_frame.chirality_targets`). For those networks every term sees the targets of
two-hand samples with slot 0 = the hand further left in the crop
(`digit.model.hand_frame.spatial_assignment`): which slot is the right hand is the branch's
answer, not the pose heads'.
Inputs are cast to float32 so that fp16 autocast outputs reduce safely.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from core.joints import BONES
from core.parts import NUM_CLASSES
from digit.model.hand_frame import (
    chirality_targets,
    spatial_assignment,
    swap_slots,
    swap_target_hands,
)
from digit.model.output import DigitOutput
from digit.targets import PoseTargets

AVERAGES: tuple[str, ...] = ("valid", "release")


@dataclass(frozen=True)
class LossWeights:
    """Weights of the summed terms; defaults are the released model's. SF* (segmentation
    features without segmentation supervision) = `LossWeights(segmentation=0.0)`."""

    joints: float = 1.0
    root: float = 1.0
    handedness: float = 1.0
    segmentation: float = 10.0
    bone: float = 0.1
    heatmap: float = 0.0
    chirality: float = 1.0


HEATMAP_SIGMA = 1.0  # heatmap cells: the target Gaussian of the heatmap term


def _check_average(average: str) -> None:
    if average not in AVERAGES:
        raise ValueError(f"average: unknown value {average!r}; one of {AVERAGES}")


def _masked_mean(err: torch.Tensor, mask: torch.Tensor, average: str) -> torch.Tensor:
    """Average of `err` over the True entries of `mask` (same shape): "valid" divides by their
    count (0 when there are none), "release" by err.numel(). Masked-out entries never reach the
    result or the gradient, even if they are non-finite."""
    _check_average(average)
    total = torch.where(mask, err, torch.zeros_like(err)).sum()
    count = mask.sum() if average == "valid" else err.numel()
    # clamp: an all-invalid batch gives 0 / 1 = 0, not 0 / 0.
    return total / torch.clamp(torch.as_tensor(count, device=err.device, dtype=err.dtype), min=1)


def _clean(target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Target with masked-out entries set to 0 (they may hold NaN or out-of-range values, which
    would poison the forward or backward pass before masking)."""
    return torch.where(mask, target, torch.zeros_like(target))


def joints_loss(
    pred_hm: torch.Tensor, target_hm: torch.Tensor, valid: torch.Tensor, average: str = "valid"
) -> torch.Tensor:
    """L1 on 2.5D joints in heatmap units: pred, target (B, J, 3), valid (B, J) -> scalar.
    Mean of |pred - target| over the 3 coordinates of the valid joints."""
    mask = valid.to(torch.bool).unsqueeze(-1).expand_as(pred_hm)
    err = (pred_hm.float() - _clean(target_hm.float(), mask)).abs()
    return _masked_mean(err, mask, average)


def root_loss(
    pred_bins: torch.Tensor, target_bins: torch.Tensor, valid: torch.Tensor, average: str = "valid"
) -> torch.Tensor:
    """L1 on the relative root depth bin coordinate: pred, target, valid (B,) -> scalar.
    Mean of |pred - target| over the valid samples."""
    mask = valid.to(torch.bool)
    err = (pred_bins.float() - _clean(target_bins.float(), mask)).abs()
    return _masked_mean(err, mask, average)


def handedness_loss(
    logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, average: str = "valid"
) -> torch.Tensor:
    """Binary cross-entropy with logits: logits, target (B, 2) (right, left presence in 0..1),
    valid (B,) -> scalar. Mean over both outputs of the valid samples."""
    mask = valid.to(torch.bool).unsqueeze(-1).expand_as(logits)
    err = F.binary_cross_entropy_with_logits(
        logits.float(), _clean(target.float(), mask), reduction="none"
    )
    return _masked_mean(err, mask, average)


def chirality_loss(
    logits: torch.Tensor,
    hand_type: torch.Tensor,
    valid: torch.Tensor,
    average: str = "valid",
    swap: torch.Tensor | None = None,
) -> torch.Tensor:
    """Binary cross-entropy with logits of each hand slot's "right hand" answer: logits (B, 2),
    hand_type (B, 2) presence bits, valid (B,) -> scalar; targets `chirality_targets`, the two
    slots' exchanged where swap (B,) bool is True (slot 0 holds the left hand)."""
    target, mask = chirality_targets(hand_type, valid)
    if swap is not None:
        target = swap_slots(target, swap)
    err = F.binary_cross_entropy_with_logits(logits.float(), target, reduction="none")
    return _masked_mean(err, mask, average)


def segmentation_loss(
    logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, average: str = "valid"
) -> torch.Tensor:
    """Cross-entropy over C classes: logits (B, C, H, W), target (B, H, W) long class indices
    (0..C-1 in valid samples; anything in invalid ones), valid (B,) -> scalar.
    Mean over all H x W pixels of the valid samples."""
    if target.shape != (logits.shape[0], *logits.shape[2:]):
        raise ValueError(
            f"segm_target: expected shape {(logits.shape[0], *logits.shape[2:])}, "
            f"got {tuple(target.shape)}"
        )
    mask = valid.to(torch.bool)[:, None, None].expand_as(target)
    err = F.cross_entropy(logits.float(), _clean(target.long(), mask), reduction="none")
    return _masked_mean(err, mask, average)


def heatmap_loss(
    heatmaps: torch.Tensor,
    target_hm: torch.Tensor,
    valid: torch.Tensor,
    sigma: float = HEATMAP_SIGMA,
    average: str = "valid",
) -> torch.Tensor:
    """KL(Gaussian target || heatmap) per joint map, averaged: heatmaps (B, J, h, w)
    softmax-normalised, target_hm (B, J, 3) heatmap units (x, y used; cell (r, c) centred at
    (c + 0.5, r + 0.5)), valid (B, J) -> scalar. The target is a Gaussian of `sigma` cells
    sampled at the cell centres and normalised over the map; a joint counts where it is valid
    and its target lies inside the map. 0 for a heatmap equal to its target."""
    _, _, h, w = heatmaps.shape
    xy = target_hm[..., :2].float()
    mask = valid.to(torch.bool) & torch.isfinite(xy).all(dim=-1)
    xy = _clean(xy, mask.unsqueeze(-1).expand_as(xy))
    mask = mask & (xy[..., 0] >= 0) & (xy[..., 0] <= w) & (xy[..., 1] >= 0) & (xy[..., 1] <= h)
    xs = torch.arange(w, device=xy.device, dtype=xy.dtype) + 0.5
    ys = torch.arange(h, device=xy.device, dtype=xy.dtype) + 0.5
    # separable: log g = -(dx^2 + dy^2) / 2 sigma^2 - log Z, normalised over the map
    log_gx = -((xs - xy[..., 0:1]) ** 2) / (2 * sigma**2)  # (B, J, w)
    log_gy = -((ys - xy[..., 1:2]) ** 2) / (2 * sigma**2)  # (B, J, h)
    log_g = log_gy.unsqueeze(-1) + log_gx.unsqueeze(-2)
    log_g = log_g - torch.logsumexp(log_g.flatten(2), dim=-1)[..., None, None]
    log_p = torch.log(heatmaps.float().clamp_min(1e-30))
    kl = (log_g.exp() * (log_g - log_p)).flatten(2).sum(dim=-1)  # (B, J)
    return _masked_mean(kl, mask, average)


def bone_index(device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(child, parent) joint indices of the 40 bones as two (40,) long tensors."""
    pairs = torch.tensor(BONES, dtype=torch.long, device=device)
    return pairs[:, 0], pairs[:, 1]


def bone_loss(
    pred_hm: torch.Tensor, target_hm: torch.Tensor, valid: torch.Tensor, average: str = "valid"
) -> torch.Tensor:
    """Squared error of bone vectors (child - parent) in 2.5D heatmap space over the 40 bones:
    pred, target (B, 42, 3), valid (B, 42) -> scalar. A bone counts where both its joints are
    valid; "valid" takes the mean over the 3 coordinates of the valid bones, "release" the
    per-hand means over B x 20 x 3 elements, summed over the two hands."""
    _check_average(average)
    child, parent = bone_index(pred_hm.device)
    valid_b = valid.to(torch.bool)
    bone_valid = (valid_b[:, child] & valid_b[:, parent]).unsqueeze(-1)
    joint_mask = valid_b.unsqueeze(-1).expand_as(target_hm)
    target = _clean(target_hm.float(), joint_mask)
    pred = pred_hm.float()
    err = ((pred[:, child] - pred[:, parent]) - (target[:, child] - target[:, parent])) ** 2
    mask = bone_valid.expand_as(err)
    if average == "valid":
        return _masked_mean(err, mask, average)
    half = len(BONES) // 2
    return _masked_mean(err[:, :half], mask[:, :half], average) + _masked_mean(
        err[:, half:], mask[:, half:], average
    )


def digit_loss(
    output: DigitOutput,
    targets: PoseTargets,
    segm_target: torch.Tensor | None,
    segm_valid: torch.Tensor | None,
    weights: LossWeights = LossWeights(),
    average: str = "valid",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total training loss and its unweighted terms.

    output: the network's `DigitOutput` (joints_hm (B, 42, 3), rel_root_depth_bins (B,),
        handedness_logits (B, 2), segm_logits (B, C, 128, 128) or None).
    targets: `PoseTargets` of the batch.
    segm_target: (B, 128, 128) long part labels, or None (no segmentation supervision).
    segm_valid: (B,) bool mask validity per sample; None = every sample valid.
    Returns (total = sum of weight x term, {"joints", "root", "handedness", "segmentation",
    "bone"} unweighted scalar terms, plus "heatmap" when its weight is not 0 and "chirality"
    when the network has a hand-frame handedness branch). The
    segmentation term is 0 without logits or target; with weight 0 (SF*) it is still reported
    (computed without gradient) but adds nothing.
    """
    _check_average(average)
    swap = None
    if output.chirality_logits is not None:  # hand_frame: slot 0 = the hand further left
        swap = spatial_assignment(targets.joints_hm, targets.joint_valid, targets.hand_type)
        segm = output.segm_logits
        classes = segm.shape[1] if segm is not None else NUM_CLASSES
        targets, segm_target = swap_target_hands(targets, segm_target, swap, classes)
    terms = {
        "joints": joints_loss(output.joints_hm, targets.joints_hm, targets.joint_valid, average),
        "root": root_loss(
            output.rel_root_depth_bins, targets.rel_root_bins, targets.rel_root_valid, average
        ),
        "handedness": handedness_loss(
            output.handedness_logits, targets.hand_type, targets.hand_type_valid, average
        ),
        "bone": bone_loss(output.joints_hm, targets.joints_hm, targets.joint_valid, average),
    }
    if weights.heatmap != 0:
        terms["heatmap"] = heatmap_loss(
            output.heatmaps, targets.joints_hm, targets.joint_valid, average=average
        )
    if output.chirality_logits is not None:
        terms["chirality"] = chirality_loss(
            output.chirality_logits, targets.hand_type, targets.hand_type_valid, average, swap
        )
    logits = output.segm_logits
    if logits is not None and segm_target is not None:
        if segm_valid is None:
            segm_valid = torch.ones(logits.shape[0], dtype=torch.bool, device=logits.device)
        with torch.set_grad_enabled(torch.is_grad_enabled() and weights.segmentation != 0):
            terms["segmentation"] = segmentation_loss(logits, segm_target, segm_valid, average)
    elif logits is not None and weights.segmentation != 0:
        raise ValueError("segm_target: required when the network predicts segmentation")
    else:
        terms["segmentation"] = output.joints_hm.new_zeros((), dtype=torch.float32)

    total = sum(
        (getattr(weights, name) * value for name, value in terms.items()),
        start=output.joints_hm.new_zeros((), dtype=torch.float32),
    )
    return total, terms
