"""Hand detection without the models: the crop rule on hand-made boxes, anchors, NMS, the
rotated rectangles, and which hands are kept."""

import numpy as np
import pytest

from digit.detect import palm
from digit.detect.crop import crop_from_hand_boxes, scale_box, union_box
from digit.detect.detector import DetectedHand, merge_duplicates, select_hands, windows
from digit.detect.landmarks import landmark_rect, palm_rect, rect_to_image


def test_crop_from_two_hand_boxes_by_hand():
    # right hand x 10..50, y 20..60; left hand x 40..100, y 30..50 (already x1.2)
    bbox, crop = crop_from_hand_boxes(np.array([[10, 20, 40, 40], [40, 30, 60, 20]]))
    np.testing.assert_allclose(bbox, [10, 20, 90, 40])
    # square on the long side (90) about the centre (55, 40), then x1.25 = 112.5
    np.testing.assert_allclose(crop, [55 - 56.25, 40 - 56.25, 112.5, 112.5])


def test_crop_from_one_hand_box_and_a_tall_box():
    bbox, crop = crop_from_hand_boxes(np.array([[0, 0, 10, 30]]))
    np.testing.assert_allclose(bbox, [0, 0, 10, 30])
    np.testing.assert_allclose(crop, [5 - 18.75, 15 - 18.75, 37.5, 37.5])


def test_scale_box_and_union():
    np.testing.assert_allclose(scale_box([10, 10, 10, 20]), [9, 8, 12, 24])
    np.testing.assert_allclose(union_box([[0, 0, 1, 1], [5, -2, 1, 1]]), [0, -2, 6, 3])


def test_anchors_match_mediapipe_layout():
    a = palm.ssd_anchors()
    assert a.shape == (2016, 2)
    # first layer: 24 x 24 cells, 2 anchors each, row-major; then 12 x 12 cells, 6 each
    np.testing.assert_allclose(a[:4], [[0.5 / 24] * 2] * 2 + [[1.5 / 24, 0.5 / 24]] * 2)
    np.testing.assert_allclose(a[1152:1158], [[0.5 / 12, 0.5 / 12]] * 6)
    np.testing.assert_allclose(a[-1], [11.5 / 12, 11.5 / 12])


def test_decode_one_anchor_by_hand():
    anchors = np.array([[0.5, 0.25]])
    raw = np.zeros((1, 18))
    raw[0, :4] = [19.2, 0, 38.4, 19.2]  # +0.1 in x; w 0.2, h 0.1 (192 px input)
    raw[0, 4:6] = [-19.2, 19.2]  # keypoint 0 at (0.4, 0.35)
    boxes, kps, scores = palm.decode(raw, np.array([0.0]), anchors, min_score=0.5)
    np.testing.assert_allclose(boxes, [[0.5, 0.2, 0.7, 0.3]])
    np.testing.assert_allclose(kps[0, 0], [0.4, 0.35])
    np.testing.assert_allclose(scores, [0.5])
    assert palm.decode(raw, np.array([-0.1]), anchors, min_score=0.5)[2].size == 0


def test_weighted_nms_averages_overlaps_by_score():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [50, 50, 60, 60.0]])
    kps = np.zeros((3, 7, 2))
    kps[1] += 4
    b, k, s = palm.weighted_nms(boxes, kps, np.array([0.9, 0.3, 0.5]))
    # first two overlap (IoU 9/11): weights 0.9, 0.3 -> x0 = 0.3 / 1.2 = 0.25
    np.testing.assert_allclose(b, [[0.25, 0, 10.25, 10], [50, 50, 60, 60]])
    np.testing.assert_allclose(k[0], np.full((7, 2), 1.0))
    np.testing.assert_allclose(s, [0.9, 0.5])


def test_palm_rect_upright_and_rotated():
    box = np.array([0, 0, 10, 10.0])
    kp = np.zeros((7, 2))
    kp[0], kp[2] = [5, 10], [5, 0]  # wrist below the middle MCP: already upright
    r = palm_rect(box, kp)
    assert r.angle == pytest.approx(0)
    # shifted half the box height towards the fingers, square x2.6
    assert (r.cx, r.cy, r.size) == pytest.approx((5, 0, 26))
    kp[0], kp[2] = [0, 5], [10, 5]  # fingers point right: 90 degrees clockwise in the image
    r = palm_rect(box, kp)
    assert r.angle == pytest.approx(np.pi / 2)
    assert (r.cx, r.cy) == pytest.approx((10, 5))
    # the rectangle's top centre (0.5, 0) lies towards the fingers (+x)
    np.testing.assert_allclose(rect_to_image(r, np.array([0.5, 0.0])), [23, 5])


