"""The synthetic hand's palm and nails (`render.synthetic_data.skin`): on the side anatomy says.

The independent reference is the hand's own joints: for a right hand, index knuckle minus little
knuckle (towards the thumb) crossed with wrist-to-middle-knuckle (towards the fingers) points out
of the palm (look at your right palm, fingers up: the thumb is on your right); the left hand is
its mirror image, so the same cross product points out of the back.
"""

import numpy as np
import pytest

from core.assets import SYNTHETIC_MANO_DIR
from render.synthetic_data import images as img
from render.synthetic_data import skin
from render.synthetic_data.generate import _scene_for
from render.synthetic_mano.pose_prior import pose_from_angles


@pytest.fixture(scope="module")
def scene():
    return _scene_for(str(SYNTHETIC_MANO_DIR))


def _flat(scene, side):
    verts, joints = scene.forward(
        side, np.zeros((1, 3)), pose_from_angles(np.zeros((1, 15, 3)), side), np.zeros(10)
    )
    return verts[0], joints[0]


def _palm_normal_from_joints(joints, side):
    # IH order within a hand: 20 wrist, 7 index knuckle, 11 middle knuckle, 19 little knuckle
    thumbward = joints[7] - joints[19]
    distal = joints[11] - joints[20]
    n = np.cross(thumbward, distal)
    n = n if side == "right" else -n
    return n / np.linalg.norm(n)


def test_smoothstep_golden_values():
    x = np.array([-1.0, 0.0, 0.25, 0.5, 0.75, 1.0, 2.0])
    # 3t^2 - 2t^3 at t = 0.25, 0.5, 0.75: 0.15625, 0.5, 0.84375
    np.testing.assert_allclose(
        skin.smoothstep(0.0, 1.0, x), [0, 0, 0.15625, 0.5, 0.84375, 1, 1], atol=1e-12
    )


@pytest.mark.parametrize("side", ["right", "left"])
def test_palm_is_on_the_palm_side_and_nails_on_the_back(scene, side):
    verts, joints = _flat(scene, side)
    detail = scene.detail[side]
    palm, nail = detail.palm[: len(verts)], detail.nail[: len(verts)]
    out_of_palm = _palm_normal_from_joints(joints, side)
    height = (verts - joints[20]) @ out_of_palm  # + towards the palm side
    part = np.argmax(scene.model.skinning_weights(side), axis=1)
    on_palm = part == 0
    # the palm's surface splits into a volar half (light) and a dorsal half (skin)
    front = on_palm & (height > np.median(height[on_palm]) + 5.0)
    back = on_palm & (height < np.median(height[on_palm]) - 5.0)
    assert front.sum() > 20 and back.sum() > 20
    assert palm[front].mean() > 0.8
    assert palm[back].mean() < 0.1
    # five nails, each on a distal phalanx, on its back, towards the tip
    for joint, ih_base, ih_tip in skin.DISTAL_SEGMENTS:
        on_nail = nail > 0.5
        this = on_nail & (part == joint)
        assert this.sum() >= 3, f"no nail on the digit of MANO joint {joint}"
        base, tip = joints[ih_base], joints[ih_tip]
        centre = verts[this].mean(axis=0)
        along = (centre - base) @ (tip - base) / np.sum((tip - base) ** 2)
        assert 0.4 < along < 1.0
        if joint != 15:  # the long fingers lie in the palm's plane when flat
            assert (centre - (base + tip) / 2) @ out_of_palm < -2.0
    assert np.all(nail[~np.isin(part, [j for j, _, _ in skin.DISTAL_SEGMENTS])] == 0.0)
    assert np.all(palm + nail <= 1.0 + 1e-12)


def test_left_detail_mirrors_the_right(scene):
    # the left model is the right one mirrored vertex for vertex, so the weights agree
    np.testing.assert_allclose(scene.detail["left"].palm, scene.detail["right"].palm, atol=0.02)
    np.testing.assert_allclose(scene.detail["left"].nail, scene.detail["right"].nail, atol=0.02)


