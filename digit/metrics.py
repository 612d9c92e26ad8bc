"""The official InterHand2.6M evaluation (``evaluate()`` of the dataset code) as pure functions.

Everything is float64 numpy, millimetres and pixels. Metrics are computed per image (NaN where an
entry does not count) and reduced once, so the same per-image arrays give every pooled number.
No function modifies its inputs: the official code aligns the ground truth to its roots in place,
which makes a second call compute MRRPE from already-aligned (zero) roots.

`evaluate` also gathers the paper's analyses, each labelled as not official: 3D PCK / AUC and
bone-length asymmetry (`digit.pose_analysis`), part-segmentation mIoU (`digit.segm_metrics`) and
the per-image MPJPE mean per interaction bin.

Joint layout: right hand 0..20, left hand 21..41; roots (wrists) 20 and 41.
Hand types: "right", "left", "interacting", or their codes 0, 1, 2.
"""

from dataclasses import dataclass, field

import numpy as np

from core.camera import backproject, intrinsics, project
from core.joints import (
    HAND_JOINTS,
    HAND_TYPES,
    LEFT_ROOT,
    NUM_JOINTS,
    RIGHT_ROOT,
    ROOT_OF_JOINT,
    with_root_validity,
)
from core.parts import class_table
from digit.pose_analysis import (
    PCKCurves,
    bone_asymmetry_per_image,
    bone_pair_valid,
    hands_exchanged_per_image,
    pck_by_hand,
)
from digit.segm_metrics import NO_SEGM_OUTPUT, SegmConfusion, SegmScores, segm_scores

# Interaction degree bins (IoU of the ground-truth left and right full-hand masks, paper Fig. 8).
BIN_SINGLE = "single"
BIN_UNBINNED = "unbinned"  # interacting images without an IoU (none given, or NaN: no mask)
INTERACTION_BINS = (BIN_SINGLE, "0", "(0,0.33]", "(0.33,0.67]", "(0.67,1]")
_BIN_EDGES = (0.33, 0.67)  # upper edges of the first two non-zero bins, as the reference states