def test_landmark_rect_of_an_upright_hand():
    uv = np.zeros((21, 2))
    uv[:, 0] = np.linspace(0, 20, 21)
    uv[:, 1] = 40 - 2 * np.arange(21)
    uv[0], uv[9] = [10, 40], [10, 20]  # wrist below the middle MCP
    uv[1] = [0, 38]  # x spans 0..20 again
    r = landmark_rect(uv)
    assert r.angle == pytest.approx(0)
    # box x 0..20, y 0..40 -> centre (10, 20), shifted up 0.1 x 40, long side 40 x2
    assert (r.cx, r.cy, r.size) == pytest.approx((10, 16, 80))


def hand(box, side="right", score=0.9, presence=1.0, offset=0.0) -> DetectedHand:
    lm = np.random.default_rng(0).uniform(0, 1, (21, 2)) * box[2:] + box[:2] + offset
    return DetectedHand(lm, np.asarray(box, float), score, presence, float(side == "right"))


def test_overlapping_hands_of_two_sides_are_both_kept():
    # interlaced fingers: boxes overlap by IoU 0.6, landmarks differ
    a = hand([34, 174, 185, 132], "right", 0.6)
    b = hand([87, 165, 116, 143], "left", 0.9, offset=30)
    kept = merge_duplicates([a, b])
    assert [h.side for h in kept] == ["left", "right"]
    # the same hand twice (same side, IoU > 0.5) is one
    c = hand([90, 160, 116, 143], "left", 0.5, offset=30)
    assert [h.score for h in merge_duplicates([a, b, c])] == [0.9, 0.6]


def test_two_near_identical_detections_are_merged_into_one_hand():
    """One hand seen twice (e.g. from two search windows), landmarks 2 px apart and the side
    unsure: one hand remains, its landmarks the confidence-weighted mean (weights 0.8 x 1.0 and
    0.4 x 0.5, i.e. 0.8 : 0.2), its box the x1.2 tight box of those, and the crop is that one
    hand's, not the union of the two boxes."""
    rng = np.random.default_rng(1)
    lm = rng.uniform(0.0, 50.0, (21, 2)) + np.array([100.0, 80.0])
    lm[0], lm[1] = [100.0, 80.0], [150.0, 130.0]  # the tight box: 100..150 x 80..130
    first = DetectedHand(lm, np.array([95.0, 75.0, 60.0, 60.0]), 0.8, 1.0, 0.55)
    second = DetectedHand(lm + 2.0, np.array([97.0, 77.0, 60.0, 60.0]), 0.4, 0.5, 0.45)
    (merged,) = merge_duplicates([second, first])
    np.testing.assert_allclose(merged.landmarks, lm + 0.4)  # 0.8 * 0 + 0.2 * 2
    np.testing.assert_allclose(merged.box, [95.4, 75.4, 60.0, 60.0])  # 125.4 -+ 30
    assert merged.right_prob == pytest.approx(0.8 * 0.55 + 0.2 * 0.45)
    assert (merged.score, merged.presence) == (0.8, 1.0)
    bbox, crop = crop_from_hand_boxes(np.stack([merged.box]))
    np.testing.assert_allclose(bbox, merged.box)
    np.testing.assert_allclose(crop, [125.4 - 37.5, 105.4 - 37.5, 75.0, 75.0])
    # a hand alone is kept as it is
    assert merge_duplicates([first]) == [first]


def test_two_most_confident_prefer_one_of_each_side():
    r1, r2, l1 = hand([0, 0, 9, 9]), hand([100, 0, 9, 9]), hand([0, 100, 9, 9], "left", 0.5)
    assert select_hands([r1, r2, l1]) == [r1, l1]
    assert select_hands([r1, r2]) == [r1, r2]
    assert select_hands([r1, r2, l1], max_hands=1) == [r1]
    assert select_hands([]) == []


def test_windows_cover_the_image():
    w = windows(512, 334)
    np.testing.assert_allclose(w[0], [0, -89, 512])  # the letterboxed whole image, centred
    # 3/4 of 512 = 384 is taller than 334: one row of two; 256: three rows of three
    np.testing.assert_allclose(w[1:3], [[0, 0, 384], [128, 0, 384]])
    np.testing.assert_allclose(w[3:], [[x, y, 256] for y in (0, 39, 78) for x in (0, 128, 256)])
