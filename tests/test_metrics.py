"""Official InterHand2.6M metrics against hand-computed cases and a plain loop re-implementation."""

import json
import math

import numpy as np
import pytest

from core.camera import backproject, intrinsics
from digit.metrics import (
    INTERACTION_BINS,
    backproject_joints,
    empty_joints,
    evaluate,
    hand_type_codes,
    handedness_correct,
    interaction_bins,
    mpjpe_by_bin,
    mpjpe_per_image,
    mpjpe_pooled,
    mrrpe_per_image,
    per_joint_errors,
    root_relative,
)

RIGHT_NONROOT = list(range(20))
LEFT_NONROOT = list(range(21, 41))


def to_uvd(P, focal, princpt):
    """Camera joints (N, 42, 3) -> (uvd (N, 42, 3), abs_depth (N, 2)), written out plainly."""
    n = P.shape[0]
    uvd = np.zeros_like(P)
    abs_depth = np.zeros((n, 2))
    for i in range(n):
        fx, fy = focal[i]
        cx, cy = princpt[i]
        abs_depth[i] = P[i, 20, 2], P[i, 41, 2]
        for j in range(42):
            X, Y, Z = P[i, j]
            root_z = abs_depth[i, 0] if j < 21 else abs_depth[i, 1]
            uvd[i, j] = fx * X / Z + cx, fy * Y / Z + cy, Z - root_z
    return uvd, abs_depth


def random_hands(rng, n):
    """Ground-truth camera joints (N, 42, 3) mm: right near (0, 0, 1000), left (100, 0, 1050)."""
    G = np.empty((n, 42, 3))
    G[:, :21] = np.array([0.0, 0.0, 1000.0]) + rng.normal(0, 40, (n, 21, 3))
    G[:, 21:] = np.array([100.0, 0.0, 1050.0]) + rng.normal(0, 40, (n, 21, 3))
    return G


@pytest.fixture
def three_images():
    """A right-hand, a left-hand and an interacting image with known per-joint offsets.

    Non-root errors: right image 5 mm (right hand), left image 10 mm (left hand), interacting image
    2 mm (right) and 6 mm (left). Each predicted hand is also shifted as a whole (root included),
    which root alignment must cancel; the interacting image's shifts differ by (0, 3, 4), so
    MRRPE = 5 mm.
    """
    rng = np.random.default_rng(0)
    G = random_hands(rng, 3)
    P = G.copy()
    offsets = [
        ((3.0, 4.0, 0.0), (0.0, 0.0, 0.0)),
        ((0, 0, 0), (0.0, 0.0, 10.0)),
        ((2, 0, 0), (0, 6, 0)),
    ]
    shifts = [((7, -2, 5), (1, 1, 1)), ((0, 0, 0), (-4, 2, 9)), ((7, 0, 0), (7, 3, 4))]
    for i in range(3):
        P[i, RIGHT_NONROOT] += offsets[i][0]
        P[i, LEFT_NONROOT] += offsets[i][1]
        P[i, :21] += shifts[i][0]
        P[i, 21:] += shifts[i][1]
    valid = np.zeros((3, 42), bool)
    valid[0, :21] = True
    valid[1, 21:] = True
    valid[2] = True
    focal = np.array([[1000.0, 1010.0], [1200.0, 1190.0], [900.0, 905.0]])
    princpt = np.array([[320.0, 240.0], [330.0, 250.0], [310.0, 235.0]])
    uvd, abs_depth = to_uvd(P, focal, princpt)
    rel_root = P[:, 41, 2] - P[:, 20, 2]
    return {
        "joints_uvd_img": uvd,
        "rel_root_depth": rel_root,
        "handedness_prob": np.array([[0.9, 0.1], [0.2, 0.7], [0.6, 0.4]]),
        "abs_depth": abs_depth,
        "focal": focal,
        "princpt": princpt,
        "gt_cam": G,
        "joint_valid": valid,
        "hand_type": np.array(["right", "left", "interacting"]),
        "hand_type_valid": np.array([True, True, True]),
        "P": P,
    }


def call_evaluate(d, **extra):
    return evaluate(**{k: v for k, v in d.items() if k != "P"}, **extra)


