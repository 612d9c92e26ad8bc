"""The paper's analyses in `digit-eval` against hand-computed values: part-segmentation mIoU
from one confusion matrix (through `collect`, batch by batch), left/right bone-length asymmetry,
root-relative 3D PCK and its AUC, the per-image MPJPE mean per interaction bin, and whether
the two predicted hands of an interacting image sit on the true hands exchanged."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from core.joints import BONES
from digit.data.batch import Batch
from digit.eval_report import analysis_lines
from digit.evaluate import collect, evaluate_predictions
from digit.metrics import evaluate, interaction_bins, mpjpe_by_bin
from digit.model import DigitOutput
from digit.pose_analysis import (
    PCK_THRESHOLDS_MM,
    bone_asymmetry_per_image,
    bone_pair_valid,
    hands_exchanged_per_image,
    pck_auc,
    pck_by_hand,
)
from digit.segm_metrics import NO_SEGM_OUTPUT, NO_VALID_MASK, class_iou, side_accuracy

# ---- segmentation: hand-made 4 x 4 label maps ---------------------------------------------------

# Image 0 (valid): one right-index1 pixel (class 2) predicted as background, one left-palm pixel
# (class 17) predicted as right-index3 (class 4). Classes 0, 2, 3, 4, 17 occur; the rest never.
GT0 = [[0, 0, 2, 2], [0, 0, 2, 2], [17, 17, 3, 3], [17, 17, 3, 3]]
PRED0 = [[0, 0, 2, 2], [0, 0, 2, 0], [17, 17, 3, 3], [17, 4, 3, 3]]
# Image 1 (valid): all background, predicted right.
GT1 = [[0] * 4] * 4
PRED1 = [[0] * 4] * 4
# Image 2: its mask is not valid; its (wrong) prediction must not count.
GT2 = [[5] * 4] * 4
PRED2 = [[9] * 4] * 4
# By hand over images 0 and 1 (16 + 16 pixels):
# class 0: TP 4 + 16, in GT 20, predicted 21 -> 20/21
# class 2: TP 3, GT 4, pred 3 -> 3/4; class 3: 4/4 = 1; class 4: TP 0, GT 0, pred 1 -> 0
# class 17: TP 3, GT 4, pred 3 -> 3/4; classes 1, 5..16, 18..32: absent from both -> excluded
# mIoU (parts) = (3/4 + 1 + 0 + 3/4) / 4 = 0.625; right (2, 3, 4) = 7/12; left (17) = 3/4
EXPECTED_IOU = {0: 20 / 21, 2: 0.75, 3: 1.0, 4: 0.0, 17: 0.75}


def _one_hot_logits(labels, classes: int = 33) -> torch.Tensor:
    """(H, W) class ids -> (classes, H, W) logits whose argmax is `labels`."""
    lab = torch.as_tensor(labels, dtype=torch.int64)
    return torch.nn.functional.one_hot(lab, classes).permute(2, 0, 1).float() * 5.0


class LabelNet(nn.Module):
    """Looks up fixed segmentation logits by the row index carried in pixel (0, 0, 0); the pose
    outputs are zeros. segm None: a variant without a segmentation head."""

    def __init__(self, segm: torch.Tensor | None) -> None:
        super().__init__()
        self.segm = segm

    def forward(self, images: torch.Tensor) -> DigitOutput:
        rows = images[:, 0, 0, 0].round().long()
        b = len(rows)
        return DigitOutput(
            joints_uvd=torch.zeros(b, 42, 3),
            rel_root_depth_mm=torch.zeros(b),
            handedness_logits=torch.zeros(b, 2),
            segm_logits=None if self.segm is None else self.segm[rows],
            heatmaps=None,
            joints_hm=None,
            rel_root_depth_bins=None,
            root_depth_logits=None,
        )


def _batch(rows, gt_maps, valid, with_masks: bool = True, hand_type: int = 2) -> Batch:
    """A batch of images `rows` whose only content is their row index; no valid joint; every
    image of hand type `hand_type` (0 right, 1 left, 2 interacting)."""
    r = torch.as_tensor(rows, dtype=torch.int64)
    b = len(rows)
    image = torch.zeros(b, 3, 8, 8)
    image[:, 0, 0, 0] = r.float()
    affine = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64).repeat(b, 1, 1)
    return Batch(
        image=image,
        targets=None,
        segm_target=torch.as_tensor(gt_maps, dtype=torch.int64) if with_masks else None,
        segm_valid=torch.as_tensor(valid, dtype=torch.bool) if with_masks else None,
        index=r,
        image_id=r + 100,
        crop_affine=affine,
        joints_cam=torch.full((b, 42, 3), float("nan"), dtype=torch.float64),
        joint_valid=torch.zeros(b, 42, dtype=torch.bool),
        abs_depth=torch.full((b, 2), 1000.0, dtype=torch.float64),
        focal=torch.full((b, 2), 500.0, dtype=torch.float64),
        princpt=torch.zeros(b, 2, dtype=torch.float64),
        hand_type_code=torch.full((b,), hand_type, dtype=torch.int64),
        hand_type_valid=torch.ones(b, dtype=torch.bool),
        lr_iou=torch.full((b,), float("nan")),
    )


def _loader(with_masks: bool = True, image0_type: int = 2) -> list[Batch]:
    # two batches, out of order: counts are added across batches
    return [
        _batch([2, 1], [GT2, GT1], [False, True], with_masks),
        _batch([0], [GT0], [True], with_masks, image0_type),
    ]


def _scored(segm, with_masks: bool = True, image0_type: int = 2):
    preds, gt = collect(LabelNet(segm), _loader(with_masks, image0_type), "cpu")
    return preds, evaluate_predictions(preds, gt, gt.abs_depth)


def test_miou_from_hand_made_label_maps():
    logits = torch.stack([_one_hot_logits(p) for p in (PRED0, PRED1, PRED2)])
    preds, res = _scored(logits)
    m = preds.segm.matrix
    assert m.shape == (33, 33) and m.dtype == np.int64
    assert m.sum() == 32 and preds.segm.images == 2  # image 2's mask is not valid
    assert m[2, 0] == 1 and m[17, 4] == 1 and m[0, 0] == 20 and m[5].sum() == 0
    s = res.segm
    assert s.missing is None and s.images == 2
    for c in range(33):
        if c in EXPECTED_IOU:
            assert s.per_class[c] == pytest.approx(EXPECTED_IOU[c])
        else:
            assert np.isnan(s.per_class[c]), f"class {c} is absent from both: no IoU"
    assert s.miou == pytest.approx(0.625)
    assert s.miou_right == pytest.approx(7 / 12)
    assert s.miou_left == pytest.approx(0.75)
    assert s.background_iou == pytest.approx(20 / 21)
    # hand pixels predicted as a hand: class 2 -> 2 (3 px; its 4th went to background), 3 -> 3
    # (4), 17 -> 17 (3) on the right side, 17 -> 4 (1) on the wrong one: 10 of 11
    assert s.side_accuracy == pytest.approx(10 / 11)
    summary = json.loads(json.dumps(res.summary(), allow_nan=False))
    assert summary["segmentation"]["side_accuracy"] == pytest.approx(10 / 11)
    assert summary["segm_miou"] == pytest.approx(0.625)
    seg = summary["segmentation"]
    assert seg["per_class_iou"]["right_index3"] == 0.0  # class 4: predicted once, never true
    assert seg["per_class_iou"]["right_palm"] is None  # class 1: absent from both
    assert seg["per_class_iou"]["left_palm"] == pytest.approx(0.75)
    assert seg["missing"] is None and seg["images"] == 2


def test_side_accuracy_on_single_and_interacting_images_apart():
    logits = torch.stack([_one_hot_logits(p) for p in (PRED0, PRED1, PRED2)])
    # Image 0 holds every hand pixel (10 of 11 on the true side); image 1 is background only.
    _, res = _scored(logits, image0_type=2)
    assert res.segm.side_accuracy_interacting == pytest.approx(10 / 11)
    assert np.isnan(res.segm.side_accuracy_single)  # no hand pixel on a single-hand image
    _, res = _scored(logits, image0_type=1)
    assert res.segm.side_accuracy_single == pytest.approx(10 / 11)
    assert np.isnan(res.segm.side_accuracy_interacting)
    assert res.segm.side_accuracy == pytest.approx(10 / 11)
    seg = json.loads(json.dumps(res.summary(), allow_nan=False))["segmentation"]
    assert seg["side_accuracy_single"] == pytest.approx(10 / 11)
    assert seg["side_accuracy_interacting"] is None


def test_class_iou_of_a_hand_made_matrix():
    m = np.array([[5, 1, 0], [2, 3, 0], [0, 0, 0]])
    # class 0: 5 / (6 + 7 - 5); class 1: 3 / (5 + 4 - 3); class 2 absent
    np.testing.assert_allclose(class_iou(m), [5 / 8, 3 / 6, np.nan])


def test_no_segmentation_output_gives_nan_with_the_reason():
    _, res = _scored(None)
    assert np.isnan(res.segm.miou) and res.segm.missing == NO_SEGM_OUTPUT
    summary = res.summary()
    assert summary["segm_miou"] is None and summary["segmentation"]["missing"] == NO_SEGM_OUTPUT


def test_left_right_only_segmentation_gives_nan_with_the_reason():
    logits = torch.zeros(3, 3, 4, 4)
    _, res = _scored(logits)
    assert np.isnan(res.segm.miou) and "3 segmentation classes" in res.segm.missing


def test_no_masks_gives_nan_with_the_reason():
    logits = torch.stack([_one_hot_logits(p) for p in (PRED0, PRED1, PRED2)])
    preds, res = _scored(logits, with_masks=False)
    assert preds.segm.images == 0 and preds.segm.matrix.sum() == 0
    assert np.isnan(res.segm.miou) and res.segm.missing == NO_VALID_MASK


# ---- bone-length asymmetry: a hand-made skeleton ------------------------------------------------


def _skeleton_pair(stretch: float) -> np.ndarray:
    """(1, 42, 3) mm: a right hand, and the left = right moved by (120, 0, 30) with the thumb's
    base bone (joint 3 -> wrist 20, left 24 -> 41) stretched by `stretch` mm along itself (the
    whole thumb moves with its base, so no other bone changes)."""
    rng = np.random.default_rng(3)
    right = rng.normal(0, 40, (21, 3)) + np.array([0.0, 0.0, 600.0])
    left = right + np.array([120.0, 0.0, 30.0])
    direction = (left[3] - left[20]) / np.linalg.norm(left[3] - left[20])
    left[0:4] += stretch * direction  # thumb tip .. thumb base
    return np.concatenate([right, left])[None]


def test_bone_asymmetry_of_one_stretched_bone():
    joints = _skeleton_pair(6.0)
    valid = np.ones((1, 42), bool)
    pairs = bone_pair_valid(valid, np.array([True]))
    assert pairs.sum() == 20
    assert bone_asymmetry_per_image(joints, pairs)[0] == pytest.approx(6.0 / 20)
    # left thumb3 (joint 22) invalid: the bones 21-22 and 22-23 no longer count on either hand
    valid[0, 22] = False
    pairs = bone_pair_valid(valid, np.array([True]))
    assert pairs.sum() == 18
    assert bone_asymmetry_per_image(joints, pairs)[0] == pytest.approx(6.0 / 18)
    # a single-hand image, or an invalid root, gives no value
    assert np.isnan(bone_asymmetry_per_image(joints, bone_pair_valid(valid, [False]))[0])
    valid[0, 41] = False
    assert np.isnan(bone_asymmetry_per_image(joints, bone_pair_valid(valid, [True]))[0])
    assert len([b for b in BONES if b[0] < 21]) == 20


def _uvd(P, focal, princpt):
    """Camera joints (N, 42, 3) -> the network's form (uvd, abs_depth), written out plainly."""
    uvd = np.zeros_like(P)
    abs_depth = np.stack([P[:, 20, 2], P[:, 41, 2]], axis=1)
    for i in range(P.shape[0]):
        for j in range(42):
            X, Y, Z = P[i, j]
            root_z = abs_depth[i, 0] if j < 21 else abs_depth[i, 1]
            u = focal[i, 0] * X / Z + princpt[i, 0]
            v = focal[i, 1] * Y / Z + princpt[i, 1]
            uvd[i, j] = u, v, Z - root_z
    return uvd, abs_depth


