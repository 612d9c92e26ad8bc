"""The demo's 3D maths and intrinsics: root depths recovered from hand-built skeletons of known
depth, the stated defaults, option parsing, and the two constants checked against real data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.camera import intrinsics, project
from core.errors import DigitError
from core.joints import BONES
from digit.demo.intrinsics import (
    DATASET,
    DEFAULT,
    FOCAL_PER_LONG_SIDE,
    Intrinsics,
    image_intrinsics,
    parse_focal,
    parse_princpt,
)
from digit.demo.lift import (
    FROM_OTHER_ROOT,
    HAND_BONE_SUM_MM,
    HAND_SIZE,
    MIN_DEPTH_MM,
    joint_rays,
    lift_prediction,
    solve_root_depth,
)

SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "interhand26m_samples"


def _fan_hand(step: np.ndarray) -> np.ndarray:
    """(21, D) joints: the wrist (joint 20) at 0 and finger f's m-th joint (m = 1 base .. 4 tip,
    index 4 f + 4 - m) at m * step[f]; step (5, D). Every bone is one step long."""
    joints = np.zeros((21, step.shape[1]))
    for f in range(5):
        for m in range(1, 5):
            joints[4 * f + 4 - m] = m * step[f]
    return joints


def _camera(fx, fy, cx, cy) -> Intrinsics:
    return Intrinsics(np.array([fx, fy]), np.array([cx, cy]), DEFAULT, DEFAULT)


def test_flat_hand_by_hand():
    """A hand parallel to the image, d = 0: 20 bones of 10 px each at f = 500 px. Its bones sum
    to 200 px * Z / 500, which is 800 mm at Z = 2000 mm; then each 10 px step is 40 mm."""
    angles = np.radians([0, 30, 60, 90, 120])
    step = 10 * np.stack([np.cos(angles), np.sin(angles)], -1)
    uv = _fan_hand(step) + np.array([320, 240])
    uvd = np.concatenate([np.tile(uv, (2, 1)), np.zeros((42, 1))], axis=1)
    camera = _camera(500, 500, 320, 240)
    for shown in ([True, False], [True, True], [False, False]):
        hands = lift_prediction(uvd, 0.0, camera, np.array(shown))
        np.testing.assert_allclose(hands.root_depth, [2000, 2000], rtol=1e-12)
        assert hands.root_depth_source == (HAND_SIZE, HAND_SIZE)
        expected = np.concatenate([_fan_hand(4 * step), np.zeros((21, 1))], axis=1)
        np.testing.assert_allclose(hands.joints_rel[:21], expected, atol=1e-9)
        np.testing.assert_allclose(hands.joints_rel[0], [160, 0, 0], atol=1e-9)  # thumb tip


def _two_hands() -> tuple[np.ndarray, np.ndarray]:
    """Camera-frame joints (42, 3) mm of two hands with 40 mm bones (each hand's bones sum to
    800 mm), right root at depth 600, left root at 650, fingers leaning towards and away from
    the camera; and the roots (2, 3)."""
    rng = np.random.default_rng(3)
    hands, roots = [], np.array([[30.0, -20.0, 600.0], [-60.0, 10.0, 650.0]])
    for root in roots:
        direction = rng.normal(size=(5, 3)) * [1, 1, 0.6]
        step = 40 * direction / np.linalg.norm(direction, axis=1, keepdims=True)
        hands.append(_fan_hand(step) + root)
    return np.concatenate(hands), roots


def test_root_depths_of_a_projected_skeleton_are_recovered():
    joints, roots = _two_hands()
    assert np.allclose([sum(np.linalg.norm(joints[c] - joints[p]) for c, p in BONES)], 1600)
    camera = _camera(900, 880, 200, 150)
    uv = project(joints, camera.K)
    d = joints[:, 2] - np.repeat(roots[:, 2], 21)
    uvd = np.concatenate([uv, d[:, None]], axis=1)
    expected_rel = joints - np.repeat(roots, 21, axis=0)
    for shown in ([True, True], [True, False], [False, True]):
        hands = lift_prediction(uvd, 50.0, camera, np.array(shown))
        np.testing.assert_allclose(hands.root_depth, [600, 650], rtol=1e-9)
        np.testing.assert_allclose(hands.joints_rel, expected_rel, atol=1e-6)
        np.testing.assert_allclose(hands.joints_cam, joints, atol=1e-6)
    # a known root depth is used as given; the other root follows by the relative depth
    hands = lift_prediction(uvd, 50.0, camera, np.ones(2, bool), np.array([600.0, np.nan]), "gt")
    np.testing.assert_allclose(hands.root_depth, [600, 650])
    assert hands.root_depth_source == ("gt", FROM_OTHER_ROOT)
    hands = lift_prediction(uvd, 50.0, camera, np.ones(2, bool), np.array([np.nan, 650.0]), "gt")
    np.testing.assert_allclose(hands.root_depth, [600, 650])
    assert hands.root_depth_source == (FROM_OTHER_ROOT, "gt")


def test_single_hand_solution_lies_where_the_hand_grows_with_depth():
    joints, roots = _two_hands()
    K = intrinsics(np.array([900.0, 900.0]), np.array([200.0, 150.0]))
    right = joints[:21]
    rays = joint_rays(project(right, K), K)
    d = right[:, 2] - roots[0, 2]
    z = solve_root_depth(rays, d, 800.0)
    assert z == pytest.approx(600, rel=1e-9)
    size = [
        sum(np.linalg.norm(rays[c] * (zz + d[c]) - rays[p] * (zz + d[p])) for c, p in BONES[:20])
        for zz in (z - 1, z + 1)
    ]
    assert size[0] < 800 < size[1]


def test_no_solution_in_front_and_no_size():
    """A chain of tiny pixel steps whose depth grows 100 mm per bone is over 2000 mm long at
    any depth, more than the 800 mm target: the nearest admissible depth is used. A hand on
    one pixel has no size: NaN."""
    step = np.tile([[1e-3, 0.0]], (5, 1))
    uv = _fan_hand(step) + np.array([400, 300])
    d = _fan_hand(np.full((5, 1), 100.0))[:, 0]
    K = intrinsics(np.array([1000.0, 1000.0]), np.array([320.0, 240.0]))
    assert solve_root_depth(joint_rays(uv, K), d, 800.0) == MIN_DEPTH_MM
    flat = np.full((21, 2), 50.0)
    assert np.isnan(solve_root_depth(joint_rays(flat, K), np.zeros(21), 800.0))


# ---- intrinsics ------------------------------------------------------------------------------


def test_default_intrinsics_are_the_stated_ones():
    cam = image_intrinsics((334, 512))
    np.testing.assert_allclose(cam.focal, [2.48 * 512, 2.48 * 512])
    np.testing.assert_allclose(cam.princpt, [255.5, 166.5])
    assert (cam.focal_source, cam.princpt_source) == (DEFAULT, DEFAULT)
    cam = image_intrinsics((600, 400), focal=np.array([900.0, 800.0]))
    np.testing.assert_allclose(cam.princpt, [199.5, 299.5])
    assert (cam.focal_source, cam.princpt_source) == ("--focal", DEFAULT)
    dataset = (np.array([1200.0, 1201.0]), np.array([150.0, 250.0]))
    cam = image_intrinsics((512, 334), princpt=np.array([1.0, 2.0]), camera=dataset)
    np.testing.assert_allclose(cam.focal, [1200, 1201])
    np.testing.assert_allclose(cam.princpt, [1, 2])
    assert (cam.focal_source, cam.princpt_source) == (DATASET, "--princpt")


def test_focal_and_princpt_parsing():
    np.testing.assert_array_equal(parse_focal("1200"), [1200, 1200])
    np.testing.assert_array_equal(parse_focal("1200,1100.5"), [1200, 1100.5])
    np.testing.assert_array_equal(parse_princpt("-3,20.5"), [-3, 20.5])
    for bad in ("", "abc", "0", "-5", "1,2,3", "nan", "inf,3", "1,"):
        with pytest.raises(DigitError, match="--focal") as exc:
            parse_focal(bad)
        assert "\n" not in str(exc.value) and repr(bad) in str(exc.value)
    for bad in ("10", "a,b", "1,2,3", "nan,1"):
        with pytest.raises(DigitError, match="--princpt"):
            parse_princpt(bad)


# ---- the constants, against the real InterHand2.6M samples -----------------------------------


def _samples(name: str) -> dict:
    path = SAMPLES / f"test_interhand2.6m_{name}.json"
    if not path.exists():
        pytest.skip(f"{path} absent (the real samples live in ../shared, outside the repo)")
    return json.loads(path.read_text())


def test_hand_bone_sum_is_the_real_hands_mean():
    sums = []
    for frames in _samples("joint_3d").values():
        for ann in frames.values():
            xyz = np.asarray(ann["world_coord"])
            valid = np.asarray(ann["joint_valid"], bool).reshape(-1)
            for bones in (BONES[:20], BONES[20:]):
                if all(valid[c] and valid[p] for c, p in bones):
                    sums.append(sum(np.linalg.norm(xyz[c] - xyz[p]) for c, p in bones))
    assert len(sums) == 6
    assert HAND_BONE_SUM_MM == pytest.approx(np.mean(sums), rel=0.01)


def test_default_focal_ratio_is_interhands():
    images = _samples("data")["images"]
    cameras = _samples("camera")
    for image in images:
        cam = cameras[str(image["capture"])]["focal"][str(image["camera"])]
        ratio = np.asarray(cam) / max(image["width"], image["height"])
        np.testing.assert_allclose(ratio, FOCAL_PER_LONG_SIDE, rtol=0.01)