def test_face_albedo_mixes_vertex_colours():
    n = np.zeros(3)
    detail = skin.HandDetail(
        palm=np.array([0.0, 1.0, 0.0]), nail=np.array([0.0, 0.0, 1.0]), crease=n, fold=n
    )
    skin_rgb = np.array([0.4, 0.3, 0.2])
    colours = skin.detail_colours(skin_rgb)
    np.testing.assert_allclose(colours.palm, skin_rgb + 0.85 * (skin.PALM_TONE - skin_rgb))
    np.testing.assert_allclose(colours.back, skin_rgb)
    got = skin.face_albedo(detail, np.array([[0, 1, 2], [0, 0, 0]]), skin_rgb)
    np.testing.assert_allclose(got[0], (skin_rgb + colours.palm + colours.nail) / 3)
    np.testing.assert_allclose(got[1], skin_rgb)


def test_creases_and_folds_darken_by_their_factors():
    one, zero = np.ones(2), np.zeros(2)
    rgb = np.array([0.5, 0.4, 0.3])
    on_crease = skin.HandDetail(palm=one, nail=zero, crease=np.array([1.0, 0.5]), fold=zero)
    palm = skin.detail_colours(rgb).palm
    got = skin.vertex_albedo(on_crease, rgb)
    np.testing.assert_allclose(got[0], palm * skin.CREASE_DARKEN)
    np.testing.assert_allclose(got[1], palm * (1 - 0.5 * (1 - skin.CREASE_DARKEN)))
    on_fold = skin.HandDetail(palm=zero, nail=zero, crease=zero, fold=one)
    np.testing.assert_allclose(skin.vertex_albedo(on_fold, rgb)[0], rgb * skin.FOLD_DARKEN)
    gloss = skin.face_gloss(
        skin.HandDetail(zero, np.array([0.0, 1.0]), zero, zero), np.eye(2, dtype=int)
    )
    np.testing.assert_allclose(gloss, [1.0 + (skin.NAIL_GLOSS - 1.0) * 0.5] * 2)


def test_every_skin_tone_has_a_clearly_lighter_palm():
    """Generator v4's cue: what a grey camera records of the palm is at least 1.25 x the back,
    from the lightest to the darkest skin the subjects draw."""
    rng = np.random.default_rng(0)
    for rgb in [img.skin_albedo(rng) for _ in range(500)]:
        c = skin.detail_colours(rgb)
        assert skin.luminance(c.palm) >= 1.25 * skin.luminance(c.back), rgb
        assert np.all(c.palm <= 1.0) and np.all(c.nail <= 1.0)


@pytest.mark.parametrize("side", ["right", "left"])
def test_creases_on_the_palm_side_folds_on_the_back(scene, side):
    verts, joints = _flat(scene, side)
    d = scene.detail[side]
    n = len(verts)
    crease, fold, palm = d.crease[:n], d.fold[:n], d.palm[:n]
    assert (crease > 0.5).sum() >= 20 and (fold > 0.5).sum() >= 20
    # creases lie on volar skin, folds on dorsal skin, never both on one vertex
    assert palm[crease > 0.5].mean() > 0.7
    assert palm[fold > 0.5].mean() < 0.3
    assert np.all(np.minimum(crease, fold) < 0.2)
    # a flexion crease crosses each long finger's middle joint (PIP: IH 6, 10, 14, 18)
    for pip in (6, 10, 14, 18):
        axis = (joints[pip - 1] - joints[pip]) / np.linalg.norm(joints[pip - 1] - joints[pip])
        rel = verts - joints[pip]
        along = rel @ axis
        radial = np.linalg.norm(rel - along[:, None] * axis, axis=1)
        ring = (np.abs(along) < 2.5) & (radial < 12.0)
        assert ring.sum() >= 4
        assert crease[ring].max() > 0.5, f"no crease at IH joint {pip}"
        assert fold[ring].max() > 0.5, f"no fold at IH joint {pip}"
