"""DIGIT's input crop from detected hands, by the annotations' rule (`core.boxes`): each hand's
tight box x1.2, the union of those boxes, then the official square x1.25."""

from __future__ import annotations

import numpy as np

from core.boxes import BBOX_SCALE, crop_box_from_bbox


def scale_box(box: np.ndarray, scale: float = BBOX_SCALE) -> np.ndarray:
    """A box (..., 4) [x, y, w, h] scaled about its centre (for a detector's tight box)."""
    box = np.asarray(box, dtype=np.float64)
    centre, size = box[..., :2] + box[..., 2:] / 2, box[..., 2:] * scale
    return np.concatenate([centre - size / 2, size], axis=-1)


def union_box(boxes: np.ndarray) -> np.ndarray:
    """The smallest box (4,) [x, y, w, h] holding all of boxes (N, 4) [x, y, w, h], N >= 1."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    lo, hi = boxes[:, :2].min(0), (boxes[:, :2] + boxes[:, 2:]).max(0)
    return np.concatenate([lo, hi - lo])


def crop_from_hand_boxes(hand_boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """hand_boxes (N, 4) [x, y, w, h], each already x1.2 (`core.boxes.bbox_from_joints` of its
    landmarks, or `scale_box` of a tight box). Returns (bbox (4,), crop (4,) [x, y, s, s]):
    their union, as the annotated bbox, and DIGIT's square crop of it."""
    bbox = union_box(hand_boxes)
    return bbox, crop_box_from_bbox(bbox)
