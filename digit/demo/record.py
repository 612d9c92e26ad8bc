"""`predictions.json`: one record per image and the conventions they follow."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.joints import ROOT_JOINTS
from digit.demo.intrinsics import FOCAL_PER_LONG_SIDE, Intrinsics
from digit.demo.lift import HAND_BONE_SUM_MM, ROOT_DEPTH_RULE, Hands3D
from digit.demo.predict import HAND_THRESHOLD, ImagePrediction, hands_shown
from digit.demo.truth import GT_ROOT_DEPTH, ImageTruth, image_mpjpe

CONVENTIONS = {
    "joints": "42 joints in InterHand2.6M order: right hand 0..20, left 21..41; roots 20, 41",
    "pixels": "u right, v down, pixel centres at integers",
    "camera_frame": "OpenCV pinhole: x right, y down, z forward; millimetres",
    "joints_uvd_img": "u, v image pixels; d = depth relative to the joint's own root, mm",
    "joints_rel_cam_mm": "camera-frame joints minus their own hand's root (20 or 41), mm",
    "rel_root_depth_mm": "the network's left root depth minus right root depth, mm",
    "hands_shown": f"handedness probability above {HAND_THRESHOLD}",
    "focal_default": f"{FOCAL_PER_LONG_SIDE} x the image's long side (InterHand2.6M's cameras)",
    "princpt_default": "the image centre ((W - 1) / 2, (H - 1) / 2)",
    "root_depth_rule": ROOT_DEPTH_RULE,
    "root_depth_with_split": "the annotated root depth where the root is valid (the other "
    "root: plus or minus the relative root depth), as digit-eval --root-depth gt",
    "hand_bone_sum_mm": HAND_BONE_SUM_MM,
}


def finite_or_none(a) -> list | float | None:
    """An array as nested lists with None for NaN / inf (JSON has neither)."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 0:
        return float(a) if np.isfinite(a) else None
    return [finite_or_none(x) for x in a]


def image_record(
    image: Path,
    panel: str | None,
    pred: ImagePrediction,
    camera: Intrinsics,
    hands: Hands3D,
    truth: ImageTruth | None = None,
    error: tuple[float, np.ndarray] | None = None,
) -> dict:
    """The JSON entry of one image; with ground truth, also its `image_mpjpe` error."""
    record = {
        "image": str(image),
        "panel": panel,
        "bbox": pred.bbox.tolist(),
        "crop_box": pred.crop_box.tolist(),
        "joints_uvd_img": pred.joints_uvd_img.tolist(),
        "joints_uv_px": pred.joints_uvd_img[:, :2].tolist(),
        "handedness_prob": pred.handedness_prob.tolist(),
        "hands_shown": hands_shown(pred.handedness_prob).tolist(),
        "rel_root_depth_mm": pred.rel_root_depth_mm,
        "camera": camera.record(),
        "root_depth_mm": finite_or_none(hands.root_depth),
        "root_depth_source": list(hands.root_depth_source),
        "root_cam_mm": finite_or_none(hands.joints_cam[list(ROOT_JOINTS)]),
        "joints_rel_cam_mm": finite_or_none(hands.joints_rel),
    }
    if truth is not None:
        mpjpe, per_hand = error if error is not None else image_mpjpe(hands.joints_cam, truth)
        rel = np.where(truth.joint_valid[:, None], truth.joints_rel(), np.nan)
        record["ground_truth"] = {
            "mpjpe_mm": finite_or_none(mpjpe),
            "mpjpe_mm_per_hand": finite_or_none(per_hand),
            "joint_valid": truth.joint_valid.tolist(),
            "joints_rel_cam_mm": finite_or_none(rel),
            "root_depth_source": GT_ROOT_DEPTH,
        }
    return record


def run_document(info: dict, records: list[dict], speed: dict) -> dict:
    """The whole `predictions.json`: the checkpoint, conventions, speed and the records."""
    return {
        "checkpoint": info.get("path"),
        "checkpoint_format": info.get("format"),
        "network_config": info.get("network_config"),
        "conventions": CONVENTIONS,
        "speed": speed,
        "images": records,
    }