# ---------------------------------------------------------------- back-projection, alignment


def test_backproject_joints_matches_render_camera():
    rng = np.random.default_rng(1)
    n = 4
    uvd = np.concatenate(
        [rng.uniform(0, 640, (n, 42, 2)), rng.uniform(-80, 80, (n, 42, 1))], axis=-1
    )
    abs_depth = rng.uniform(500, 1500, (n, 2))
    focal = rng.uniform(800, 1300, (n, 2))
    princpt = rng.uniform(200, 400, (n, 2))
    out = backproject_joints(uvd, abs_depth, focal, princpt)
    K = intrinsics(focal, princpt)[:, None]  # (n, 1, 3, 3)
    depth = uvd[..., 2] + np.where(np.arange(42) < 21, abs_depth[:, :1], abs_depth[:, 1:])
    np.testing.assert_allclose(out, backproject(uvd[..., :2], depth, K), rtol=1e-12)
    # Right joints take the right root depth, left joints the left one.
    np.testing.assert_allclose(out[:, :21, 2], uvd[:, :21, 2] + abs_depth[:, :1])
    np.testing.assert_allclose(out[:, 21:, 2], uvd[:, 21:, 2] + abs_depth[:, 1:])


def test_backproject_hand_value():
    uvd = np.zeros((1, 42, 3))
    uvd[0, 3] = (420.0, 140.0, 10.0)  # right joint: Z = 10 + 990 = 1000
    uvd[0, 30] = (320.0, 340.0, -50.0)  # left joint: Z = -50 + 550 = 500
    out = backproject_joints(uvd, [[990.0, 550.0]], [[1000.0, 500.0]], [[320.0, 240.0]])
    np.testing.assert_allclose(out[0, 3], [100.0, -200.0, 1000.0])
    np.testing.assert_allclose(out[0, 30], [0.0, 100.0, 500.0])


def test_root_relative_subtracts_own_root():
    j = np.arange(42 * 3, dtype=float).reshape(1, 42, 3) ** 1.5
    out = root_relative(j)
    np.testing.assert_allclose(out[0, 5], j[0, 5] - j[0, 20])
    np.testing.assert_allclose(out[0, 33], j[0, 33] - j[0, 41])
    assert not out[0, 20].any() and not out[0, 41].any()


def test_per_joint_errors_root_validity_and_nan():
    rng = np.random.default_rng(2)
    G = random_hands(rng, 2)
    P = G.copy()
    P[:, 3] += (0.0, 0.0, 12.0)
    valid = np.ones((2, 42), bool)
    valid[0, 7] = False
    valid[1, 41] = False  # left root invalid: the whole left hand goes
    e = per_joint_errors(P, G, valid)
    np.testing.assert_allclose(e[:, 3], 12.0)
    assert np.isnan(e[0, 7]) and np.isnan(e[1, 21:]).all()
    assert np.isfinite(e[1, :21]).all()
    assert e[0, 20] == 0.0 and e[0, 41] == 0.0


# ---------------------------------------------------------------- hand-computed MPJPE


def test_mpjpe_hand_computed(three_images):
    r = call_evaluate(three_images)
    # Wrists enter with 0: (20 * 5 + 20 * 10) / 42, not the non-root average 7.5.
    assert r.mpjpe_sh == pytest.approx(300 / 42, abs=1e-9)
    assert r.mpjpe_ih == pytest.approx(160 / 42, abs=1e-9)
    # All: right non-root joints (5 + 2) / 2, left (10 + 6) / 2.
    assert r.mpjpe_all == pytest.approx((20 * 3.5 + 20 * 8) / 42, abs=1e-9)
    np.testing.assert_allclose(r.per_joint_sh[RIGHT_NONROOT], 5.0, atol=1e-9)
    np.testing.assert_allclose(r.per_joint_sh[LEFT_NONROOT], 10.0, atol=1e-9)
    assert r.per_joint_sh[20] == pytest.approx(0.0) and r.per_joint_sh[41] == pytest.approx(0.0)
    # Per image: mean over valid joints, roots included at 0.
    np.testing.assert_allclose(r.mpjpe_image, [100 / 21, 200 / 21, 160 / 42], atol=1e-9)
    np.testing.assert_allclose(r.joints_cam, three_images["P"], atol=1e-9)
    assert (r.n_images, r.n_single, r.n_interacting) == (3, 2, 1)
    assert r.empty_joints_sh == r.empty_joints_ih == r.empty_joints_all == ()