def _two_interacting_and_one_single(pred, gt, focal, princpt, lr_iou=None):
    """`evaluate` of three images (interacting, interacting, single-hand) whose predictions are
    the camera joints `pred` (3, 42, 3); relative root depth 0, handedness 0.9, all joints
    valid; lr_iou (3,) the hand masks' IoU, or None."""
    uvd, abs_depth = _uvd(pred, focal, princpt)
    valid, types = np.ones((3, 42), bool), np.array([2, 2, 0])
    zeros, probs = np.zeros(3), np.full((3, 2), 0.9)
    return evaluate(
        uvd, zeros, probs, abs_depth, focal, princpt, gt, valid, types, np.ones(3, bool), lr_iou
    )


def test_bone_asymmetry_in_evaluate_pred_and_ground_truth():
    gt = np.concatenate([_skeleton_pair(0.0), _skeleton_pair(0.0), _skeleton_pair(0.0)])
    pred = np.concatenate([_skeleton_pair(6.0), _skeleton_pair(2.0), _skeleton_pair(50.0)])
    focal = np.full((3, 2), 800.0)
    princpt = np.full((3, 2), 300.0)
    r = _two_interacting_and_one_single(pred, gt, focal, princpt)
    np.testing.assert_allclose(r.bone_asym_image, [0.3, 0.1, np.nan], atol=1e-9)
    assert r.bone_asymmetry == pytest.approx(0.2) and r.n_bone_asymmetry == 2
    assert r.bone_asymmetry_gt == pytest.approx(0.0, abs=1e-9)
    s = r.summary()
    assert s["bone_asymmetry_mm"] == pytest.approx(0.2)
    assert s["bone_asymmetry"]["images"] == 2


