"""The MANO fit (`digit.meshes.fit`): its fast forward equals `HandModel.forward`, Kabsch recovers
a known rigid motion, capsule distances match hand-computed ones, and fitting recovers the
meshes of known MANO parameters from their own joints (the generating parameters' meshes are
the reference)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from core.assets import SYNTHETIC_MANO_DIR
from core.camera import intrinsics, project
from digit.meshes.capsules import penetration_depths, segment_distances
from digit.meshes.fit import FitSettings, fit_mano, image_pairs, rigid_fit
from digit.meshes.skinning import SkinningArrays, pose_hand, regressor_support
from render.hand_model import HandModel
from render.synthetic_mano.pose_prior import sample_natural_hand_pose


@pytest.fixture(scope="module")
def model() -> HandModel:
    return HandModel.from_dir(SYNTHETIC_MANO_DIR)


def known_hands(model: HandModel, sides: list[str], seed: int = 0) -> dict:
    """Hands with known MANO parameters (natural finger poses, betas ~ N(0, 1), any wrist
    orientation, 0.5-0.7 m in front of the camera): their NeuralAnnot pose (N, 48), shape,
    trans, and the meshes and joints they give (camera = world frame)."""
    rng = np.random.default_rng(seed)
    n = len(sides)
    pose, shape = np.zeros((n, 48)), rng.normal(0.0, 1.0, (n, 10))
    trans = np.column_stack([rng.uniform(-0.1, 0.1, (n, 2)), rng.uniform(0.5, 0.7, n)])
    verts, joints = [], []
    for k, side in enumerate(sides):
        pose[k, :3] = Rotation.random(random_state=int(rng.integers(1 << 30))).as_rotvec()
        pose[k, 3:] = sample_natural_hand_pose(rng, 1, side)[0] - model.hands_mean(side)
        with torch.no_grad():
            out = model(side, *(torch.tensor(a[k : k + 1]) for a in (pose, shape, trans)))
        verts.append(out.vertices[0].numpy())
        joints.append(out.joints[0].numpy())
    is_right = np.array([s == "right" for s in sides])
    return {"pose": pose, "shape": shape, "trans": trans, "verts": np.stack(verts),
            "joints": np.stack(joints), "is_right": is_right}  # fmt: skip


def root_aligned_error(a_verts, a_joints, b_verts, b_joints) -> np.ndarray:
    """Mean vertex distance per hand after moving each mesh's wrist (joint 20) to the origin."""
    a = a_verts - a_joints[:, 20:21]
    b = b_verts - b_joints[:, 20:21]
    return np.linalg.norm(a - b, axis=-1).mean(-1)


def test_fast_forward_equals_hand_model(model):
    g = torch.Generator().manual_seed(1)
    for side in ("right", "left"):
        pose = torch.randn(4, 48, generator=g, dtype=torch.float64) * 0.6
        betas = torch.randn(4, 10, generator=g, dtype=torch.float64) * 2
        trans = torch.randn(4, 3, generator=g, dtype=torch.float64) * 0.2
        ref = model(side, pose, betas, trans)
        arrays = SkinningArrays.of(model, side, torch.float64)
        verts, joints = pose_hand(arrays, pose, betas, trans)
        np.testing.assert_allclose(verts.numpy(), ref.vertices.numpy(), atol=1e-9)
        np.testing.assert_allclose(joints.numpy(), ref.joints.numpy(), atol=1e-9)
        # a subset holding the regressor's support still gives the same joints
        keep = np.union1d(regressor_support(arrays), [0, 5, 17])
        verts_s, joints_s = pose_hand(arrays.subset(keep), pose, betas, trans)
        np.testing.assert_allclose(joints_s.numpy(), ref.joints.numpy(), atol=1e-9)
        np.testing.assert_allclose(verts_s.numpy(), ref.vertices.numpy()[:, keep], atol=1e-9)


def test_rigid_fit_recovers_a_known_motion():
    rng = np.random.default_rng(3)
    source = rng.normal(0.0, 50.0, (2, 6, 3))
    R = Rotation.random(2, random_state=4).as_matrix()
    t = rng.normal(0.0, 100.0, (2, 3))
    target = np.einsum("nij,npj->npi", R, source) + t[:, None]
    weights = np.ones((2, 6))
    weights[1, 0] = 0.0
    target[1, 0] = 1e6  # an unweighted outlier changes nothing
    R_fit, t_fit = rigid_fit(source, target, weights)
    np.testing.assert_allclose(R_fit, R, atol=1e-10)
    np.testing.assert_allclose(t_fit, t, atol=1e-8)
    # fewer than three points: identity rotation, centroids matched
    R2, t2 = rigid_fit(source[:1], target[:1], np.array([[1.0, 1.0, 0, 0, 0, 0]]))
    np.testing.assert_allclose(R2[0], np.eye(3))
    np.testing.assert_allclose(t2[0], (target[0, :2] - source[0, :2]).mean(0))