def test_mpjpe_invalid_joint_changes_only_its_mean(three_images):
    three_images["joint_valid"][2, 5] = False
    r = call_evaluate(three_images)
    # Joint 5 of the all-pool now only has the right image's 5 mm.
    assert r.per_joint_all[5] == pytest.approx(5.0)
    assert r.mpjpe_all == pytest.approx((19 * 3.5 + 5 + 20 * 8) / 42, abs=1e-9)
    assert r.mpjpe_image[2] == pytest.approx((19 * 2 + 20 * 6) / 41, abs=1e-9)


def test_pool_with_empty_joint_is_nan_and_reported(three_images):
    # Only the right single-hand image is left in the single-hand pool: left joints are empty.
    three_images["hand_type"] = np.array(["right", "interacting", "interacting"])
    three_images["joint_valid"][1] = True
    r = call_evaluate(three_images)
    assert math.isnan(r.mpjpe_sh)
    assert r.empty_joints_sh == tuple(range(21, 42))
    assert np.isnan(r.per_joint_sh[21:]).all()
    np.testing.assert_allclose(r.per_joint_sh[RIGHT_NONROOT], 5.0, atol=1e-9)
    assert np.isfinite(r.mpjpe_ih) and r.empty_joints_ih == ()
    assert r.summary()["mpjpe_sh"] is None
    json.dumps(r.summary())


def test_mpjpe_pooled_empty_pool_does_not_crash():
    e = np.full((2, 42), 3.0)
    value, per_joint = mpjpe_pooled(e, np.zeros(2, bool))
    assert math.isnan(value) and np.isnan(per_joint).all()
    assert empty_joints(per_joint) == tuple(range(42))


# ---------------------------------------------------------------- MRRPE


def test_mrrpe_hand_computed(three_images):
    r = call_evaluate(three_images)
    # Only the interacting image counts: its hand shifts differ by (0, 3, 4).
    assert np.isnan(r.mrrpe_image[:2]).all()
    assert r.mrrpe_image[2] == pytest.approx(5.0, abs=1e-9)
    assert r.mrrpe == pytest.approx(5.0, abs=1e-9) and r.n_mrrpe == 1


def test_mrrpe_uses_right_depth_only_and_by_hand_value():
    f, c = 1000.0, (500.0, 400.0)
    uvd = np.zeros((1, 42, 3))
    uvd[0, 20] = (500.0, 400.0, 0.0)  # right root straight ahead at depth 1000 -> (0, 0, 1000)
    uvd[0, 41] = (1000 * 100 / 1050 + 500, 400.0, 0.0)  # left root seen at x = 100, z = 1050
    G = np.zeros((1, 42, 3))
    G[0, 20] = (0.0, 0.0, 1000.0)
    G[0, 41] = (100.0, 0.0, 1050.0)
    valid = np.ones((1, 42), bool)
    args = dict(focal=[[f, f]], princpt=[c], gt_cam=G, joint_valid=valid, hand_type=["interacting"])
    exact = mrrpe_per_image(uvd, [50.0], [[1000.0, 1050.0]], **args)
    assert exact[0] == pytest.approx(0.0, abs=1e-9)
    # d 10 mm too large: left root (100 * 1060 / 1050, 0, 1060); the left abs depth is not used.
    off = mrrpe_per_image(uvd, [60.0], [[1000.0, 9999.0]], **args)
    assert off[0] == pytest.approx(math.sqrt((1000 / 1050) ** 2 + 10**2), abs=1e-9)
    # z_rel of the roots is added too.
    uvd2 = uvd.copy()
    uvd2[0, 41, 2] = 10.0
    assert mrrpe_per_image(uvd2, [50.0], [[1000.0, 0.0]], **args)[0] == pytest.approx(off[0])
    # Not applicable: a root invalid, or not an interacting image.
    bad = valid.copy()
    bad[0, 20] = False
    assert np.isnan(mrrpe_per_image(uvd, [50.0], [[1000.0, 0.0]], **{**args, "joint_valid": bad}))
    assert np.isnan(mrrpe_per_image(uvd, [50.0], [[1000.0, 0.0]], **{**args, "hand_type": [0]}))