# ---- hands exchanged: hand-placed 2D hands -----------------------------------------------------


def _flat_pair(shift_left_px: float) -> np.ndarray:
    """(1, 42, 3) camera mm at Z = 1000 with focal 1000 and principal point 0, so u = X and
    v = Y in pixels: joint j of the right hand at (3 j, 0), of the left at (3 j + shift, 0)."""
    gt = np.zeros((1, 42, 3))
    gt[..., 2] = 1000.0
    gt[0, :21, 0] = 3.0 * np.arange(21)
    gt[0, 21:, 0] = 3.0 * np.arange(21) + shift_left_px
    return gt


def test_hands_exchanged_on_hand_placed_hands():
    gt = _flat_pair(50.0)
    focal, princpt = np.full((1, 2), 1000.0), np.zeros((1, 2))
    truth_uv = gt[..., :2].copy()

    def exchanged(pred_uv, valid=None, interacting=(True,)):
        v = np.ones((1, 42), bool) if valid is None else valid
        return hands_exchanged_per_image(pred_uv, gt, focal, princpt, v, interacting)[0]

    assert exchanged(truth_uv) == 0.0
    assert exchanged(np.concatenate([truth_uv[:, 21:], truth_uv[:, :21]], axis=1)) == 1.0
    # Right hand 30 px off, left in place: as placed 30 + 0 = 30, exchanged 20 + 50 = 70.
    pred = truth_uv.copy()
    pred[0, :21, 0] += 30.0
    assert exchanged(pred) == 0.0
    # Both hands between the true ones, the right one nearer the true left: as placed 40 + 40 =
    # 80, exchanged |40 - 50| + |10 - 0| = 20.
    pred = truth_uv.copy()
    pred[0, :21, 0] = truth_uv[0, :21, 0] + 40.0
    pred[0, 21:, 0] = truth_uv[0, :21, 0] + 10.0
    assert exchanged(pred) == 1.0
    # Only valid joints count. The left hand predicted half-way (25 px from each true hand);
    # the right hand's joints 10-20 24 px right of the true right hand, its joints 0-9 on the
    # true left hand. Joints 0-9 of both hands invalid: as placed 24 + 25 = 49, exchanged
    # 26 + 25 = 51. All valid: as placed (10 x 50 + 11 x 24) / 21 + 25 = 61.4, exchanged
    # (11 x 26) / 21 + 25 = 38.6.
    pred = truth_uv.copy()
    pred[0, 21:, 0] = truth_uv[0, :21, 0] + 25.0
    pred[0, 10:21, 0] = truth_uv[0, 10:21, 0] + 24.0
    pred[0, :10] = truth_uv[0, 21:31]
    valid = np.ones((1, 42), bool)
    valid[0, :10] = valid[0, 21:31] = False
    assert exchanged(pred, valid) == 0.0
    assert exchanged(pred) == 1.0
    # Not scored: a single-hand image; a hand without a valid joint.
    assert np.isnan(exchanged(truth_uv, interacting=(False,)))
    valid = np.ones((1, 42), bool)
    valid[0, 21:] = False
    assert np.isnan(exchanged(truth_uv, valid))