def _f64(x, tail: tuple, name: str) -> np.ndarray:
    """x as float64 (no copy if it already is; never written to), checked to be (N, *tail)."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1 + len(tail) or a.shape[1:] != tail:
        raise ValueError(f"{name}: shape {a.shape}, expected (N, {', '.join(map(str, tail))})")
    return a


def _bool(x, tail: tuple, name: str) -> np.ndarray:
    a = np.asarray(x).astype(bool)
    if a.ndim != 1 + len(tail) or a.shape[1:] != tail:
        raise ValueError(f"{name}: shape {a.shape}, expected (N, {', '.join(map(str, tail))})")
    return a


def hand_type_codes(hand_type) -> np.ndarray:
    """hand_type (N,) strings ("right", "left", "interacting") or codes (0, 1, 2) -> (N,) int8.

    Raises ValueError on anything else.
    """
    a = np.asarray(hand_type)
    if a.ndim != 1:
        raise ValueError(f"hand_type: shape {a.shape}, expected (N,)")
    if a.dtype.kind in "US":
        names = a.astype(str)
        codes = np.full(names.shape, -1, dtype=np.int8)
        for code, name in enumerate(HAND_TYPES):
            codes[names == name] = code
    elif a.dtype.kind in "iu":
        codes = a.astype(np.int64)
    elif a.dtype.kind == "O" and all(isinstance(v, str) for v in a):
        return hand_type_codes(a.astype(str))
    else:
        raise ValueError(f"hand_type: dtype {a.dtype}, expected strings or integer codes")
    bad = (codes < 0) | (codes > 2)
    if bad.any():
        raise ValueError(
            f"hand_type: {a[bad][0]!r} is not one of {list(HAND_TYPES)} or codes 0, 1, 2"
        )
    return codes.astype(np.int8)


def _pinhole_inverse(u, v, z, focal: np.ndarray, princpt: np.ndarray) -> np.ndarray:
    """(..., 3) camera mm from pixels u, v and camera depth z (mm), through `core.camera`."""
    return backproject(np.stack([u, v], axis=-1), z, intrinsics(focal, princpt))


def backproject_joints(joints_uvd_img, abs_depth, focal, princpt) -> np.ndarray:
    """Step 1: 2.5D predictions to camera-frame joints.

    joints_uvd_img (N, 42, 3): u, v in original image pixels and depth relative to the own hand's
    root in mm; abs_depth (N, 2) mm absolute root depths (right, left); focal (N, 2) (fx, fy) and
    princpt (N, 2) (cx, cy) in pixels. Right joints get Z = z_rel + abs_depth_right, left joints
    Z = z_rel + abs_depth_left; then X = (u - cx) / fx * Z, Y = (v - cy) / fy * Z.
    Returns (N, 42, 3) camera mm, a new array.
    """
    uvd = _f64(joints_uvd_img, (NUM_JOINTS, 3), "joints_uvd_img")
    abs_depth = _f64(abs_depth, (2,), "abs_depth")
    focal = _f64(focal, (2,), "focal")
    princpt = _f64(princpt, (2,), "princpt")
    side_depth = np.repeat(abs_depth, HAND_JOINTS, axis=1)  # (N, 42): right x21, then left x21
    z = uvd[..., 2] + side_depth
    return _pinhole_inverse(uvd[..., 0], uvd[..., 1], z, focal[:, None], princpt[:, None])


def root_relative(joints) -> np.ndarray:
    """joints (N, 42, 3) mm -> (N, 42, 3) mm: each hand minus its own root (right 20, left 41)."""
    j = _f64(joints, (NUM_JOINTS, 3), "joints")
    return j - j[:, list(ROOT_OF_JOINT)]


def effective_joint_valid(joint_valid) -> np.ndarray:
    """joint_valid (N, 42) -> (N, 42) bool, each joint also requiring its own hand's root.

    The dataset layer already folds root validity in (then this changes nothing); applying it
    again keeps root-relative errors from using an unreliable root.
    """
    return with_root_validity(_bool(joint_valid, (NUM_JOINTS,), "joint_valid"))


def per_joint_errors(pred_cam, gt_cam, joint_valid) -> np.ndarray:
    """Step 2, per joint: root-relative Euclidean errors.

    pred_cam, gt_cam (N, 42, 3) camera mm; joint_valid (N, 42) bool. Both are aligned to their
    own roots per hand (prediction to the predicted root, ground truth to the true root).
    Returns (N, 42) mm, NaN where the joint or its hand's root is invalid; valid roots give 0.
    """
    pred = root_relative(pred_cam)
    gt = root_relative(gt_cam)
    if pred.shape != gt.shape:
        raise ValueError(f"pred_cam {pred.shape} and gt_cam {gt.shape} differ")
    valid = effective_joint_valid(joint_valid)
    if valid.shape[0] != pred.shape[0]:
        raise ValueError(f"joint_valid has {valid.shape[0]} rows, joints have {pred.shape[0]}")
    err = np.sqrt(np.sum((pred - gt) ** 2, axis=-1))
    return np.where(valid, err, np.nan)


def truth_uvd(gt_cam, focal, princpt) -> np.ndarray:
    """Ground truth in the predictions' 2.5D form (the inverse of `backproject_joints` given the
    true root depths): gt_cam (N, 42, 3) camera mm, focal / princpt (N, 2) px -> (N, 42, 3) with
    u, v the projection in image pixels and d the depth relative to the own hand's root, mm."""
    cam = _f64(gt_cam, (NUM_JOINTS, 3), "gt_cam")
    k = intrinsics(_f64(focal, (2,), "focal"), _f64(princpt, (2,), "princpt"))[:, None]
    uv = project(cam, k)
    d = cam[..., 2] - cam[:, list(ROOT_OF_JOINT), 2]
    return np.concatenate([uv, d[..., None]], axis=-1)


