"""The demo's per-image hands box: `--bbox` parsing, the whole-image default, the on-image check."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.boxes import overlaps_image
from core.errors import DigitError


def parse_bbox(text: str) -> np.ndarray:
    """`--bbox x,y,w,h` (pixels) -> (4,) float64; DigitError for anything else."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4 or not np.all(np.isfinite(values)) or min(values[2:]) <= 0:
        raise DigitError(f"--bbox: expected x,y,w,h with w, h > 0 (pixels), got {text!r}")
    return np.asarray(values, dtype=np.float64)


def check_box_on_image(path: Path, bbox: np.ndarray | None, hw: tuple[int, int]) -> None:
    """DigitError unless `bbox` (4,) [x, y, w, h] (None: the whole image) shares an area with
    the image `path` of `hw` = (height, width) pixels; a box partly outside is fine."""
    if bbox is not None and not overlaps_image(bbox, *hw):
        x, y, w, h = (float(v) for v in bbox)
        raise DigitError(
            f"{path}: --bbox {x:g},{y:g},{w:g},{h:g} lies outside the {hw[1]}x{hw[0]}-pixel image"
        )


def whole_image_bbox(height: int, width: int) -> np.ndarray:
    """The whole image as a bbox: pixel centres at integers, so it spans -0.5 .. W - 0.5."""
    return np.array([-0.5, -0.5, width, height], dtype=np.float64)