def test_hands_exchanged_in_evaluate_and_its_pools():
    gt = np.concatenate([_flat_pair(50.0), _flat_pair(50.0), _flat_pair(50.0)])
    gt[..., 1] = 7.0  # off the principal point's row, so v matters too
    pred = gt.copy()
    pred[1] = np.concatenate([gt[1, 21:], gt[1, :21]])  # image 1: the hands exchanged
    focal, princpt = np.full((3, 2), 1000.0), np.zeros((3, 2))
    # relative root depth 0: right for all three (both roots at Z = 1000)
    r = _two_interacting_and_one_single(pred, gt, focal, princpt)
    np.testing.assert_array_equal(r.exchanged_image, [0.0, 1.0, np.nan])
    assert r.hands_exchanged == 0.5 and r.n_exchanged == 2
    ex = r.summary()["hands_exchanged"]
    # Exchanged roots: the relative root vector is reversed, 50 px = 50 mm at Z = 1000 each way.
    assert ex["mrrpe"]["placed"] == pytest.approx(0.0, abs=1e-9)
    assert ex["mrrpe"]["exchanged"] == pytest.approx(100.0)
    assert ex["share"] == 0.5 and ex["images"] == 2
    # without the masks' IoU both interacting images are "unbinned"
    assert ex["by_interaction"] == {"unbinned": {"share": 0.5, "images": 2}}
    # with it, each lands in its bin: IoU 0.2 placed right, 0.5 exchanged; the single-hand
    # image (IoU 0.9 given, ignored) is in no bin of this entry
    binned = _two_interacting_and_one_single(pred, gt, focal, princpt, np.array([0.2, 0.5, 0.9]))
    assert binned.summary()["hands_exchanged"]["by_interaction"] == {
        "(0,0.33]": {"share": 0.0, "images": 1},
        "(0.33,0.67]": {"share": 1.0, "images": 1},
    }
    line = analysis_lines(binned)[-1]
    assert line == (
        "  hands exchanged by interaction (IoU of the hand masks): (0,0.33]: 0.000 of 1, "
        "(0.33,0.67]: 1.000 of 1"
    )
    assert "by interaction" not in analysis_lines(r)[-1]