def error_components(
    joints_uvd_img, abs_depth, focal, princpt, gt_cam, joint_valid
) -> tuple[np.ndarray, np.ndarray]:
    """Where the error comes from (an analysis, not official): the per-joint errors (N, 42) mm of
    the prediction with its depth replaced by the truth's ("2D": only u, v predicted) and with
    its u, v replaced by the truth's ("depth": only the root-relative depth predicted), both
    back-projected with the root depths `abs_depth` (N, 2) and scored like `per_joint_errors`."""
    pred = _f64(joints_uvd_img, (NUM_JOINTS, 3), "joints_uvd_img")
    truth = truth_uvd(gt_cam, focal, princpt)
    only_2d = np.concatenate([pred[..., :2], truth[..., 2:]], axis=-1)
    only_depth = np.concatenate([truth[..., :2], pred[..., 2:]], axis=-1)

    def errors(uvd: np.ndarray) -> np.ndarray:
        cam = backproject_joints(uvd, abs_depth, focal, princpt)
        return per_joint_errors(cam, gt_cam, joint_valid)

    return errors(only_2d), errors(only_depth)


def mpjpe_pooled(errors, mask) -> tuple[float, np.ndarray]:
    """The official MPJPE of one pool: the mean over 42 joints of per-joint mean errors.

    errors (N, 42) mm with NaN for invalid entries (`per_joint_errors`); mask (N,) bool selects the
    images of the pool. per_joint[j] = mean of the finite errors of joint j over the pool (mm); the
    wrists enter with their errors of 0. A joint with no valid sample in the pool has
    per_joint[j] = NaN (the official code crashes there). The value follows the official formula
    (1/42) * sum_j per_joint[j] literally, so it is NaN whenever some joint is empty: list them
    with `empty_joints(per_joint)`; no partial average is passed off as the official number.
    Returns (value mm, per_joint (42,) mm).
    """
    e = _f64(errors, (NUM_JOINTS,), "errors")
    m = np.asarray(mask, dtype=bool)
    if m.shape != (e.shape[0],):
        raise ValueError(f"mask: shape {m.shape}, expected ({e.shape[0]},)")
    sel = e[m]
    ok = np.isfinite(sel)
    count = ok.sum(axis=0)
    total = np.where(ok, sel, 0.0).sum(axis=0)
    per_joint = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return float(per_joint.sum() / NUM_JOINTS), per_joint


def empty_joints(per_joint) -> tuple[int, ...]:
    """Indices of joints whose per-joint mean is NaN (no valid sample in the pool)."""
    return tuple(int(j) for j in np.flatnonzero(np.isnan(np.asarray(per_joint, np.float64))))


