"""Pinhole camera maths against hand-computed values and InterHand2.6M's own formula."""

import json
from pathlib import Path

import numpy as np
import pytest
from geometry_reference import camera_to_world

from core.camera import (
    Camera,
    backproject,
    intrinsics,
    project,
    world_to_camera,
    world_to_camera_centred,
    world_to_camera_exact,
)

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "interhand26m_samples"

# 90 degrees about z: world x -> camera y, world y -> camera -x.
RZ90 = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
K0 = np.array([[1000.0, 0.0, 160.0], [0.0, 1100.0, 250.0], [0.0, 0.0, 1.0]])


def test_from_interhand_builds_k_r_t_by_hand():
    cam = Camera.from_interhand([10.0, 0.0, 0.0], RZ90, [1000.0, 1100.0], [160.0, 250.0])
    np.testing.assert_array_equal(cam.K, K0)
    np.testing.assert_array_equal(cam.R, RZ90)
    # t = -R @ campos = -(0, 10, 0)
    np.testing.assert_array_equal(cam.t, [0.0, -10.0, 0.0])
    np.testing.assert_array_equal(cam.campos, [10.0, 0.0, 0.0])
    assert cam.K.dtype == np.float64 and not cam.K.flags.writeable


def test_world_to_camera_and_project_hand_values():
    cam = Camera.from_interhand([10.0, 0.0, 0.0], RZ90, [1000.0, 1100.0], [160.0, 250.0])
    # A point straight ahead of the camera centre lands exactly on the principal point:
    # pixel centres are integers, there is no 0.5 offset.
    ahead = world_to_camera([10.0, 0.0, 1000.0], cam.R, cam.t)
    np.testing.assert_allclose(ahead, [0.0, 0.0, 1000.0], atol=1e-12)
    np.testing.assert_allclose(project(ahead, cam.K), [160.0, 250.0])
    # R @ (10, -100, 500) = (100, 10, 500); + t = (100, 0, 500); u = 1000 * 100/500 + 160 = 360.
    X_cam = world_to_camera([10.0, -100.0, 500.0], RZ90, [0.0, -10.0, 0.0])
    np.testing.assert_allclose(X_cam, [100.0, 0.0, 500.0], atol=1e-12)
    np.testing.assert_allclose(project(X_cam, K0), [360.0, 250.0])
    # v: fy * Y/Z + cy = 1100 * 50/200 + 250 = 525
    np.testing.assert_allclose(project([0.0, 50.0, 200.0], K0), [160.0, 525.0])


def test_backproject_inverts_project_by_hand():
    np.testing.assert_allclose(backproject([360.0, 250.0], 500.0, K0), [100.0, 0.0, 500.0])
    np.testing.assert_allclose(backproject([160.0, 525.0], 200.0, K0), [0.0, 50.0, 200.0])


def test_skew_is_honoured_both_ways():
    K = np.array([[100.0, 10.0, 5.0], [0.0, 200.0, 7.0], [0.0, 0.0, 1.0]])
    # x = 1, y = 2 at Z = 1: u = 100 * 1 + 10 * 2 + 5 = 125, v = 200 * 2 + 7 = 407
    np.testing.assert_allclose(project([3.0, 6.0, 3.0], K), [125.0, 407.0])
    np.testing.assert_allclose(backproject([125.0, 407.0], 3.0, K), [3.0, 6.0, 3.0])


def test_broadcasting_matches_a_loop():
    rng = np.random.default_rng(0)
    B, J = 3, 5
    R = np.stack([np.linalg.qr(rng.normal(size=(3, 3)))[0] for _ in range(B)])
    t = rng.normal(size=(B, 3)) * 100
    K = intrinsics(rng.uniform(500, 1500, (B, 2)), rng.uniform(100, 300, (B, 2)))
    X = rng.normal(size=(B, J, 3)) * 50 + [0, 0, 1000]
    X_cam = world_to_camera(X, R[:, None], t[:, None])
    uv = project(X_cam, K[:, None])
    for b in range(B):
        for j in range(J):
            xc = R[b] @ X[b, j] + t[b]
            np.testing.assert_allclose(X_cam[b, j], xc, rtol=1e-12)
            u = K[b, 0, 0] * xc[0] / xc[2] + K[b, 0, 2]
            v = K[b, 1, 1] * xc[1] / xc[2] + K[b, 1, 2]
            np.testing.assert_allclose(uv[b, j], [u, v], rtol=1e-12)
    np.testing.assert_allclose(camera_to_world(X_cam, R[:, None], t[:, None]), X, atol=1e-9)
    np.testing.assert_allclose(backproject(uv, X_cam[..., 2], K[:, None]), X_cam, rtol=1e-10)


