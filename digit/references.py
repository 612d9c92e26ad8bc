"""Simple references a trained model is judged against, scored by the same official code.

The constant mean-pose predictor gives every image the same answer, learned from the training
split: per joint, the mean root-relative position in the camera frame over its valid samples
(each hand relative to its own root); the mean left-root-minus-right-root offset (interacting
images with both roots valid) for MRRPE; the majority hand type for handedness. It is turned
into what a network outputs (u, v in image pixels, root-relative depth, relative root depth,
handedness probabilities) and goes through `digit.evaluate.evaluate_predictions` like any
network: the right hand is anchored at the ground-truth right root (the left one's where only
the left hand is known), the left hand at that anchor plus the mean offset. MPJPE is
root-relative, so the anchor only fixes where the constant pose is seen from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.camera import intrinsics, project
from core.errors import DigitError
from core.interhand.reader import InterHandSplit
from core.joints import (
    HAND_JOINTS,
    LEFT,
    LEFT_ROOT,
    NUM_JOINTS,
    RIGHT,
    RIGHT_ROOT,
    ROOT_OF_JOINT,
    hand_type_pair,
    with_root_validity,
)
from digit.evaluate import GroundTruth, Predictions
from digit.metrics import root_relative

REFERENCES: tuple[str, ...] = ("mean-pose", "untrained")


@dataclass(frozen=True)
class MeanPose:
    """The constant predictor's answer. rel_joints (42, 3) mm root-relative camera-frame mean
    (NaN for a joint never valid); root_offset (3,) mm mean left root minus right root;
    hand_type (int) majority code (0 right, 1 left, 2 interacting); counts of what it saw."""

    rel_joints: np.ndarray
    root_offset: np.ndarray
    hand_type: int
    images: int
    offset_images: int


def fit_mean_pose(
    joints_cam: np.ndarray,
    joint_valid: np.ndarray,
    hand_type_code: np.ndarray,
    hand_type_valid: np.ndarray,
) -> MeanPose:
    """The constant predictor from N training images: joints_cam (N, 42, 3) mm camera frame;
    joint_valid (N, 42) bool (the official validity; a joint also needs its own root);
    hand_type_code (N,) 0/1/2; hand_type_valid (N,) bool."""
    joints = np.asarray(joints_cam, dtype=np.float64)
    valid = with_root_validity(np.asarray(joint_valid, dtype=bool))
    rel = root_relative(joints)
    count = valid.sum(axis=0)
    total = np.where(valid[..., None], rel, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_rel = np.where(count[:, None] > 0, total / count[:, None], np.nan)
    codes = np.asarray(hand_type_code).astype(np.int64)
    both = (codes == 2) & valid[:, RIGHT_ROOT] & valid[:, LEFT_ROOT]
    offsets = joints[both, LEFT_ROOT] - joints[both, RIGHT_ROOT]
    offset = offsets.mean(axis=0) if len(offsets) else np.zeros(3)
    labelled = codes[np.asarray(hand_type_valid, dtype=bool)]
    if labelled.size == 0:
        raise DigitError("mean-pose reference: the training split has no valid hand type")
    majority = int(np.bincount(labelled, minlength=3).argmax())  # ties: the lower code
    return MeanPose(mean_rel, offset, majority, len(joints), int(both.sum()))


def fit_mean_pose_on_split(data_root: str | Path, split: str = "train") -> MeanPose:
    """`fit_mean_pose` over every image of `split` of `data_root`."""
    data = InterHandSplit.from_root(Path(data_root), split)
    b = data.gather(slice(None))
    return fit_mean_pose(b.joints_cam, b.joint_valid, b.hand_type_code, b.hand_type_valid)


def mean_pose_predictions(ref: MeanPose, gt: GroundTruth) -> Predictions:
    """What the constant predictor outputs for the images of `gt` (see the module doc)."""
    n = len(gt.image_id)
    right_root = gt.joints_cam[:, RIGHT_ROOT]
    left_root = gt.joints_cam[:, LEFT_ROOT]
    anchor = np.where(np.isfinite(right_root), right_root, left_root - ref.root_offset)
    rel = np.where(np.isfinite(ref.rel_joints), ref.rel_joints, 0.0)  # never-valid joints
    cam = np.empty((n, NUM_JOINTS, 3))
    cam[:, RIGHT] = anchor[:, None] + rel[None, RIGHT]
    cam[:, LEFT] = (anchor + ref.root_offset)[:, None] + rel[None, LEFT]
    K = intrinsics(gt.focal, gt.princpt)[:, None]
    uv = project(cam, K)
    depth = cam[..., 2] - cam[:, list(ROOT_OF_JOINT), 2]
    uvd = np.concatenate([uv, depth[..., None]], axis=-1)
    probs = np.broadcast_to(hand_type_pair(ref.hand_type).astype(np.float64), (n, 2)).copy()
    rel_root = np.full(n, ref.root_offset[2])
    assert uvd.shape == (n, 2 * HAND_JOINTS, 3)
    return Predictions(gt.image_id.copy(), uvd, rel_root, probs)