# ---------------------------------------------------------------- handedness


def test_handedness_all_hand_types():
    prob = np.array(
        [
            [0.9, 0.1],  # right, correct
            [0.9, 0.6],  # right, wrong (left also on)
            [0.5, 0.1],  # right, wrong (0.5 is not > 0.5)
            [0.1, 0.8],  # left, correct
            [0.6, 0.8],  # left, wrong
            [0.4, 0.5],  # left, wrong (0.5 is not > 0.5)
            [0.7, 0.8],  # interacting, correct
            [0.7, 0.3],  # interacting, wrong
            [0.9, 0.9],  # right but hand_type_valid false -> NaN
        ]
    )
    hand_type = ["right"] * 3 + ["left"] * 3 + ["interacting"] * 2 + ["right"]
    valid = [True] * 8 + [False]
    out = handedness_correct(prob, hand_type, valid)
    np.testing.assert_array_equal(out[:8], [1, 0, 0, 1, 0, 0, 1, 0])
    assert np.isnan(out[8])
    codes = handedness_correct(prob, hand_type_codes(hand_type), valid)
    np.testing.assert_array_equal(codes, out)


def test_handedness_accuracy_in_evaluate(three_images):
    r = call_evaluate(three_images)
    # right correct, left correct, interacting with p_left 0.4: wrong.
    assert r.handedness_acc == pytest.approx(2 / 3) and r.n_handedness == 3
    three_images["hand_type_valid"] = np.array([True, True, False])
    assert call_evaluate(three_images).handedness_acc == 1.0


def test_hand_type_codes_rejects_unknown():
    np.testing.assert_array_equal(hand_type_codes(["left", "interacting"]), [1, 2])
    with pytest.raises(ValueError, match="hand_type"):
        hand_type_codes(["both"])
    with pytest.raises(ValueError, match="hand_type"):
        hand_type_codes([3])


# ---------------------------------------------------------------- interaction degree


def test_interaction_bins_edges():
    iou = [np.nan, 0.0, 1e-9, 0.33, 0.3300001, 0.67, 0.6700001, 1.0]
    expected = ["single", "0", "(0,0.33]", "(0,0.33]", "(0.33,0.67]", "(0.33,0.67]"]
    expected += ["(0.67,1]", "(0.67,1]"]
    assert list(interaction_bins(iou)) == expected
    with pytest.raises(ValueError):
        interaction_bins([1.5])


def test_mpjpe_by_bin_in_evaluate(three_images):
    # Single-hand images are "single" whatever IoU they carry.
    r = call_evaluate(three_images, lr_iou=np.array([0.0, 0.9, 0.5]))
    assert list(r.interaction_bin) == ["single", "single", "(0.33,0.67]"]
    by = {b.label: b for b in r.by_bin}
    assert tuple(by) == INTERACTION_BINS
    assert by["single"].value == pytest.approx(300 / 42) and by["single"].images == 2
    assert by["(0.33,0.67]"].value == pytest.approx(160 / 42) and by["(0.33,0.67]"].images == 1
    assert by["0"].images == 0 and math.isnan(by["0"].value)
    assert by["0"].empty_joints == tuple(range(42))
    direct = mpjpe_by_bin(r.joint_errors, np.array(["single", "single", "(0.67,1]"]))
    assert direct[0].value == pytest.approx(r.mpjpe_sh)
    assert direct[4].value == pytest.approx(r.mpjpe_ih) and direct[4].images == 1


# ---------------------------------------------------------------- no in-place changes


