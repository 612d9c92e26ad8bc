"""render.synthetic_data.mirror_pairs: a right hand and its depth mirror, nothing else changed."""

import numpy as np

from core.boxes import bbox_from_joints, crop_box_from_bbox
from render.synthetic_data.mirror_pairs import mirror_pairs, mirror_scene


def test_mirror_scene_golden_values():
    pts = np.array([[1.0, 2.0, 900.0], [-5.0, 0.5, 1000.0]])
    got = mirror_scene(pts, 950.0)
    np.testing.assert_array_equal(got, [[1.0, 2.0, 1000.0], [-5.0, 0.5, 900.0]])
    np.testing.assert_array_equal(mirror_scene(got, 950.0), pts)
    # a reflection reverses handedness: the triple product of three edges changes sign
    a, b, c = np.eye(3) + 0.1
    m = mirror_scene(np.stack([a, b, c]), 0.3)
    assert np.sign(np.linalg.det(np.stack([a, b, c]))) == -np.sign(np.linalg.det(m))


def test_pairs_differ_only_where_the_hand_is():
    pairs = mirror_pairs(3, seed=5)
    again = mirror_pairs(3, seed=5)
    for p, q in zip(pairs, again, strict=True):
        np.testing.assert_array_equal(p.right, q.right)  # the same on every run
        np.testing.assert_array_equal(p.left, q.left)
        assert p.right.shape == p.left.shape
        # the box is the official crop of the right hand's joints
        np.testing.assert_allclose(
            p.crop_box, crop_box_from_bbox(bbox_from_joints(p.joints_px[0], np.ones(21, bool)))
        )
        x, y, s, _ = p.crop_box
        h, w = p.right.shape[:2]
        # away from the hand and its forearm the two pictures share background, light and
        # sensor noise exactly: some corner block (whole JPEG blocks) is identical
        corners = [(0, 0), (0, w - 16), (h - 16, 0), (h - 16, w - 16)]
        assert any(
            np.array_equal(p.right[r : r + 16, c : c + 16], p.left[r : r + 16, c : c + 16])
            for r, c in corners
        )
        # inside the hand's box, the pictures differ: the other side of the hand faces us
        r0, c0 = int(max(y, 0)), int(max(x, 0))
        inner = (slice(r0, int(min(y + s, h))), slice(c0, int(min(x + s, w))))
        diff = np.abs(p.right[inner].astype(int) - p.left[inner].astype(int)).mean()
        assert diff > 3.0
        # the joints of the two hands agree up to perspective: within a fifth of the crop
        assert np.median(np.linalg.norm(p.joints_px[0] - p.joints_px[1], axis=1)) < s / 5
