"""MPVPE of fitted meshes against InterHand2.6M's ground-truth MANO fits (`digit-eval --meshes`).

Per hand: the mean over the model's V vertices of the distance between the fitted and the true
mesh, each taken relative to its own root (the wrist, InterHand2.6M joint 20, regressed from
that mesh), in mm. Validity, as the official evaluation of MANO-based methods: a hand counts
where the image has a ground-truth MANO fit for it (not where the prediction shows it). Values
are per image and hand, NaN where the hand does not count, and are reduced once: the pooled
mpvpe_sh / mpvpe_ih / mpvpe_all are the means over the counted hands of the single-hand,
interacting and all images (every hand has the same number of vertices, so this is also the
mean over all their vertices).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.camera import world_to_camera
from core.interhand.reader import ImageBatch, InterHandSplit
from core.joints import HAND_JOINTS, RIGHT_ROOT
from core.progress import progress
from digit.meshes.fit import FitResult, FitSettings, fit_mano
from render.hand_model import SIDES, HandModel

INTERACTING = 2  # hand-type code (core.joints.HAND_TYPES)
FIT_CHUNK = 64  # images per batched fit: bounded memory, a progress bar that moves


def mpvpe(
    pred_vertices: np.ndarray,
    pred_joints: np.ndarray,
    gt_vertices: np.ndarray,
    gt_joints: np.ndarray,
) -> np.ndarray:
    """Root-aligned mean per-vertex position error.

    pred_vertices, gt_vertices (..., V, 3) mm; pred_joints, gt_joints (..., 21, 3) mm, each
    mesh's own InterHand2.6M joints (joint 20, the wrist, is the root). Returns (...,) mm.
    """
    pred = np.asarray(pred_vertices) - np.asarray(pred_joints)[..., RIGHT_ROOT, None, :]
    gt = np.asarray(gt_vertices) - np.asarray(gt_joints)[..., RIGHT_ROOT, None, :]
    return np.linalg.norm(pred - gt, axis=-1).mean(-1)


def pooled_mpvpe(per_hand: np.ndarray, hand_type_code: np.ndarray) -> dict[str, float]:
    """per_hand (N, 2) mm, NaN where a hand does not count; hand_type_code (N,) 0 right,
    1 left, 2 interacting -> {"mpvpe_sh", "mpvpe_ih", "mpvpe_all"} (NaN where no hand counts)
    and {"hands_sh", "hands_ih", "hands_all"} counts."""
    values = np.asarray(per_hand, dtype=np.float64)
    inter = np.asarray(hand_type_code) == INTERACTING
    out: dict[str, float] = {}
    for name, images in (("sh", ~inter), ("ih", inter), ("all", np.ones_like(inter))):
        chosen = values[images]
        ok = np.isfinite(chosen)
        out[f"mpvpe_{name}"] = float(chosen[ok].mean()) if ok.any() else float("nan")
        out[f"hands_{name}"] = int(ok.sum())
    return out


def true_meshes(model: HandModel, batch: ImageBatch) -> tuple[np.ndarray, np.ndarray]:
    """Camera-frame meshes of the ground-truth MANO fits of B images: vertices (B, 2, V, 3)
    and joints (B, 2, 21, 3) mm, (right, left), NaN where the image has no fit for the hand.
    World mm from `HandModel` (NeuralAnnot parameters), then each image's camera."""
    b, v = len(batch), model.num_vertices("right")
    verts = np.full((b, 2, v, 3), np.nan)
    joints = np.full((b, 2, HAND_JOINTS, 3), np.nan)
    for h, side in enumerate(SIDES):
        rows = np.flatnonzero(batch.has_mano[:, h])
        if not len(rows):
            continue
        params = (batch.mano_pose, batch.mano_shape, batch.mano_trans)
        with torch.no_grad():
            out = model(side, *(torch.as_tensor(p[rows, h]) for p in params))
        R, t = batch.R[rows, None], batch.t[rows, None]
        verts[rows, h] = world_to_camera(out.vertices.cpu().numpy(), R, t)
        joints[rows, h] = world_to_camera(out.joints.cpu().numpy(), R, t)
    return verts, joints


