"""The paper's pose analyses beyond the official numbers: left/right bone-length asymmetry, the
root-relative 3D PCK curve with its area (AUC) over 0-50 mm, and whether the two predicted hands
of an interacting image sit on the right hands or exchanged.

Pure float64 numpy in millimetres. Each quantity is first computed per image or per joint (NaN
where it does not apply) and reduced once. Joint layout and bones: `core.joints`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.joints import BONES, HAND_JOINTS, NUM_JOINTS, RIGHT_ROOT, with_root_validity

# PCK thresholds: 0, 1, ..., 50 mm (51 points); the AUC is normalised over [0, 50].
PCK_MAX_MM = 50.0
PCK_THRESHOLDS_MM = np.arange(0.0, PCK_MAX_MM + 1.0, 1.0)
PCK_THRESHOLDS_MM.setflags(write=False)

# The 20 bones of one hand as (child, parent) in right-hand indices; left = right + 21.
_HAND_BONES = np.array([b for b in BONES if b[0] < HAND_JOINTS], dtype=np.int64)
# Non-root joints of each hand (the roots' root-relative error is 0 by construction).
RIGHT_NONROOT = np.array([j for j in range(HAND_JOINTS) if j != RIGHT_ROOT])
LEFT_NONROOT = RIGHT_NONROOT + HAND_JOINTS


def hand_bone_lengths(joints) -> np.ndarray:
    """joints (N, 42, 3) mm -> (N, 2, 20) mm bone lengths, [:, 0] right hand, [:, 1] left hand,
    bones in `core.joints.BONES` order."""
    j = np.asarray(joints, dtype=np.float64)
    if j.ndim != 3 or j.shape[1:] != (NUM_JOINTS, 3):
        raise ValueError(f"joints: shape {j.shape}, expected (N, {NUM_JOINTS}, 3)")
    child, parent = _HAND_BONES[:, 0], _HAND_BONES[:, 1]
    right = np.linalg.norm(j[:, child] - j[:, parent], axis=-1)
    left = np.linalg.norm(j[:, child + HAND_JOINTS] - j[:, parent + HAND_JOINTS], axis=-1)
    return np.stack([right, left], axis=1)


def bone_pair_valid(joint_valid, interacting) -> np.ndarray:
    """Which bones can be compared across hands: joint_valid (N, 42) bool, interacting (N,) bool
    -> (N, 20) bool, true where the image is interacting and the bone's two joints are valid
    (each with its own hand's root, as in the official rule) on both hands."""
    v = with_root_validity(np.asarray(joint_valid, dtype=bool))
    child, parent = _HAND_BONES[:, 0], _HAND_BONES[:, 1]
    right = v[:, child] & v[:, parent]
    left = v[:, child + HAND_JOINTS] & v[:, parent + HAND_JOINTS]
    return right & left & np.asarray(interacting, dtype=bool)[:, None]


def bone_asymmetry_per_image(joints, pair_valid) -> np.ndarray:
    """Left/right bone-length asymmetry per image.

    joints (N, 42, 3) camera-frame mm; pair_valid (N, 20) bool (`bone_pair_valid`).
    Returns (N,) mm: the mean over the comparable bones of |right length - left length|, NaN for
    an image with no comparable bone.
    """
    lengths = hand_bone_lengths(joints)
    diff = np.abs(lengths[:, 0] - lengths[:, 1])
    ok = np.asarray(pair_valid, dtype=bool)
    if ok.shape != diff.shape:
        raise ValueError(f"pair_valid: shape {ok.shape}, expected {diff.shape}")
    count = ok.sum(axis=1)
    total = np.where(ok, diff, 0.0).sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def hands_exchanged_per_image(pred_uv, gt_cam, focal, princpt, joint_valid, interacting):
    """Whether a prediction put its right hand on the true left hand and its left on the right.

    The official metrics align each hand at its own root and so cannot see it; MRRPE and the
    part sides can. pred_uv (N, 42, 2) predicted joints in original image pixels; gt_cam
    (N, 42, 3) true camera-frame joints, mm; focal, princpt (N, 2) px; joint_valid (N, 42) bool;
    interacting (N,) bool.
    Returns (N,) float64: 1.0 where the mean 2D distance of each predicted hand to the other
    true hand (joint j of one hand to joint j of the other), summed over the two hands, is
    smaller than the same sum as placed; 0.0 where not; NaN unless the image is interacting with
    at least one valid joint on each hand.
    """
    uv = np.asarray(pred_uv, dtype=np.float64)
    g = np.asarray(gt_cam, dtype=np.float64)
    if uv.ndim != 3 or uv.shape[1:] != (NUM_JOINTS, 2):
        raise ValueError(f"pred_uv: shape {uv.shape}, expected (N, {NUM_JOINTS}, 2)")
    f = np.asarray(focal, dtype=np.float64)[:, None, :]
    c = np.asarray(princpt, dtype=np.float64)[:, None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        gt_uv = f * g[..., :2] / g[..., 2:3] + c  # OpenCV pinhole; invalid joints may be NaN
    valid = np.asarray(joint_valid, dtype=bool)
    r, l_ = slice(0, HAND_JOINTS), slice(HAND_JOINTS, NUM_JOINTS)

    def mean_distance(pred: slice, truth: slice) -> np.ndarray:
        d = np.linalg.norm(uv[:, pred] - gt_uv[:, truth], axis=-1)
        ok = valid[:, truth]
        return np.where(ok, d, 0.0).sum(axis=1) / np.maximum(ok.sum(axis=1), 1)

    placed = mean_distance(r, r) + mean_distance(l_, l_)
    exchanged = mean_distance(r, l_) + mean_distance(l_, r)
    scored = np.asarray(interacting, dtype=bool) & valid[:, r].any(1) & valid[:, l_].any(1)
    return np.where(scored, (exchanged < placed).astype(np.float64), np.nan)


def pck_curve(errors, thresholds=PCK_THRESHOLDS_MM) -> tuple[np.ndarray, int]:
    """errors (...) mm with NaN for entries that do not count; thresholds (T,) mm ascending.

    Returns (pck (T,) fraction of the finite errors <= each threshold, NaN if there is none;
    the number of finite errors).
    """
    e = np.asarray(errors, dtype=np.float64).reshape(-1)
    e = np.sort(e[np.isfinite(e)])
    t = np.asarray(thresholds, dtype=np.float64)
    if e.size == 0:
        return np.full(t.shape, np.nan), 0
    return np.searchsorted(e, t, side="right") / e.size, int(e.size)


def pck_auc(pck, thresholds=PCK_THRESHOLDS_MM) -> float:
    """Area under the PCK curve (trapezoid rule) divided by the threshold range: pck (T,),
    thresholds (T,) mm -> a fraction in [0, 1] (NaN if the curve is)."""
    p = np.asarray(pck, dtype=np.float64)
    t = np.asarray(thresholds, dtype=np.float64)
    if p.shape != t.shape or t.size < 2:
        raise ValueError(f"pck {p.shape} and thresholds {t.shape}: need equal lengths >= 2")
    return float(np.trapezoid(p, t) / (t[-1] - t[0]))


@dataclass(frozen=True, eq=False)
class PCKCurves:
    """Root-relative 3D PCK over all evaluated images, non-root valid joints only.

    thresholds (T,) mm; right, left, both (T,) fractions; auc_right / auc_left / auc_both the
    normalised areas over [thresholds[0], thresholds[-1]]; joints_right / joints_left: how many
    joint errors each curve counts.
    """

    thresholds: np.ndarray
    right: np.ndarray
    left: np.ndarray
    both: np.ndarray
    auc_right: float
    auc_left: float
    auc_both: float
    joints_right: int
    joints_left: int


def pck_by_hand(errors, thresholds=PCK_THRESHOLDS_MM) -> PCKCurves:
    """errors (N, 42) root-relative mm, NaN where invalid (`digit.metrics.per_joint_errors`) ->
    `PCKCurves` per hand and for both hands pooled (roots left out: their error is 0 by
    construction)."""
    e = np.asarray(errors, dtype=np.float64)
    if e.ndim != 2 or e.shape[1] != NUM_JOINTS:
        raise ValueError(f"errors: shape {e.shape}, expected (N, {NUM_JOINTS})")
    t = np.asarray(thresholds, dtype=np.float64)
    right, n_right = pck_curve(e[:, RIGHT_NONROOT], t)
    left, n_left = pck_curve(e[:, LEFT_NONROOT], t)
    both, _ = pck_curve(e[:, np.concatenate([RIGHT_NONROOT, LEFT_NONROOT])], t)
    return PCKCurves(
        thresholds=t,
        right=right,
        left=left,
        both=both,
        auc_right=pck_auc(right, t),
        auc_left=pck_auc(left, t),
        auc_both=pck_auc(both, t),
        joints_right=n_right,
        joints_left=n_left,
    )