def test_two_calls_identical_and_inputs_unchanged(three_images):
    before = {k: np.array(v, copy=True) for k, v in three_images.items()}
    first = call_evaluate(three_images)
    for k, v in three_images.items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)
    second = call_evaluate(three_images)
    for name in ("mpjpe_sh", "mpjpe_ih", "mpjpe_all", "mrrpe", "handedness_acc"):
        assert getattr(first, name) == getattr(second, name), name
    for name in ("per_joint_all", "joint_errors", "mrrpe_image", "handedness_image", "joints_cam"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name), err_msg=name)
    assert first.mrrpe == pytest.approx(5.0)
    # Read-only inputs would raise on any write.
    for v in three_images.values():
        if isinstance(v, np.ndarray):
            v.setflags(write=False)
    third = call_evaluate(three_images)
    assert third.mrrpe == first.mrrpe and third.mpjpe_all == first.mpjpe_all
    assert not first.joint_errors.flags.writeable


# ---------------------------------------------------------------- slow official re-implementation


def official_loop(d):
    """The official evaluate() as per-image, per-joint loops (with copies, no numpy tricks)."""
    n = len(d["hand_type"])
    roots = {"right": 20, "left": 41}
    sides = {"right": range(0, 21), "left": range(21, 42)}
    sh = [[] for _ in range(42)]
    ih = [[] for _ in range(42)]
    mrrpe = []
    correct = 0
    counted = 0
    for i in range(n):
        fx, fy = d["focal"][i]
        cx, cy = d["princpt"][i]
        img = [list(map(float, p)) for p in d["joints_uvd_img"][i]]
        gt = [list(map(float, p)) for p in d["gt_cam"][i]]
        valid = list(d["joint_valid"][i])
        ht = str(d["hand_type"][i])
        ar, al = d["abs_depth"][i]
        cam = []
        for j in range(42):
            u, v, z = img[j]
            z = z + (ar if j < 21 else al)
            cam.append([(u - cx) / fx * z, (v - cy) / fy * z, z])
        pred_al, gt_al = [None] * 42, [None] * 42
        for h in ("right", "left"):
            r = roots[h]
            for j in sides[h]:
                pred_al[j] = [cam[j][k] - cam[r][k] for k in range(3)]
                gt_al[j] = [gt[j][k] - gt[r][k] for k in range(3)]
        for j in range(42):
            if valid[j]:
                err = math.sqrt(sum((pred_al[j][k] - gt_al[j][k]) ** 2 for k in range(3)))
                (sh if ht in ("right", "left") else ih)[j].append(err)
        if ht == "interacting" and valid[20] and valid[41]:
            d_rel = float(d["rel_root_depth"][i])
            ul, vl, zl = img[41]
            zl = zl + ar + d_rel
            ur, vr, zr = img[20]
            zr = zr + ar
            left = [(ul - cx) / fx * zl, (vl - cy) / fy * zl, zl]
            right = [(ur - cx) / fx * zr, (vr - cy) / fy * zr, zr]
            rel = [left[k] - right[k] - (gt[41][k] - gt[20][k]) for k in range(3)]
            mrrpe.append(math.sqrt(sum(x * x for x in rel)))
        if d["hand_type_valid"][i]:
            pr, pl = d["handedness_prob"][i]
            counted += 1
            if ht == "right" and pr > 0.5 and pl < 0.5:
                correct += 1
            elif ht == "left" and pr < 0.5 and pl > 0.5:
                correct += 1
            elif ht == "interacting" and pr > 0.5 and pl > 0.5:
                correct += 1
    per_sh = [sum(x) / len(x) for x in sh]
    per_ih = [sum(x) / len(x) for x in ih]
    per_all = [sum(a + b) / len(a + b) for a, b in zip(sh, ih, strict=True)]
    return {
        "mpjpe_sh": sum(per_sh) / 42,
        "mpjpe_ih": sum(per_ih) / 42,
        "mpjpe_all": sum(per_all) / 42,
        "mrrpe": sum(mrrpe) / len(mrrpe),
        "handedness_acc": correct / counted,
        "per_joint_all": per_all,
    }