@dataclass(frozen=True, eq=False)
class MeshEval:
    """Fitted meshes against the ground truth for N images.

    mpvpe_image (N, 2) mm per (right, left) hand, NaN where it does not count; summary: the
    pooled `pooled_mpvpe` numbers plus the fits' mean joint error (mm, to the predicted
    joints) and reprojection error (px, to the predicted image joints) over the fitted hands,
    JSON-ready (None where undefined).
    """

    mpvpe_image: np.ndarray
    summary: dict


def fit_hands(
    model: HandModel,
    joints_cam: np.ndarray,
    joints_uv: np.ndarray,
    K: np.ndarray,
    hands: np.ndarray,
    settings: FitSettings | None = None,
) -> tuple[FitResult, np.ndarray, np.ndarray]:
    """Fit the hands (B, 2) bool (right, left) of B images from their predicted camera joints
    (B, 42, 3) mm, image joints (B, 42, 2) px and intrinsics K (B, 3, 3). Returns the fit of the
    H chosen hands (image-major, right before left) and their (image (H,), hand (H,)) indices."""
    image, hand = np.nonzero(np.asarray(hands, dtype=bool))
    per_hand = np.asarray(joints_cam, dtype=np.float64).reshape(-1, 2, HAND_JOINTS, 3)
    per_hand_uv = np.asarray(joints_uv, dtype=np.float64).reshape(-1, 2, HAND_JOINTS, 2)
    joints, uv = per_hand[image, hand], per_hand_uv[image, hand]
    valid = np.isfinite(joints).all(-1)
    result = fit_mano(
        model, joints, valid, hand == 0, joints_2d=uv, valid_2d=np.isfinite(uv).all(-1) & valid,
        K=np.asarray(K, dtype=np.float64)[image], image=image, settings=settings,
    )  # fmt: skip
    return result, image, hand


def evaluate_meshes(
    model: HandModel,
    split: InterHandSplit,
    index: np.ndarray,
    joints_cam: np.ndarray,
    joints_uv: np.ndarray,
    K: np.ndarray,
    settings: FitSettings | None = None,
    show_progress: bool = False,
) -> MeshEval:
    """Fit a mesh to every hand of N images that has a ground-truth MANO fit and score it.

    split, index (N,): the images (rows of `split`); joints_cam (N, 42, 3) predicted camera mm
    (the evaluation's back-projected joints); joints_uv (N, 42, 2) predicted image px; K
    (N, 3, 3) each image's intrinsics.
    """
    index = np.asarray(index, dtype=np.int64)
    n = len(index)
    codes = np.zeros(n, dtype=np.int64)
    per_hand = np.full((n, 2), np.nan)
    joint_err, reproj = [], []
    with progress(n, "fitting meshes", enabled=show_progress) as bar:
        for start in range(0, n, FIT_CHUNK):
            rows = np.arange(start, min(start + FIT_CHUNK, n))
            chunk = split.gather(index[rows])
            codes[rows] = chunk.hand_type_code
            fit, image, hand = fit_hands(
                model, joints_cam[rows], joints_uv[rows], K[rows], chunk.has_mano, settings
            )
            gt_v, gt_j = true_meshes(model, chunk)
            errors = mpvpe(fit.vertices, fit.joints, gt_v[image, hand], gt_j[image, hand])
            per_hand[rows[image], hand] = errors
            joint_err.append(fit.joint_error_mm)
            reproj.append(fit.reprojection_px)
            bar.advance(len(rows))
    summary: dict = pooled_mpvpe(per_hand, codes)
    summary["fit_joint_error_mm"] = _finite_mean(np.concatenate(joint_err))
    summary["fit_reprojection_px"] = _finite_mean(np.concatenate(reproj))
    summary = {k: None if isinstance(v, float) and np.isnan(v) else v for k, v in summary.items()}
    return MeshEval(mpvpe_image=per_hand, summary=summary)


def _finite_mean(values: np.ndarray) -> float:
    ok = np.isfinite(values)
    return float(values[ok].mean()) if ok.any() else float("nan")


def format_mpvpe(metrics: dict) -> str:
    """Plain-text lines of metrics.json's MPVPE entries (mm) with their hand counts."""
    rows = []
    counts = metrics.get("meshes", {})
    for name, label in (("sh", "single hand"), ("ih", "interacting"), ("all", "all")):
        value = metrics.get(f"mpvpe_{name}")
        text = "    n/a" if value is None else f"{value:7.2f}"
        rows.append(f"MPVPE {label:<12} {text}  ({counts.get(f'hands_{name}', 0)} hands)")
    return "\n".join(rows)