def mpjpe_per_image(errors) -> np.ndarray:
    """errors (N, 42) mm -> (N,) mm: mean over each image's valid joints, NaN if it has none.

    Valid roots count as joints with error 0, as in the pooled official number.
    """
    e = _f64(errors, (NUM_JOINTS,), "errors")
    ok = np.isfinite(e)
    count = ok.sum(axis=1)
    total = np.where(ok, e, 0.0).sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def mrrpe_per_image(
    joints_uvd_img, rel_root_depth, abs_depth, focal, princpt, gt_cam, joint_valid, hand_type
) -> np.ndarray:
    """Step 3: mean relative-root position error, per image.

    joints_uvd_img (N, 42, 3) pixels and root-relative mm; rel_root_depth (N,) mm predicted left
    root minus right root depth; abs_depth (N, 2) mm (right, left), of which only the right one is
    used; focal, princpt (N, 2) px; gt_cam (N, 42, 3) camera mm (not root-aligned); joint_valid
    (N, 42) bool; hand_type (N,) names or codes.
    Predicted left root = back-project (u41, v41, z_rel41 + abs_depth_right + d); predicted right
    root = back-project (u20, v20, z_rel20 + abs_depth_right).
    Returns (N,) mm: || (L_pred - R_pred) - (G41 - G20) ||, NaN unless the image is "interacting"
    with both roots valid.
    """
    uvd = _f64(joints_uvd_img, (NUM_JOINTS, 3), "joints_uvd_img")
    n = uvd.shape[0]
    d = np.asarray(rel_root_depth, dtype=np.float64).reshape(-1)
    if d.shape != (n,):
        raise ValueError(f"rel_root_depth: shape {d.shape}, expected ({n},)")
    z_right = _f64(abs_depth, (2,), "abs_depth")[:, 0]
    focal = _f64(focal, (2,), "focal")
    princpt = _f64(princpt, (2,), "princpt")
    gt = _f64(gt_cam, (NUM_JOINTS, 3), "gt_cam")
    valid = _bool(joint_valid, (NUM_JOINTS,), "joint_valid")
    codes = hand_type_codes(hand_type)
    rl, rr = uvd[:, LEFT_ROOT], uvd[:, RIGHT_ROOT]
    left = _pinhole_inverse(rl[:, 0], rl[:, 1], rl[:, 2] + z_right + d, focal, princpt)
    right = _pinhole_inverse(rr[:, 0], rr[:, 1], rr[:, 2] + z_right, focal, princpt)
    gt_rel = gt[:, LEFT_ROOT] - gt[:, RIGHT_ROOT]
    err = np.sqrt(np.sum(((left - right) - gt_rel) ** 2, axis=-1))
    applies = (codes == 2) & valid[:, RIGHT_ROOT] & valid[:, LEFT_ROOT]
    return np.where(applies, err, np.nan)


def handedness_correct(prob, hand_type, hand_type_valid) -> np.ndarray:
    """Step 4 per image: 1.0 if the 0.5-threshold handedness is right, 0.0 if not, NaN if no label.

    prob (N, 2) = (p_right, p_left) probabilities (sigmoid of the logits); hand_type (N,) names or
    codes; hand_type_valid (N,) bool. Correct iff right: p_r > 0.5 and p_l < 0.5; left:
    p_r < 0.5 and p_l > 0.5; interacting: both > 0.5 (strict: exactly 0.5 is never correct).
    """
    p = _f64(prob, (2,), "prob")
    codes = hand_type_codes(hand_type)
    tv = np.asarray(hand_type_valid).astype(bool)
    if codes.shape != (p.shape[0],) or tv.shape != (p.shape[0],):
        raise ValueError(f"hand_type / hand_type_valid: expected ({p.shape[0]},)")
    r_hi, r_lo = p[:, 0] > 0.5, p[:, 0] < 0.5
    l_hi, l_lo = p[:, 1] > 0.5, p[:, 1] < 0.5
    correct = np.select(
        [codes == 0, codes == 1, codes == 2], [r_hi & l_lo, r_lo & l_hi, r_hi & l_hi], False
    )
    return np.where(tv, correct.astype(np.float64), np.nan)


def interaction_bins(lr_iou) -> np.ndarray:
    """lr_iou (N,) IoU in [0, 1] of the ground-truth left and right full-hand masks -> (N,) labels.

    Labels (`INTERACTION_BINS`): NaN -> "single" (single-hand image), 0 -> "0",
    (0, 0.33] -> "(0,0.33]", (0.33, 0.67] -> "(0.33,0.67]", (0.67, 1] -> "(0.67,1]".
    """
    iou = np.asarray(lr_iou, dtype=np.float64)
    if iou.ndim != 1:
        raise ValueError(f"lr_iou: shape {iou.shape}, expected (N,)")
    finite = iou[~np.isnan(iou)]
    if ((finite < 0) | (finite > 1)).any():
        raise ValueError("lr_iou: values must lie in [0, 1] (or NaN for single-hand images)")
    lo, hi = _BIN_EDGES
    conds = [np.isnan(iou), iou == 0, iou <= lo, iou <= hi]
    return np.select(conds, list(INTERACTION_BINS[:4]), INTERACTION_BINS[4]).astype(object)