def test_matches_official_loop_on_random_data():
    rng = np.random.default_rng(5)
    n = 16
    G = random_hands(rng, n)
    hand_type = np.array(["right", "left", "interacting", "interacting"] * 4)
    valid = rng.uniform(size=(n, 42)) < 0.85
    valid[:4] = True  # every joint has a sample in every pool
    for i in range(n):  # fold own-root validity in, as the dataset layer does
        valid[i, :21] &= valid[i, 20]
        valid[i, 21:] &= valid[i, 41]
    focal = rng.uniform(900, 1300, (n, 2))
    princpt = rng.uniform(200, 400, (n, 2))
    uvd, _ = to_uvd(G + rng.normal(0, 8, G.shape), focal, princpt)
    d = {
        "joints_uvd_img": uvd,
        "rel_root_depth": G[:, 41, 2] - G[:, 20, 2] + rng.normal(0, 15, n),
        "handedness_prob": rng.uniform(size=(n, 2)),
        "abs_depth": np.stack([G[:, 20, 2], G[:, 41, 2]], 1) + rng.normal(0, 20, (n, 2)),
        "focal": focal,
        "princpt": princpt,
        "gt_cam": G,
        "joint_valid": valid,
        "hand_type": hand_type,
        "hand_type_valid": rng.uniform(size=n) < 0.8,
    }
    ref = official_loop(d)
    r = evaluate(**d)
    for name in ("mpjpe_sh", "mpjpe_ih", "mpjpe_all", "mrrpe", "handedness_acc"):
        assert getattr(r, name) == pytest.approx(ref[name], rel=1e-12), name
    np.testing.assert_allclose(r.per_joint_all, ref["per_joint_all"], rtol=1e-12)
    # Per-image reductions agree with the pooled arrays they come from.
    for i in range(n):
        errs = [e for e in r.joint_errors[i] if not math.isnan(e)]
        if errs:
            assert r.mpjpe_image[i] == pytest.approx(sum(errs) / len(errs), rel=1e-12)
        else:  # both roots invalid: nothing to average
            assert math.isnan(r.mpjpe_image[i])
    np.testing.assert_allclose(mpjpe_per_image(r.joint_errors), r.mpjpe_image)
    assert r.mpjpe_ih > 0 and r.mrrpe > 0


# ---- where the error comes from (analysis, not official) ----------------------------------------


def test_error_components_hand_computed():
    """One image, one camera (f = 500, c = (100, 80)); every joint on the optical axis row of its
    hand at a known depth. Moving joint 3's u by 10 px costs 10 x Z / f mm in the 2D part and
    nothing in the depth part; moving joint 5's depth by 7 mm on the optical axis costs 7 mm in
    the depth part and nothing in the 2D part."""
    from digit.metrics import error_components, truth_uvd

    focal, princpt = np.array([[500.0, 500.0]]), np.array([[100.0, 80.0]])
    gt = np.zeros((1, 42, 3))
    gt[0, :, 2] = 600.0 + np.arange(42)  # depths 600..641 mm, all on the optical axis
    valid = np.ones((1, 42), dtype=bool)
    truth = truth_uvd(gt, focal, princpt)
    np.testing.assert_allclose(truth[0, :, :2], np.tile([100.0, 80.0], (42, 1)))
    np.testing.assert_allclose(truth[0, 3, 2], 603.0 - 620.0)  # root of the right hand: 20
    pred = truth.copy()
    pred[0, 3, 0] += 10.0
    pred[0, 5, 2] += 7.0
    abs_depth = gt[:, [20, 41], 2]
    only_2d, only_depth = error_components(pred, abs_depth, focal, princpt, gt, valid)
    expected_2d = np.zeros(42)
    expected_2d[3] = 10.0 * 603.0 / 500.0
    expected_depth = np.zeros(42)
    expected_depth[5] = 7.0
    np.testing.assert_allclose(only_2d[0], expected_2d, atol=1e-9)
    np.testing.assert_allclose(only_depth[0], expected_depth, atol=1e-9)
    # invalid joints stay NaN, as in the official errors
    valid[0, 7] = False
    only_2d, _ = error_components(pred, abs_depth, focal, princpt, gt, valid)
    assert np.isnan(only_2d[0, 7]) and np.isfinite(only_2d[0, 6])