def test_camera_rejects_bad_shapes_and_intrinsics():
    with pytest.raises(ValueError):
        Camera(K=np.eye(3), R=np.eye(3), t=np.zeros(2))
    with pytest.raises(ValueError):
        Camera(K=np.ones((3, 3)), R=np.eye(3), t=np.zeros(3))


def test_matches_interhand_formula_on_real_cameras():
    """X_cam = camrot @ (X - campos) as written in the dataset's documentation."""
    if not SAMPLES.is_dir():
        pytest.skip("shared InterHand2.6M samples not available")
    cams = json.loads((SAMPLES / "test_interhand2.6m_camera.json").read_text())
    X = np.array([[12.0, -80.0, 1050.0], [-40.0, 30.0, 990.0]])
    for capture, params in cams.items():
        for name in params["campos"]:
            campos = np.array(params["campos"][name])
            camrot = np.array(params["camrot"][name])
            cam = Camera.from_interhand(
                campos, camrot, params["focal"][name], params["princpt"][name]
            )
            expected = (camrot @ (X - campos).T).T
            X_cam = world_to_camera(X, cam.R, cam.t)
            np.testing.assert_allclose(X_cam, expected, atol=1e-9)
            centred = world_to_camera_centred(X, campos, camrot)
            np.testing.assert_allclose(centred, expected, atol=1e-9)
            fx, fy = params["focal"][name]
            cx, cy = params["princpt"][name]
            u = fx * expected[:, 0] / expected[:, 2] + cx
            v = fy * expected[:, 1] / expected[:, 2] + cy
            np.testing.assert_allclose(
                project(X_cam, cam.K), np.stack([u, v], 1), atol=1e-9, err_msg=capture
            )


def _random_cameras(rng, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n random rotations (n, 3, 3), camera centres (n, 3) and world points (n, 7, 3), mm."""
    R = np.linalg.qr(rng.normal(size=(n, 3, 3)))[0]
    campos = rng.normal(size=(n, 3)) * 1000
    X = rng.normal(size=(n, 7, 3)) * 500
    return R, campos, X


def test_the_three_world_to_camera_forms_agree():
    """Fast (BLAS), exact (element-wise) and centred (camera.json) forms: one rule, against a
    plain loop of R @ (X - campos), to float tolerance (they round differently)."""
    rng = np.random.default_rng(1)
    R, campos, X = _random_cameras(rng, 4)
    t = -np.einsum("bij,bj->bi", R, campos)
    expected = np.array([[R[b] @ (x - campos[b]) for x in X[b]] for b in range(4)])
    np.testing.assert_allclose(world_to_camera(X, R[:, None], t[:, None]), expected, atol=1e-9)
    np.testing.assert_allclose(world_to_camera_exact(X, R, t), expected, atol=1e-9)
    for b in range(4):
        got = world_to_camera_centred(X[b], campos[b], R[b])
        np.testing.assert_allclose(got, expected[b], atol=1e-9)


def test_world_to_camera_exact_is_bitwise_the_written_out_sum():
    """The exact form rounds as ((r0 x + r1 y) + r2 z) + t, element by element, whatever the
    batch: one image alone gives the same bits as inside a batch."""
    rng = np.random.default_rng(2)
    R, _, X = _random_cameras(rng, 5)
    t = rng.normal(size=(5, 3)) * 100
    out = world_to_camera_exact(X, R, t)
    for b in range(5):
        for p in range(7):
            for k in range(3):
                x, y, z = (float(v) for v in X[b, p])
                want = ((R[b, k, 0] * x + R[b, k, 1] * y) + R[b, k, 2] * z) + t[b, k]
                assert out[b, p, k] == want
        assert np.array_equal(
            world_to_camera_exact(X[b : b + 1], R[b : b + 1], t[b : b + 1])[0], out[b]
        )