@dataclass(frozen=True)
class BinMPJPE:
    """MPJPE of one interaction-degree bin.

    value mm: the official pooled formula over the bin's images (NaN if a joint is empty or the
    bin has no image); images: how many; empty_joints. image_mean mm: the mean of the per-image
    MPJPE (`mpjpe_per_image`) over the bin's images that have one (a different metric, defined
    for small bins too), NaN if none; images_scored: how many images it averages.
    """

    label: str
    value: float
    images: int
    empty_joints: tuple[int, ...]
    image_mean: float = float("nan")
    images_scored: int = 0


def mean_by_bin(per_image, bins, label: str) -> tuple[float, int]:
    """per_image (N,) values with NaN where undefined; bins (N,) labels -> (mean of the finite
    values of the images labelled `label`, NaN if none; how many there are)."""
    v = np.asarray(per_image, dtype=np.float64)
    labels = np.asarray(bins, dtype=object)
    if labels.shape != v.shape:
        raise ValueError(f"bins: shape {labels.shape}, expected {v.shape}")
    sel = v[(labels == label) & np.isfinite(v)]
    return (float(sel.mean()) if sel.size else float("nan")), int(sel.size)


def mpjpe_by_bin(errors, bins) -> tuple[BinMPJPE, ...]:
    """errors (N, 42) mm with NaN; bins (N,) labels of `interaction_bins` -> one entry per bin.

    Each bin uses `mpjpe_pooled` (mean of per-joint means, wrists at 0) over its own images, and
    the mean of their per-image MPJPE, in `INTERACTION_BINS` order, then `BIN_UNBINNED` if any
    image carries that label.
    """
    labels = np.asarray(bins, dtype=object)
    per_image = mpjpe_per_image(errors)
    out = []
    extra = (BIN_UNBINNED,) if (labels == BIN_UNBINNED).any() else ()
    for label in (*INTERACTION_BINS, *extra):
        mask = labels == label
        value, per_joint = mpjpe_pooled(errors, mask)
        image_mean, scored = mean_by_bin(per_image, labels, label)
        out.append(
            BinMPJPE(label, value, int(mask.sum()), empty_joints(per_joint), image_mean, scored)
        )
    return tuple(out)


def _nanmean(x: np.ndarray) -> float:
    ok = np.isfinite(x)
    return float(x[ok].mean()) if ok.any() else float("nan")


def _frozen(a: np.ndarray) -> np.ndarray:
    a = np.array(a)
    a.setflags(write=False)
    return a


