"""MANO hands fitted to 3D joints in the camera frame (and their 2D image joints), batched.

For N hands at once (any mix of right and left, from any number of images) the fit finds each
hand's MANO parameters in InterHand2.6M's MANO_NeuralAnnot convention, with the camera frame as
the world frame: pose (48) = global orientation, then the 15 finger joints minus the model's mean
pose; shape (10) betas; trans (3) metres. Steps:

1. Start: the model's mean hand (mean pose, betas 0) placed by the weighted Kabsch rotation and
   translation that best map its wrist and five finger bases, which MANO keeps rigid with its
   root whatever the finger pose, onto the targets (all valid joints where fewer than three of
   those are valid). MANO rotates about its root joint J0, so trans = R J0 + t - J0.
2. Refine: L-BFGS with a strong-Wolfe line search for a fixed number of iterations
   (deterministic; no tolerance or time decides when to stop), on the sum over hands of
   - 3D joints: squared distance (mm^2) to each valid target joint;
   - 2D joints: squared reprojection error (px^2) of each valid image joint (when given);
   - pose prior: squared norm of the pose's coefficients c in the model's own PCA components C
     (finger pose minus mean = c @ C). That is the Mahalanobis distance under the covariance
     the components imply (C^T C): whitened components (rows scaled by their standard
     deviation) give the Mahalanobis prior, orthonormal ones (the synthetic model's) an L2
     prior on the pose's distance from the mean pose;
   - shape prior: squared norm of the betas (MANO's shape space is whitened: unit variance),
     plus a steep cost on any beta beyond +-`SHAPE_BOUND`;
   - interpenetration, between the right and the left hand of one image: squared depth (mm^2)
     of vertices of one hand inside the other's bone capsules (`digit.meshes.capsules`; every
     `PENETRATION_STRIDE`-th vertex in the loop, all of them in the reported depth).
   The parameters are optimised in units (`SCALE`) in which one unit moves the joints by about
   a millimetre, so that L-BFGS's isotropic start is well conditioned. The loop poses only the
   vertices it needs (`digit.meshes.skinning`).
3. The final meshes and joints come from one forward pass of the caller's model (its dtype,
   float64 for `HandModel`'s default), so files written from the result rebuild them exactly.

Hands are independent except for the interpenetration term, so one batch or many give the same
fits up to float rounding. Units: mm and pixels (`core.camera`'s convention).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from core.camera import project
from core.joints import HAND_JOINTS, RIGHT_ROOT
from digit.meshes.capsules import capsule_radii, penetration_depths
from digit.meshes.skinning import SkinningArrays, pose_hand, regressor_support
from render.hand_model import SIDES, HandModel

NUM_POSE = 45  # finger pose: 15 joints x 3
NUM_BETAS = 10
# InterHand2.6M joints rigid with MANO's root joint J0: the wrist (20) and the five finger
# bases (thumb1 = J13, index1 = J1, middle1 = J4, ring1 = J10, pinky1 = J7).
PALM_JOINTS = (RIGHT_ROOT, 3, 7, 11, 15, 19)
# Optimisation units: about 1 mm of joint motion each (0.01 rad turns a hand-sized lever of
# 100 mm by 1 mm, a finger's 40 mm lever needs 0.025 rad, a beta moves joints by ~5 mm).
SCALE = {"orient": 0.01, "trans_mm": 1.0, "coeffs": 0.025, "betas": 0.2}
PENETRATION_STRIDE = 3
# MANO's betas are whitened (unit variance): beyond 3 standard deviations a hand is implausible,
# whatever the joints say (e.g. collapsed predictions), so each beta's excess over 3 costs as
# much as a joint off by 10 mm per unit.
SHAPE_BOUND = 3.0
SHAPE_BOUND_WEIGHT = 100.0
MIN_DEPTH_MM = 1.0  # projection clamps camera depth here (a joint behind the camera)
DTYPES = {"float32": torch.float32, "float64": torch.float64}


@dataclass(frozen=True)
class FitSettings:
    """How `fit_mano` fits.

    iterations: L-BFGS iterations (fixed; at most twice as many objective evaluations).
    history: L-BFGS memory.
    pose_components: how many of the model's 45 PCA components are free (45: the full pose;
        fewer: a PCA pose, the rest held at the mean).
    joint_weight: per mm^2 of 3D joint error. reprojection_weight: per px^2 of 2D error.
    pose_prior_weight: per unit^2 of PCA coefficient. shape_prior_weight: per unit^2 of beta.
    penetration_weight: per mm^2 of a vertex's depth inside the other hand's capsules.
    dtype: "float32" or "float64", the optimisation's precision (the final meshes use the
        model's own dtype).
    threads: torch's CPU threads while fitting (None: as set). The loop's operations are
        small, so more threads gain little, and on a CPU shared with other jobs they lose a lot
        (BENCHMARKS.md: 8x slower with 2 threads than with 1 on a busy 2-core machine).
    """

    iterations: int = 60
    history: int = 10
    pose_components: int = NUM_POSE
    joint_weight: float = 1.0
    reprojection_weight: float = 0.1
    pose_prior_weight: float = 5.0
    shape_prior_weight: float = 3.0
    penetration_weight: float = 0.01
    dtype: str = "float32"
    threads: int | None = 1

    def __post_init__(self) -> None:
        if self.iterations < 0 or self.history < 1 or (self.threads or 1) < 1:
            raise ValueError(f"iterations must be >= 0, history and threads >= 1, got {self}")
        if not 0 <= self.pose_components <= NUM_POSE:
            raise ValueError(f"pose_components must be in 0..45, got {self.pose_components}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        weights = (
            self.joint_weight,
            self.reprojection_weight,
            self.pose_prior_weight,
            self.shape_prior_weight,
            self.penetration_weight,
        )
        if not all(math.isfinite(w) and w >= 0 for w in weights):
            raise ValueError("the weights must be finite and >= 0")


@dataclass(frozen=True, eq=False)
class FitResult:
    """N fitted hands (numpy, float64).

    is_right (N,) bool; pose (N, 48), shape (N, 10), trans (N, 3) metres: MANO_NeuralAnnot
    parameters whose world frame is the camera frame; vertices (N, V, 3) and joints (N, 21, 3)
    camera mm (InterHand2.6M joint order); joint_error_mm (N,) mean distance to the valid
    target joints (NaN if none); reprojection_px (N,) mean distance to the valid image joints
    (NaN if none or not given); penetration_mm (N,) deepest vertex inside the other hand's
    capsules (0 for a hand without a partner).
    """

    is_right: np.ndarray
    pose: np.ndarray
    shape: np.ndarray
    trans: np.ndarray
    vertices: np.ndarray
    joints: np.ndarray
    joint_error_mm: np.ndarray
    reprojection_px: np.ndarray
    penetration_mm: np.ndarray

    def __len__(self) -> int:
        return len(self.is_right)


# ---- small pure pieces ------------------------------------------------------------------------


def rigid_fit(
    source: np.ndarray, target: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted Kabsch: the rotation R and translation t minimising sum w ||R s + t - x||^2.

    source, target (N, P, 3); weights (N, P) >= 0. Returns R (N, 3, 3) proper rotations and
    t (N, 3). With fewer than three weighted points R is the identity (t matches the weighted
    centroids; 0 without any weighted point).
    """
    w = np.asarray(weights, dtype=np.float64)[..., None]
    total = w.sum(1)  # (N, 1)
    safe = np.where(total > 0, total, 1.0)
    cs, ct = (source * w).sum(1) / safe, (target * w).sum(1) / safe
    cov = np.einsum("npi,npj->nij", (source - cs[:, None]) * w, target - ct[:, None])
    u, _, vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(np.einsum("nij,njk->nik", u, vt)))
    fix = np.broadcast_to(np.eye(3), cov.shape).copy()
    fix[:, 2, 2] = np.where(d == 0, 1.0, d)
    R = np.einsum("nji,njk,nlk->nil", vt, fix, u)  # V diag(1, 1, d) U^T
    enough = (w[..., 0] > 0).sum(1) >= 3
    R = np.where(enough[:, None, None], R, np.eye(3))
    t = np.where(total > 0, ct - np.einsum("nij,nj->ni", R, cs), 0.0)
    return R, t