# ---- 3D PCK and AUC: hand-set errors ------------------------------------------------------------


def test_pck_and_auc_of_hand_set_errors():
    e = np.full((2, 42), np.nan)
    e[:, 20] = e[:, 41] = 0.0  # valid roots: 0 by construction, left out of PCK
    e[0, [0, 1, 2]] = [0.0, 10.0, 20.0]
    e[1, 5] = 60.0
    e[1, 30] = 5.5
    p = pck_by_hand(e)
    np.testing.assert_array_equal(p.thresholds, np.arange(51))
    assert p.joints_right == 4 and p.joints_left == 1
    # right errors 0, 10, 20, 60: PCK(t) counts errors <= t
    assert p.right[0] == 0.25 and p.right[9] == 0.25 and p.right[10] == 0.5
    assert p.right[19] == 0.5 and p.right[20] == 0.75 and p.right[50] == 0.75
    assert p.left[5] == 0.0 and p.left[6] == 1.0
    # Trapezoid area of one error e's step on integer thresholds 0..50: 50 for e = 0,
    # 50 - e + 0.5 for integer e in 1..50, 0 above 50; 50 - 6 + 0.5 for e = 5.5 (step at 6).
    assert p.auc_right == pytest.approx((50 + 40.5 + 30.5 + 0) / 4 / 50)
    assert p.auc_left == pytest.approx(44.5 / 50)
    assert p.auc_both == pytest.approx((50 + 40.5 + 30.5 + 0 + 44.5) / 5 / 50)
    assert pck_auc(np.ones(51), PCK_THRESHOLDS_MM) == 1.0
    empty = pck_by_hand(np.full((1, 42), np.nan))
    assert np.isnan(empty.auc_both) and empty.joints_right == 0


# ---- per-bin mean of per-image MPJPE: hand-set IoUs and errors ----------------------------------


def test_per_image_mean_by_bin():
    # images: single, single, interacting IoU 0.2, interacting IoU 0.3 (no valid joint)
    bins = interaction_bins(np.array([np.nan, np.nan, 0.2, 0.3]))
    e = np.full((4, 42), np.nan)
    e[0, :4] = [2.0, 4.0, 6.0, 8.0]  # per-image MPJPE 5
    e[1, 0] = 11.0  # 11
    e[2, 5] = 7.0  # 7
    by = {b.label: b for b in mpjpe_by_bin(e, bins)}
    assert by["single"].image_mean == pytest.approx(8.0) and by["single"].images_scored == 2
    low = by["(0,0.33]"]
    assert low.images == 2 and low.images_scored == 1 and low.image_mean == pytest.approx(7.0)
    assert np.isnan(low.value)  # the official pooled formula: joints without a sample
    assert np.isnan(by["0"].image_mean) and by["0"].images_scored == 0


def test_side_accuracy_counts_only_hand_pixels_called_a_hand():
    m = np.zeros((33, 33), dtype=np.int64)
    m[0, 0] = 100  # background: not counted
    m[5, 0] = 50  # a right-hand pixel called background: not counted
    assert np.isnan(side_accuracy(m))
    m[5, 9] = 6  # right called right (another part): right side
    m[20, 30] = 2  # left called left
    m[20, 1] = 4  # left called right: the wrong hand
    m[0, 18] = 7  # background called left: not counted
    assert side_accuracy(m) == pytest.approx(8 / 12)