def test_segment_distances_and_depths_by_hand():
    points = torch.tensor([[0.5, 2.0, 0.0], [-3.0, 0.0, 4.0], [1.0, 0.0, 0.0], [2.0, 0.0, 0.0]])
    start, end = torch.tensor([[0.0, 0.0, 0.0]]), torch.tensor([[1.0, 0.0, 0.0]])
    dist = segment_distances(points, start, end)[:, 0]
    # above the middle; beyond the start (to (0, 0, 0)); on the end; beyond the end
    np.testing.assert_allclose(dist.numpy(), [2.0, 5.0, 0.0, 1.0], atol=1e-6)
    joints = torch.zeros(1, 21, 3)
    joints[0, :, 0] = torch.arange(21.0)  # every bone a unit segment along x
    radii = torch.full((20,), 1.5)
    depth = penetration_depths(points[None], joints, radii)[0]
    np.testing.assert_allclose(depth.numpy(), [0.0, 0.0, 1.5, 1.5], atol=1e-6)


def test_image_pairs():
    image = np.array([0, 0, 1, 2, 2, 2, 3, 3])
    right = np.array([1, 0, 1, 1, 0, 0, 1, 1], bool)
    np.testing.assert_array_equal(image_pairs(image, right), [[0, 1]])


def test_fit_recovers_known_hands_from_their_joints(model):
    """Six hands (both sides) from their own 21 joints and 2D projections: within a few mm of
    the generating meshes, far better than the rigidly placed mean hand it starts from."""
    hands = known_hands(model, ["right", "left", "right", "left", "right", "left"])
    K = np.repeat(intrinsics(np.array([1250.0, 1250.0]), np.array([167.0, 256.0]))[None], 6, 0)
    valid = np.ones((6, 21), bool)
    uv = project(hands["joints"], K[:, None])
    fit = fit_mano(
        model, hands["joints"], valid, hands["is_right"], joints_2d=uv, valid_2d=valid, K=K
    )
    error = root_aligned_error(fit.vertices, fit.joints, hands["verts"], hands["joints"])
    assert error.max() < 3.0, error
    assert np.nanmax(fit.joint_error_mm) < 1.0 and np.nanmax(fit.reprojection_px) < 1.0
    start = fit_mano(model, hands["joints"], valid, hands["is_right"],
                     settings=FitSettings(iterations=0))  # fmt: skip
    start_error = root_aligned_error(start.vertices, start.joints, hands["verts"], hands["joints"])
    assert start_error.mean() > 3 * error.mean()
    # the parameters rebuild the reported meshes and joints (camera = world frame)
    for k, side in enumerate(["right", "left"] * 3):
        out = model(side, *(torch.tensor(a[k : k + 1]) for a in (fit.pose, fit.shape, fit.trans)))
        np.testing.assert_allclose(out.vertices[0].numpy(), fit.vertices[k], atol=1e-6)
    assert fit.pose.shape == (6, 48) and fit.shape.shape == (6, 10) and fit.trans.shape == (6, 3)


def test_fit_with_missing_joints_and_an_empty_batch(model):
    hands = known_hands(model, ["right", "left"], seed=5)
    valid = np.ones((2, 21), bool)
    valid[0, [0, 4, 8]] = False  # three fingertips unknown (NaN, as in the dataset)
    joints = hands["joints"].copy()
    joints[~valid] = np.nan
    fit = fit_mano(model, joints, valid, hands["is_right"])
    assert np.all(np.isfinite(fit.vertices))
    error = root_aligned_error(fit.vertices, fit.joints, hands["verts"], hands["joints"])
    assert error.max() < 5.0, error
    empty = fit_mano(model, np.zeros((0, 21, 3)), np.zeros((0, 21), bool), np.zeros(0, bool))
    assert len(empty) == 0 and empty.vertices.shape == (0, model.num_vertices("right"), 3)
    with pytest.raises(ValueError, match="joints_cam"):
        fit_mano(model, np.zeros((2, 20, 3)), valid, hands["is_right"])
    with pytest.raises(ValueError, match="joints_cam: a joint marked valid is not finite"):
        fit_mano(model, joints, np.ones((2, 21), bool), hands["is_right"])


def test_interpenetration_term_pushes_overlapping_hands_apart(model):
    """A right and a left hand placed into each other: fitted to those joints with the term,
    they end up less deep inside each other than without it."""
    hands = known_hands(model, ["right", "left"], seed=2)
    joints = hands["joints"].copy()
    joints[1] += joints[0, 20] - joints[1, 20] + np.array([10.0, 0.0, 0.0])  # wrists 10 mm apart
    valid = np.ones((2, 21), bool)
    image = np.zeros(2, int)
    alone = fit_mano(model, joints, valid, hands["is_right"], image=image,
                     settings=FitSettings(penetration_weight=0.0))  # fmt: skip
    kept = fit_mano(model, joints, valid, hands["is_right"], image=image,
                    settings=FitSettings(penetration_weight=1.0))  # fmt: skip
    assert alone.penetration_mm.max() > 5.0
    assert kept.penetration_mm.max() < 0.7 * alone.penetration_mm.max()
