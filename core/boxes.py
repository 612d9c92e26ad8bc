"""InterHand2.6M's box rules: the annotated bbox and the processed square crop.

Pixels follow `core.camera`: u right, v down, pixel centres at integers.
"""

from __future__ import annotations

import numpy as np

BBOX_SCALE = 1.2  # annotated bbox: tight box of the projected valid joints, x1.2
CROP_SCALE = 1.25  # training/eval crop: bbox made square, then x1.25


def bbox_from_joints(uv: np.ndarray, valid: np.ndarray, scale: float = BBOX_SCALE) -> np.ndarray:
    """The annotated bbox rule: tight box of the valid joints, scaled about its centre.

    uv (..., J, 2) pixels; valid (..., J) bool. Returns (..., 4) [x, y, w, h] float64;
    NaN where no joint is valid.
    """
    uv = np.asarray(uv, dtype=np.float64)
    valid = np.asarray(valid, dtype=bool)[..., None]
    with np.errstate(invalid="ignore"):
        lo = np.where(valid, uv, np.inf).min(axis=-2)
        hi = np.where(valid, uv, -np.inf).max(axis=-2)
    none = ~valid.any(axis=-2)
    lo, hi = np.where(none, np.nan, lo), np.where(none, np.nan, hi)
    centre, size = (lo + hi) / 2, (hi - lo) * scale
    return np.concatenate([centre - size / 2, size], axis=-1)


def crop_box_from_bbox(bbox: np.ndarray, scale: float = CROP_SCALE) -> np.ndarray:
    """The processed crop: bbox made square about its centre (larger side kept), then x`scale`.

    bbox (..., 4) [x, y, w, h] pixels. Returns (..., 4) [x, y, s, s] float64.
    """
    bbox = np.asarray(bbox, dtype=np.float64)
    centre = bbox[..., :2] + bbox[..., 2:] / 2
    side = np.maximum(bbox[..., 2], bbox[..., 3])[..., None] * scale
    return np.concatenate([centre - side / 2, side, side], axis=-1)


def overlaps_image(bbox: np.ndarray, height: int, width: int) -> bool:
    """Whether the box [x, y, w, h] (w, h > 0) shares an area with an image of `height` x
    `width` pixels, which spans -0.5 .. width - 0.5 (pixel centres at integers). A box partly
    outside the image overlaps it; one that only touches its border does not."""
    x, y, w, h = (float(v) for v in np.asarray(bbox, dtype=np.float64))
    if not (w > 0 and h > 0):
        return False
    across = min(x + w, width - 0.5) - max(x, -0.5)
    down = min(y + h, height - 0.5) - max(y, -0.5)
    return across > 0 and down > 0
