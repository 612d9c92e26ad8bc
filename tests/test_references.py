"""The constant mean-pose reference: fitted statistics and its official scores, by hand."""

import numpy as np
import pytest

from core.joints import LEFT_ROOT, RIGHT_ROOT
from digit.evaluate import GroundTruth, evaluate_predictions
from digit.references import fit_mean_pose, mean_pose_predictions


def _joints(root, offsets):
    """(42, 3): each hand's 21 joints = its root + offsets (21, 3); root (2, 3) right, left."""
    out = np.zeros((42, 3))
    out[:21] = root[0] + offsets
    out[21:] = root[1] + offsets
    return out


def test_fit_takes_per_joint_means_over_valid_joints_only():
    a = np.arange(63, dtype=float).reshape(21, 3)
    a[20] = 0.0  # each joint relative to its root: the root's own offset is 0
    roots = np.array([[0.0, 0.0, 500.0], [100.0, 0.0, 520.0]])
    j1 = _joints(roots, a)
    j2 = _joints(roots + 7.0, 3 * a)
    valid = np.ones((2, 42), bool)
    valid[1, 0] = False  # joint 0 of image 2 does not count
    valid[1, LEFT_ROOT] = False  # nor any left joint of image 2 (its root is invalid)
    ref = fit_mean_pose(np.stack([j1, j2]), valid, np.array([2, 0]), np.array([True, True]))
    np.testing.assert_allclose(ref.rel_joints[0], a[0])  # only image 1
    np.testing.assert_allclose(ref.rel_joints[5], 2 * a[5])  # mean of a and 3a
    np.testing.assert_allclose(ref.rel_joints[21 + 5], a[5])  # left: image 1 only
    np.testing.assert_allclose(ref.rel_joints[RIGHT_ROOT], 0.0)
    np.testing.assert_allclose(ref.root_offset, [100.0, 0.0, 20.0])  # interacting image only
    assert ref.hand_type == 0  # tie between codes 0 and 2 goes to the lower code
    assert ref.offset_images == 1


def test_scores_through_the_official_formula_by_hand():
    """A right-hand test image whose pose is the mean pose plus 3 mm along x on every non-root
    joint: MPJPE = 20/21 x 3 mm (the root's error is 0); handedness of the majority."""
    rel = np.random.default_rng(0).normal(0, 30, (21, 3))
    rel[20] = 0.0
    train_root = np.array([[0.0, 0.0, 600.0], [80.0, 10.0, 640.0]])
    train = np.stack([_joints(train_root, rel)] * 3)
    ref = fit_mean_pose(train, np.ones((3, 42), bool), np.array([0, 0, 2]), np.ones(3, bool))
    gt_rel = rel + np.array([3.0, 0.0, 0.0])
    gt_rel[20] = 0.0
    gt_cam = _joints(np.array([[10.0, -20.0, 700.0], [0.0, 0.0, 0.0]]), gt_rel)
    gt_cam[21:] = np.nan
    valid = np.zeros((1, 42), bool)
    valid[0, :21] = True
    gt = GroundTruth(
        index=np.array([0]), image_id=np.array([5]), joints_cam=gt_cam[None],
        joint_valid=valid, abs_depth=np.array([[700.0, np.nan]]),
        focal=np.array([[1000.0, 1000.0]]), princpt=np.array([[256.0, 256.0]]),
        hand_type_code=np.array([0]), hand_type_valid=np.array([True]),
        lr_iou=np.array([np.nan]),
    )  # fmt: skip
    preds = mean_pose_predictions(ref, gt)
    result = evaluate_predictions(preds, gt, gt.abs_depth)
    assert result.mpjpe_image[0] == pytest.approx(20 / 21 * 3.0, abs=1e-9)
    assert result.handedness_acc == 1.0  # majority right, the image is right
    assert preds.rel_root_depth_mm[0] == pytest.approx(40.0)