@dataclass(frozen=True, eq=False)
class EvalResult:
    """The official InterHand2.6M metrics plus per-image arrays (all mm unless noted).

    Pooled (official): mpjpe_sh (single-hand images), mpjpe_ih (interacting), mpjpe_all (both),
    each the mean over 42 joints of per-joint means (NaN if a joint is empty: see empty_joints_*);
    per_joint_sh / _ih / _all (42,); mrrpe (plain mean over applicable images); handedness_acc
    (fraction in [0, 1] over hand_type_valid images). Counts: n_images, n_single, n_interacting,
    n_mrrpe, n_handedness. Per image (N = n_images, read-only): joints_cam (N, 42, 3) predicted
    camera joints, joint_errors (N, 42) NaN invalid, mpjpe_image (N,), mrrpe_image (N,) NaN where
    not applicable, handedness_image (N,) 1/0/NaN, interaction_bin (N,) labels ("unbinned" for
    interacting images when no IoU was given); by_bin MPJPE per interaction-degree bin (empty if
    no IoU was given).
    The paper's analyses (not part of the official protocol): pck (`PCKCurves`, root-relative
    3D PCK per hand over 0-50 mm and its AUC); bone_asym_image / bone_asym_gt_image (N,) mm
    left/right bone-length asymmetry of the predicted / true camera-frame joints (NaN where not
    interacting or no bone is valid on both hands), their means bone_asymmetry /
    bone_asymmetry_gt over n_bone_asymmetry images; exchanged_image (N,) 1/0/NaN whether the
    predicted hands of an interacting image sit on the true hands exchanged (2D,
    `hands_exchanged_per_image`), hands_exchanged its mean over n_exchanged images; segm
    (`SegmScores`, part mIoU from one dataset-level confusion matrix, NaN with the reason where
    there is none).
    """

    mpjpe_sh: float
    mpjpe_ih: float
    mpjpe_all: float
    mrrpe: float
    handedness_acc: float
    n_images: int
    n_single: int
    n_interacting: int
    n_mrrpe: int
    n_handedness: int
    per_joint_sh: np.ndarray
    per_joint_ih: np.ndarray
    per_joint_all: np.ndarray
    empty_joints_sh: tuple[int, ...]
    empty_joints_ih: tuple[int, ...]
    empty_joints_all: tuple[int, ...]
    joints_cam: np.ndarray
    joint_errors: np.ndarray
    mpjpe_image: np.ndarray
    mrrpe_image: np.ndarray
    handedness_image: np.ndarray
    interaction_bin: np.ndarray
    by_bin: tuple[BinMPJPE, ...] = field(default=())
    pck: PCKCurves | None = None
    bone_asym_image: np.ndarray | None = None
    bone_asym_gt_image: np.ndarray | None = None
    bone_asymmetry: float = float("nan")
    bone_asymmetry_gt: float = float("nan")
    n_bone_asymmetry: int = 0
    exchanged_image: np.ndarray | None = None
    hands_exchanged: float = float("nan")
    n_exchanged: int = 0
    segm: SegmScores | None = None

    def summary(self) -> dict:
        """The scalar metrics and counts as a JSON-ready dict (NaN -> None)."""

        def num(x: float) -> float | None:
            return None if np.isnan(x) else float(x)

        return {
            "mpjpe_sh": num(self.mpjpe_sh),
            "mpjpe_ih": num(self.mpjpe_ih),
            "mpjpe_all": num(self.mpjpe_all),
            "mrrpe": num(self.mrrpe),
            "handedness_acc": num(self.handedness_acc),
            "counts": {
                "images": self.n_images,
                "single": self.n_single,
                "interacting": self.n_interacting,
                "mrrpe": self.n_mrrpe,
                "handedness": self.n_handedness,
            },
            "empty_joints": {
                "sh": list(self.empty_joints_sh),
                "ih": list(self.empty_joints_ih),
                "all": list(self.empty_joints_all),
            },
            "mpjpe_by_bin": {
                b.label: {"mpjpe": num(b.value), "images": b.images} for b in self.by_bin
            },
            "mpjpe_image_mean_by_bin": {
                b.label: {"mpjpe": num(b.image_mean), "images": b.images_scored}
                for b in self.by_bin
            },
            **analysis_summary(self),
        }


