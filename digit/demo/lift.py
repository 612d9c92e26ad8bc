"""2.5D predictions (u, v, root-relative depth) to root-relative 3D joints in the camera frame.

Back-projection needs the absolute root depths: joint j lies on its pixel's ray
r_j = backproject(u_j, v_j, 1) at depth Z_root + d_j, so X_j = r_j (Z_root + d_j), and a hand's
metric size in x, y grows with Z_root. As in DIGIT's evaluation, the two roots differ in depth by
the network's relative root depth D (left minus right): Z_left = Z_right + D. That leaves one
unknown, which a photo does not give; the demo takes the depth at which the hands have the size
of typical adult hands (the "hand size" rule): the sum of the 20 bone lengths of each hand shown
(handedness above 0.5; both when neither is) equals `HAND_BONE_SUM_MM` on average.

With every joint written relative to one root depth Z (d_j' = d_j, or d_j + D for the left hand
when Z is the right root's), bone k = (child c, parent p) is A_k Z + B_k with A_k = r_c - r_p
and B_k = r_c d_c' - r_p d_p', and the bone-length sum S(Z) = sum_k ||A_k Z + B_k|| is convex in
Z. Newton's method from a start beyond every solution therefore descends monotonically to the
largest one (the far branch, where the hands grow with depth). Where none lies in front of the
camera, the nearest depth keeping every joint `MIN_DEPTH_MM` in front is used.

With ground truth (`digit-demo --split`), a hand's root depth is the annotated one where its root
is valid, and the other root follows by D, exactly as `digit-eval --root-depth gt` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.camera import backproject
from core.joints import HAND_JOINTS, HAND_PARENTS, SIDES
from core.plausible import ROOT_DEPTH_MM, warn_implausible
from digit.demo.intrinsics import Intrinsics
from digit.metrics import backproject_joints, root_relative

# Mean sum of the 20 bone lengths of one hand over the six fully annotated hands of the four
# real InterHand2.6M samples (749-866 mm; tests/test_demo_lift.py recomputes it where the
# samples are present). The synthetic stand-in's hands are a little larger (about 848 mm).
HAND_BONE_SUM_MM = 800.0
MIN_DEPTH_MM = 1.0
HAND_SIZE = "hand size"
FROM_OTHER_ROOT = "other root + relative root depth"
ROOT_DEPTH_RULE = (
    "hand size: the depth at which the hands shown (both when neither is) have a sum of their "
    f"20 back-projected bone lengths of {HAND_BONE_SUM_MM:g} mm each on average (mean of real "
    "InterHand2.6M hands); the left root is the right root plus the network's relative root "
    "depth, as in DIGIT's evaluation"
)

_CHILD = np.array([k for k, p in enumerate(HAND_PARENTS) if p >= 0])
_PARENT = np.array([p for p in HAND_PARENTS if p >= 0])


def hand_bone_sum(joints: np.ndarray) -> np.ndarray:
    """Sum of the 20 bone lengths of hands (..., 21, 3) mm -> (...,) mm."""
    joints = np.asarray(joints, dtype=np.float64)
    return np.linalg.norm(joints[..., _CHILD, :] - joints[..., _PARENT, :], axis=-1).sum(-1)


def joint_rays(uv: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Camera-frame points at depth 1 on the rays through pixels uv (..., 2): (..., 3)."""
    uv = np.asarray(uv, dtype=np.float64)
    return backproject(uv, np.ones(uv.shape[:-1]), K)


def solve_root_depth(
    rays: np.ndarray, depth_rel: np.ndarray, bone_sum: float = HAND_BONE_SUM_MM
) -> float:
    """The hand-size depth Z (mm) of H hands that share one reference depth.

    rays (H, 21, 3) or (21, 3): `joint_rays` of each hand's joints; depth_rel (H, 21) or (21,):
    each joint's depth minus Z, mm; bone_sum: the target bone-length sum per hand, mm. Returns
    the largest Z at which the H hands' 20 H bones, X_j = rays_j (Z + depth_rel_j), sum to
    H x bone_sum (see the module docstring); the nearest admissible depth if none lies in front
    of the camera; NaN if every joint of every hand sits on one pixel (no size to measure).
    """
    rays = np.asarray(rays, dtype=np.float64).reshape(-1, HAND_JOINTS, 3)
    d = np.asarray(depth_rel, dtype=np.float64).reshape(-1, HAND_JOINTS)
    target = bone_sum * len(rays)
    A = (rays[:, _CHILD] - rays[:, _PARENT]).reshape(-1, 3)  # bone vector per mm of depth
    B = (rays[:, _CHILD] * d[:, _CHILD, None] - rays[:, _PARENT] * d[:, _PARENT, None]).reshape(
        -1, 3
    )
    slope = np.linalg.norm(A, axis=-1).sum()
    if not slope > 0:
        return float("nan")
    z_min = max(0.0, float(np.max(-d))) + MIN_DEPTH_MM
    # S(Z) >= Z * slope - sum ||B||, so no solution lies beyond this start
    z = max((target + np.linalg.norm(B, axis=-1).sum()) / slope, z_min)
    for _ in range(100):
        bones = A * z + B
        lengths = np.linalg.norm(bones, axis=-1)
        excess = lengths.sum() - target
        if excess <= 1e-12 * target:
            break
        grad = float(np.sum(np.sum(A * bones, axis=-1) / np.maximum(lengths, 1e-12)))
        if grad <= 0:  # larger than the target at every depth: keep the start
            break
        z_next = z - excess / grad
        if z_next <= z_min:
            return z_min
        z = z_next
    return float(z)