def rotation_to_axis_angle(R: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) -> axis-angle vectors (..., 3), angle in [0, pi]."""
    from scipy.spatial.transform import Rotation

    flat = np.asarray(R, dtype=np.float64).reshape(-1, 3, 3)
    return Rotation.from_matrix(flat).as_rotvec().reshape(*np.shape(R)[:-2], 3)


def project_points(points: torch.Tensor, kparams: torch.Tensor) -> torch.Tensor:
    """Pinhole projection (`core.camera.project` in torch, zero skew, depth clamped at
    MIN_DEPTH_MM): points (N, J, 3) mm, kparams (N, 4) (fx, fy, cx, cy) -> (N, J, 2) px."""
    z = points[..., 2].clamp_min(MIN_DEPTH_MM)
    u = kparams[:, None, 0] * points[..., 0] / z + kparams[:, None, 2]
    v = kparams[:, None, 1] * points[..., 1] / z + kparams[:, None, 3]
    return torch.stack([u, v], dim=-1)


def image_pairs(image: np.ndarray, is_right: np.ndarray) -> np.ndarray:
    """(P, 2) hand indices (right, left) of the images holding exactly one right and one left
    hand; image (N,) ints, is_right (N,) bool."""
    pairs = []
    for value in np.unique(image):
        members = np.flatnonzero(image == value)
        right, left = members[is_right[members]], members[~is_right[members]]
        if len(right) == 1 and len(left) == 1:
            pairs.append((right[0], left[0]))
    return np.asarray(pairs, dtype=np.int64).reshape(-1, 2)


def masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(N, J) values, (N, J) bool -> (N,) mean over the masked entries, NaN where none."""
    count = mask.sum(1)
    total = np.where(mask, values, 0.0).sum(1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


# ---- the model, side by side ----------------------------------------------------------------


@dataclass(frozen=True)
class _Side:
    """What the fit needs of one side's model: components (45, 45) float64, the
    mean hand's joints (21, 3) mm, capsule radii (20,) mm, the loop's `SkinningArrays` and
    where in its vertices the interpenetration term's sample lies (positions (S',))."""

    components: torch.Tensor
    rest_joints: np.ndarray
    radii: torch.Tensor
    skin: SkinningArrays
    sampled: torch.Tensor


def _sides(model: HandModel, dtype: torch.dtype, penetration: bool) -> dict[str, _Side]:
    full = {side: SkinningArrays.of(model, side, dtype) for side in SIDES}
    # one vertex set for both sides (the two hands' vertices are compared vertex by vertex)
    keep = np.union1d(*(regressor_support(full[side]) for side in SIDES))
    sample = np.arange(0, model.num_vertices("right"), PENETRATION_STRIDE)
    if penetration:
        keep = np.union1d(keep, sample)
    out = {}
    for side in SIDES:
        zero = torch.zeros(1, 48, dtype=model.dtype, device=model.device)
        with torch.no_grad():
            rest = model(side, zero, zero[:, :NUM_BETAS], zero[:, :3])
        verts, joints = rest.vertices[0].cpu().numpy(), rest.joints[0].cpu().numpy()
        comps = np.array(model.hands_components(side))
        out[side] = _Side(
            components=torch.as_tensor(comps, dtype=torch.float64, device=model.device),
            rest_joints=joints,
            radii=torch.as_tensor(capsule_radii(verts, joints), dtype=dtype, device=model.device),
            skin=full[side].subset(keep),
            sampled=torch.as_tensor(np.searchsorted(keep, sample), device=model.device),
        )
    return out


def _pose_all(
    model: HandModel | None,
    rows: dict[str, np.ndarray],
    sides: dict[str, _Side],
    orient: torch.Tensor,
    coeffs: torch.Tensor,
    betas: torch.Tensor,
    trans_mm: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every hand through its side's model, back in input order.

    rows: the hand indices of each side; orient (N, 3); coeffs (N, K); betas (N, 10);
    trans_mm (N, 3). model None: the loop's fast forward on the sides' vertex subsets; else
    `model` itself, all vertices. Returns pose (N, 48), vertices (N, S or V, 3) mm, joints
    (N, 21, 3) mm.
    """
    poses, verts, joints, order = [], [], [], []
    for side in SIDES:
        idx = rows[side]
        if len(idx) == 0:
            continue
        components = sides[side].components[: coeffs.shape[1]].to(coeffs.dtype)
        pose = torch.cat([orient[idx], coeffs[idx] @ components], dim=1)
        if model is None:
            v, j = pose_hand(sides[side].skin, pose, betas[idx], trans_mm[idx] / 1000.0)
        else:
            out = model(side, pose, betas[idx], trans_mm[idx] / 1000.0)
            v, j = out.vertices, out.joints
        poses.append(pose)
        verts.append(v)
        joints.append(j)
        order.append(idx)
    inverse = torch.as_tensor(np.argsort(np.concatenate(order)), device=orient.device)
    return torch.cat(poses)[inverse], torch.cat(verts)[inverse], torch.cat(joints)[inverse]


def _pair_depths(
    verts: torch.Tensor, joints: torch.Tensor, pairs: torch.Tensor, radii: torch.Tensor
) -> torch.Tensor:
    """(P, 2, V) depths of the right hand's vertices in the left's capsules, then the left's
    in the right's; pairs (P, 2) (right, left) hand indices, radii (2, 20) (right, left)."""
    r, l = pairs[:, 0], pairs[:, 1]
    right_in_left = penetration_depths(verts[r], joints[l], radii[1])
    left_in_right = penetration_depths(verts[l], joints[r], radii[0])
    return torch.stack([right_in_left, left_in_right], dim=1)


# ---- the fit ---------------------------------------------------------------------------------


def _tensor(x, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x, dtype=np.float64), dtype=dtype, device=device)


def _initial_placement(
    sides: dict[str, _Side], target: np.ndarray, valid: np.ndarray, is_right: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Step 1: orient (N, 3) axis-angle and trans (N, 3) mm of the placed mean hands."""
    rest = np.stack([sides["right" if r else "left"].rest_joints for r in is_right])
    palm = np.zeros_like(valid)
    palm[:, list(PALM_JOINTS)] = valid[:, list(PALM_JOINTS)]
    weights = np.where((palm.sum(1) >= 3)[:, None], palm, valid).astype(np.float64)
    R, t = rigid_fit(rest, target, weights)
    root = rest[:, RIGHT_ROOT]  # J0, the MANO root, at the mean shape
    trans = np.einsum("nij,nj->ni", R, root) + t - root
    return rotation_to_axis_angle(R), trans


def _check_inputs(joints_cam, valid, is_right, joints_2d, valid_2d, K, image) -> None:
    n = len(is_right)
    shapes = {"joints_cam": (joints_cam, (n, HAND_JOINTS, 3)), "valid": (valid, (n, HAND_JOINTS))}
    if joints_2d is not None:
        shapes["valid_2d"] = (valid_2d, (n, HAND_JOINTS))
        shapes["joints_2d"] = (joints_2d, (n, HAND_JOINTS, 2))
        shapes["K"] = (K, (n, 3, 3))
    if image is not None:
        shapes["image"] = (image, (n,))
    for name, (value, shape) in shapes.items():
        if value is None or np.shape(value) != shape:
            got = None if value is None else np.shape(value)
            raise ValueError(f"{name}: expected shape {shape}, got {got}")
    checks = [("joints_cam", joints_cam, valid)]
    if joints_2d is not None:
        checks.append(("joints_2d", joints_2d, valid_2d))
    for name, points, mask in checks:
        if not np.isfinite(np.asarray(points, dtype=np.float64)[np.asarray(mask, bool)]).all():
            raise ValueError(f"{name}: a joint marked valid is not finite")


@dataclass(frozen=True)
class _Targets:
    """The loop's data: 3D targets (N, 21, 3) with weights (N, 21); optional 2D targets
    (N, 21, 2), weights (N, 21), camera (N, 4) (fx, fy, cx, cy); pairs (P, 2)."""

    joints: torch.Tensor
    w3d: torch.Tensor
    uv: torch.Tensor | None
    w2d: torch.Tensor | None
    kparams: torch.Tensor | None
    pairs: torch.Tensor


def _objective(
    sides: dict[str, _Side],
    rows: dict[str, np.ndarray],
    data: _Targets,
    settings: FitSettings,
    params: dict[str, torch.Tensor],
) -> torch.Tensor:
    """The summed loss (see the module docstring) of the parameters `params` (in mm units)."""
    _, verts, joints = _pose_all(None, rows, sides, **params)
    loss = settings.joint_weight * (data.w3d * ((joints - data.joints) ** 2).sum(-1)).sum()
    if data.uv is not None:
        err2d = ((project_points(joints, data.kparams) - data.uv) ** 2).sum(-1)
        loss = loss + settings.reprojection_weight * (data.w2d * err2d).sum()
    loss = loss + settings.pose_prior_weight * (params["coeffs"] ** 2).sum()
    loss = loss + settings.shape_prior_weight * (params["betas"] ** 2).sum()
    beyond = (params["betas"].abs() - SHAPE_BOUND).clamp_min(0.0)
    loss = loss + SHAPE_BOUND_WEIGHT * (beyond**2).sum()
    if len(data.pairs) and settings.penetration_weight > 0:
        radii = torch.stack([sides["right"].radii, sides["left"].radii])
        depth = _pair_depths(verts[:, sides["right"].sampled], joints, data.pairs, radii)
        # the loop sees every PENETRATION_STRIDE-th vertex: scale to a sum over all of them
        loss = loss + settings.penetration_weight * PENETRATION_STRIDE * (depth**2).sum()
    return loss


def fit_mano(
    model: HandModel,
    joints_cam: np.ndarray,
    valid: np.ndarray,
    is_right: np.ndarray,
    *,
    joints_2d: np.ndarray | None = None,
    valid_2d: np.ndarray | None = None,
    K: np.ndarray | None = None,
    image: np.ndarray | None = None,
    settings: FitSettings | None = None,
) -> FitResult:
    """Fit one MANO hand to each of N sets of 21 joints (see the module docstring).

    model: the two-hand model (synthetic or real MANO; its device is used, CPU or CUDA).
    joints_cam (N, 21, 3) camera mm, InterHand2.6M order (anything where not valid);
    valid (N, 21) bool; is_right (N,) bool; joints_2d (N, 21, 2) image px with valid_2d
    (N, 21) bool and K (N, 3, 3) each hand's intrinsics (or None: no 2D term); image (N,) ints:
    hands with the same value share an image, and a right and a left hand of one image are kept
    from interpenetrating (None: every hand alone). Returns a `FitResult` in input order.
    """
    settings = settings or FitSettings()
    is_right = np.asarray(is_right, dtype=bool).reshape(-1)
    _check_inputs(joints_cam, valid, is_right, joints_2d, valid_2d, K, image)
    with cpu_threads(settings.threads):
        return _fit(model, joints_cam, valid, is_right, joints_2d, valid_2d, K, image, settings)


@contextlib.contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """torch's intra-op CPU threads set to `n` meanwhile (None: unchanged)."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _fit(model, joints_cam, valid, is_right, joints_2d, valid_2d, K, image, settings) -> FitResult:
    """`fit_mano` after its input checks."""
    n, dtype, device = len(is_right), DTYPES[settings.dtype], model.device
    valid = np.asarray(valid, dtype=bool)
    target = np.where(valid[..., None], np.asarray(joints_cam, dtype=np.float64), 0.0)
    pairs = image_pairs(np.asarray(image), is_right) if image is not None else np.zeros((0, 2))
    penetration = len(pairs) > 0 and settings.penetration_weight > 0
    sides = _sides(model, dtype, penetration)
    rows = {"right": np.flatnonzero(is_right), "left": np.flatnonzero(~is_right)}
    image_joints = None
    if joints_2d is not None:
        valid_2d = np.asarray(valid_2d, dtype=bool)
        uv = np.where(valid_2d[..., None], np.asarray(joints_2d, dtype=np.float64), 0.0)
        image_joints = (uv, valid_2d, np.asarray(K, dtype=np.float64))
    use_2d = image_joints is not None and settings.reprojection_weight > 0
    data = _Targets(
        joints=_tensor(target, dtype, device),
        w3d=_tensor(valid, dtype, device),
        uv=_tensor(image_joints[0], dtype, device) if use_2d else None,
        w2d=_tensor(image_joints[1], dtype, device) if use_2d else None,
        kparams=_tensor(image_joints[2][:, [0, 1, 0, 1], [0, 1, 2, 2]], dtype, device)
        if use_2d
        else None,
        pairs=torch.as_tensor(pairs, dtype=torch.int64, device=device),
    )
    orient, trans = _initial_placement(sides, target, valid, is_right) if n else ([], [])
    start = {
        "orient": _tensor(np.reshape(orient, (n, 3)), dtype, device),
        "trans_mm": _tensor(np.reshape(trans, (n, 3)), dtype, device),
        "coeffs": torch.zeros(n, settings.pose_components, dtype=dtype, device=device),
        "betas": torch.zeros(n, NUM_BETAS, dtype=dtype, device=device),
    }
    # L-BFGS works on x = parameter / SCALE
    x = {k: (v / SCALE[k]).requires_grad_(True) for k, v in start.items()}
    if n and settings.iterations:
        optimizer = torch.optim.LBFGS(
            list(x.values()), lr=1.0, max_iter=settings.iterations,
            max_eval=2 * settings.iterations, tolerance_grad=0.0, tolerance_change=0.0,
            history_size=settings.history, line_search_fn="strong_wolfe",
        )  # fmt: skip

        def closure() -> torch.Tensor:
            optimizer.zero_grad(set_to_none=True)
            params = {k: v * SCALE[k] for k, v in x.items()}
            loss = _objective(sides, rows, data, settings, params)
            loss.backward()
            return loss

        optimizer.step(closure)
    fitted = {k: (v * SCALE[k]).detach().to(model.dtype) for k, v in x.items()}
    # a hand whose optimisation diverged (not seen, but L-BFGS has no guard) keeps its start
    diverged = ~torch.stack([torch.isfinite(v).all(1) for v in fitted.values()]).all(0)
    for k, v in fitted.items():
        v[diverged] = start[k][diverged].to(v.dtype)
    return _result(model, rows, sides, fitted, is_right, target, valid, pairs, image_joints)


def _result(model, rows, sides, fitted, is_right, target, valid, pairs, image_joints):
    """Step 3: one forward pass of the caller's model on the fitted parameters."""
    n, v = len(is_right), model.num_vertices("right")
    depth = np.zeros(n)
    if n:
        with torch.no_grad():
            pose, verts, joints = _pose_all(model, rows, sides, **fitted)
            if len(pairs):
                radii = torch.stack([sides["right"].radii, sides["left"].radii]).to(model.dtype)
                pairs_t = torch.as_tensor(pairs, device=model.device)
                d = _pair_depths(verts, joints, pairs_t, radii).amax(-1).cpu().numpy()
                depth[pairs[:, 0]], depth[pairs[:, 1]] = d[:, 0], d[:, 1]
        pose, verts, joints = (t.cpu().numpy().astype(np.float64) for t in (pose, verts, joints))
    else:
        pose, verts, joints = np.zeros((0, 48)), np.zeros((0, v, 3)), np.zeros((0, 21, 3))
    reproj = np.full(n, np.nan)
    if image_joints is not None:
        uv, ok, K = image_joints
        reproj = masked_mean(np.linalg.norm(project(joints, K[:, None]) - uv, axis=-1), ok)
    return FitResult(
        is_right=is_right.copy(),
        pose=pose,
        shape=fitted["betas"].cpu().numpy().astype(np.float64),
        trans=fitted["trans_mm"].cpu().numpy().astype(np.float64) / 1000.0,
        vertices=verts,
        joints=joints,
        joint_error_mm=masked_mean(np.linalg.norm(joints - target, axis=-1), valid),
        reprojection_px=reproj,
        penetration_mm=depth,
    )