def _num(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


def pck_summary(pck: PCKCurves | None) -> dict:
    """The "pck_auc" and "pck_3d" entries of `EvalResult.summary` (None where undefined)."""
    if pck is None:
        return {"pck_auc": None, "pck_3d": None}
    return {
        "pck_auc": _num(pck.auc_both),
        "pck_3d": {
            "thresholds_mm": [float(t) for t in pck.thresholds],
            "right": [_num(v) for v in pck.right],
            "left": [_num(v) for v in pck.left],
            "both": [_num(v) for v in pck.both],
            "auc": {
                "right": _num(pck.auc_right),
                "left": _num(pck.auc_left),
                "both": _num(pck.auc_both),
            },
            "joints": {"right": pck.joints_right, "left": pck.joints_left},
            "rule": "root-relative error <= threshold over valid non-root joints; "
            "AUC = trapezoid area over 0-50 mm / 50 mm",
        },
    }


def segm_summary(segm: SegmScores | None) -> dict:
    """The "segm_miou" and "segmentation" entries of `EvalResult.summary` (None where undefined,
    with the reason under "missing")."""
    if segm is None:
        segm = segm_scores(SegmConfusion(None, 0, NO_SEGM_OUTPUT))
    names = [c.name for c in class_table()]
    return {
        "segm_miou": _num(segm.miou),
        "segmentation": {
            "miou": _num(segm.miou),
            "miou_right": _num(segm.miou_right),
            "miou_left": _num(segm.miou_left),
            "background_iou": _num(segm.background_iou),
            "side_accuracy": _num(segm.side_accuracy),
            "side_accuracy_single": _num(segm.side_accuracy_single),
            "side_accuracy_interacting": _num(segm.side_accuracy_interacting),
            "per_class_iou": {n: _num(v) for n, v in zip(names, segm.per_class, strict=True)},
            "images": segm.images,
            "missing": segm.missing,
            "rule": "one confusion matrix over the valid-mask images; mIoU = mean IoU over the "
            "part classes 1..32 present in ground truth or prediction (absent from both: "
            "excluded); background reported alone; side_accuracy: of the hand pixels predicted "
            "as a hand part, the share given the true hand (right vs left); _single and "
            "_interacting: the same on single-hand and on interacting images alone",
        },
    }


def exchanged_summary(r: EvalResult) -> dict:
    """The "hands_exchanged" entry of `EvalResult.summary`: the share of interacting images whose
    predicted hands sit on the true hands exchanged, and MRRPE and the per-image MPJPE on the
    images placed right and on those exchanged (None where undefined)."""
    x = r.exchanged_image
    if x is None:
        x = np.full(r.n_images, np.nan)
    pools = {"placed": x == 0.0, "exchanged": x == 1.0}
    # how it depends on how much the hands overlap (the interaction bins of the MPJPE), where
    # the evaluation was given the masks' IoU
    by_bin = {}
    for label in (*INTERACTION_BINS[1:], BIN_UNBINNED):
        share, images = mean_by_bin(x, r.interaction_bin, label)
        if images:
            by_bin[label] = {"share": _num(share), "images": images}
    return {
        "hands_exchanged": {
            "share": _num(r.hands_exchanged),
            "images": r.n_exchanged,
            "mrrpe": {k: _num(_nanmean(r.mrrpe_image[m])) for k, m in pools.items()},
            "mpjpe_image_mean": {k: _num(_nanmean(r.mpjpe_image[m])) for k, m in pools.items()},
            "by_interaction": by_bin,
            "rule": "interacting images with a valid joint on each hand; exchanged where the "
            "predicted right and left hands are closer in 2D (mean joint distance in image "
            "pixels, summed over the hands) to the true left and right hands than as placed; "
            "by_interaction: the same per interaction bin (IoU of the true hand masks)",
        }
    }


def analysis_summary(r: EvalResult) -> dict:
    """The paper-analysis entries of `EvalResult.summary`: segmentation, PCK, bone asymmetry,
    and which hand is which on interacting images."""
    return {
        **exchanged_summary(r),
        **segm_summary(r.segm),
        **pck_summary(r.pck),
        "bone_asymmetry_mm": _num(r.bone_asymmetry),
        "bone_asymmetry": {
            "pred_mm": _num(r.bone_asymmetry),
            "gt_mm": _num(r.bone_asymmetry_gt),
            "images": r.n_bone_asymmetry,
            "rule": "interacting images; mean over the bones valid on both hands of "
            "|right length - left length| of the camera-frame joints",
        },
    }


def evaluate(
    joints_uvd_img,
    rel_root_depth,
    handedness_prob,
    abs_depth,
    focal,
    princpt,
    gt_cam,
    joint_valid,
    hand_type,
    hand_type_valid,
    lr_iou=None,
    segm: SegmConfusion | None = None,
) -> EvalResult:
    """The official InterHand2.6M evaluation of N images (steps 1-4 of the reference).

    joints_uvd_img (N, 42, 3) predicted u, v in original image pixels and root-relative depth mm;
    rel_root_depth (N,) mm predicted left minus right root depth; handedness_prob (N, 2)
    (p_right, p_left); abs_depth (N, 2) mm root depths (right, left) from ground truth or
    RootNet; focal, princpt (N, 2) px; gt_cam (N, 42, 3) ground-truth camera mm; joint_valid
    (N, 42) bool; hand_type (N,) names or codes; hand_type_valid (N,) bool; lr_iou (N,) optional
    IoU of the ground-truth hand masks for the interaction-degree bins (single-hand images are
    always binned "single", whatever their IoU); segm the part-segmentation confusion matrix
    the evaluator accumulated (None: no segmentation was predicted). Inputs are never modified.
    """
    codes = hand_type_codes(hand_type)
    joints_cam = backproject_joints(joints_uvd_img, abs_depth, focal, princpt)
    errors = per_joint_errors(joints_cam, gt_cam, joint_valid)
    n = errors.shape[0]
    if codes.shape != (n,):
        raise ValueError(f"hand_type: shape {codes.shape}, expected ({n},)")
    single, inter = codes != 2, codes == 2
    sh, pj_sh = mpjpe_pooled(errors, single)
    ih, pj_ih = mpjpe_pooled(errors, inter)
    al, pj_al = mpjpe_pooled(errors, np.ones(n, dtype=bool))
    mrrpe_img = mrrpe_per_image(
        joints_uvd_img, rel_root_depth, abs_depth, focal, princpt, gt_cam, joint_valid, codes
    )
    hand_img = handedness_correct(handedness_prob, codes, hand_type_valid)
    # Single-hand images by their hand type; interacting ones by IoU where it is known (an
    # interacting image with a hand lacking a MANO fit has NaN IoU: "unbinned", not "single").
    bins = np.where(single, BIN_SINGLE, BIN_UNBINNED).astype(object)
    by_bin: tuple[BinMPJPE, ...] = ()
    if lr_iou is not None:
        iou = np.asarray(lr_iou, dtype=np.float64)
        known = ~single & np.isfinite(iou)
        bins[known] = interaction_bins(iou[known])
        by_bin = mpjpe_by_bin(errors, bins)
    pairs = bone_pair_valid(joint_valid, inter)
    asym = bone_asymmetry_per_image(joints_cam, pairs)
    asym_gt = bone_asymmetry_per_image(gt_cam, pairs)
    uvd = np.asarray(joints_uvd_img, dtype=np.float64)
    exchanged = hands_exchanged_per_image(uvd[..., :2], gt_cam, focal, princpt, joint_valid, inter)
    return EvalResult(
        mpjpe_sh=sh,
        mpjpe_ih=ih,
        mpjpe_all=al,
        mrrpe=_nanmean(mrrpe_img),
        handedness_acc=_nanmean(hand_img),
        n_images=n,
        n_single=int(single.sum()),
        n_interacting=int(inter.sum()),
        n_mrrpe=int(np.isfinite(mrrpe_img).sum()),
        n_handedness=int(np.isfinite(hand_img).sum()),
        per_joint_sh=_frozen(pj_sh),
        per_joint_ih=_frozen(pj_ih),
        per_joint_all=_frozen(pj_al),
        empty_joints_sh=empty_joints(pj_sh),
        empty_joints_ih=empty_joints(pj_ih),
        empty_joints_all=empty_joints(pj_al),
        joints_cam=_frozen(joints_cam),
        joint_errors=_frozen(errors),
        mpjpe_image=_frozen(mpjpe_per_image(errors)),
        mrrpe_image=_frozen(mrrpe_img),
        handedness_image=_frozen(hand_img),
        interaction_bin=_frozen(bins),
        by_bin=by_bin,
        pck=pck_by_hand(errors),
        bone_asym_image=_frozen(asym),
        bone_asym_gt_image=_frozen(asym_gt),
        bone_asymmetry=_nanmean(asym),
        bone_asymmetry_gt=_nanmean(asym_gt),
        n_bone_asymmetry=int(np.isfinite(asym).sum()),
        exchanged_image=_frozen(exchanged),
        hands_exchanged=_nanmean(exchanged),
        n_exchanged=int(np.isfinite(exchanged).sum()),
        segm=segm_scores(segm if segm is not None else SegmConfusion(None, 0, NO_SEGM_OUTPUT)),
    )