def hand_size_root_depths(
    joints_uvd_img: np.ndarray,
    K: np.ndarray,
    rel_root_depth: float,
    hands: np.ndarray,
    bone_sum: float = HAND_BONE_SUM_MM,
) -> np.ndarray:
    """(2,) mm (right, left) root depths by the hand-size rule.

    joints_uvd_img (42, 3): u, v image pixels, depth relative to the own root, mm; K (3, 3);
    rel_root_depth: left root depth minus right root depth, mm; hands (2,) bool: the hands
    whose size sets the depth (both when neither is set).
    """
    uvd = np.asarray(joints_uvd_img, dtype=np.float64)
    hands = np.asarray(hands, dtype=bool)
    hands = hands if hands.any() else np.ones(2, bool)
    rays = joint_rays(uvd[:, :2], K).reshape(2, HAND_JOINTS, 3)
    # every joint's depth relative to the right root
    d = uvd[:, 2].reshape(2, HAND_JOINTS) + np.array([[0.0], [rel_root_depth]])
    z_right = solve_root_depth(rays[hands], d[hands], bone_sum)
    return np.array([z_right, z_right + rel_root_depth])


def lift_joints(
    joints_uvd_img: np.ndarray, root_depth: np.ndarray, focal: np.ndarray, princpt: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """joints_uvd_img (42, 3), root_depth (2,) mm (right, left), focal (2,), princpt (2,) ->
    (camera-frame joints (42, 3) mm, root-relative joints (42, 3) mm: right joints minus joint
    20, left joints minus joint 41), by the evaluation's own back-projection."""
    cam = backproject_joints(
        np.asarray(joints_uvd_img)[None], np.asarray(root_depth)[None], focal[None], princpt[None]
    )
    return cam[0], root_relative(cam)[0]


@dataclass(frozen=True)
class Hands3D:
    """Both hands lifted to 3D.

    joints_cam (42, 3) camera-frame mm; joints_rel (42, 3) mm, each hand relative to its own
    root (right 20, left 41); root_depth (2,) mm (right, left), NaN where it cannot be had;
    root_depth_source (2,): where each came from (HAND_SIZE, FROM_OTHER_ROOT or the caller's
    label for known depths).
    """

    joints_cam: np.ndarray
    joints_rel: np.ndarray
    root_depth: np.ndarray
    root_depth_source: tuple[str, str]


def lift_prediction(
    joints_uvd_img: np.ndarray,
    rel_root_depth: float,
    camera: Intrinsics,
    hands: np.ndarray,
    known_root_depth: np.ndarray | None = None,
    known_source: str = "",
) -> Hands3D:
    """Lift joints_uvd_img (42, 3) through `camera`. Root depths: known_root_depth (2,) mm
    where finite (labelled `known_source`); a hand without one takes the other's plus or minus
    rel_root_depth (left minus right, mm); with neither known, the hand-size rule over `hands`
    (2,) bool (the hands shown)."""
    known = np.full(2, np.nan) if known_root_depth is None else np.asarray(known_root_depth)
    offset = np.array([0.0, rel_root_depth])  # each root's depth minus the right root's
    if np.isfinite(known).any():
        h = int(np.argmax(np.isfinite(known)))  # a known root (the right one if both are)
        depth = known[h] - offset[h] + offset
        source = [FROM_OTHER_ROOT, FROM_OTHER_ROOT]
        for k in np.flatnonzero(np.isfinite(known)):
            depth[k], source[k] = known[k], known_source
    else:
        depth = hand_size_root_depths(joints_uvd_img, camera.K, rel_root_depth, hands)
        source = [HAND_SIZE, HAND_SIZE]
    cam, rel = lift_joints(joints_uvd_img, depth, camera.focal, camera.princpt)
    return Hands3D(
        joints_cam=cam, joints_rel=rel, root_depth=depth, root_depth_source=tuple(source)
    )


def warn_implausible_depths(lifted: list[tuple[Path, Hands3D]]) -> None:
    """One `ImplausibleValue` warning when root depths (finite ones) of the images' lifted
    hands lie outside `ROOT_DEPTH_MM`, naming the first image and the count."""
    odd = [
        (path, h)
        for path, h in lifted
        if ROOT_DEPTH_MM.outside(h.root_depth[np.isfinite(h.root_depth)]).any()
    ]
    if not odd:
        return
    path, h = odd[0]
    first = ", ".join(
        f"{side} {z:,.0f} mm ({src})"
        for side, z, src in zip(SIDES, h.root_depth, h.root_depth_source, strict=True)
    )
    warn_implausible(
        f"{len(odd)} of {len(lifted)} images have a root depth outside the plausible "
        f"{ROOT_DEPTH_MM.describe()} (first: {path.name}, {first}); their 3D joints are "
        "placed there (an undertrained network or a wrong --focal gives such depths)"
    )
