"""From a palm detection to 21 hand landmarks: MediaPipe's rotated hand rectangle, the crop
fed to the landmark model, and its outputs mapped back to the image.

Pixels here are continuous with pixel corners at integers (PIL's convention for resampling);
`to_centre_pixels` converts to the project's (pixel centres at integers, `core.camera`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

LANDMARK_INPUT = 224
# MediaPipe hand graph: palm box -> rectangle rotated so that wrist -> middle MCP points up,
# shifted half a box towards the fingers, made square on its long side and enlarged x2.6.
WRIST, MIDDLE_MCP = 0, 2
RECT_SCALE = 2.6
RECT_SHIFT_Y = -0.5
# ... and from 21 landmarks (a second, tighter pass): the same rotation (wrist -> middle MCP),
# their box in that frame, shifted 0.1 towards the fingers, square, x2.
LM_WRIST, LM_MIDDLE_MCP = 0, 9
LM_RECT_SCALE = 2.0
LM_RECT_SHIFT_Y = -0.1


@dataclass(frozen=True)
class Rect:
    """A rotated square in image pixels: centre (cx, cy), side `size`, rotation `angle` (rad)."""

    cx: float
    cy: float
    size: float
    angle: float


def upright_angle(wrist: np.ndarray, mcp: np.ndarray) -> float:
    """The rotation (rad, in -pi..pi) that makes wrist -> middle MCP point up in the crop."""
    angle = np.pi / 2 - np.arctan2(-(mcp[1] - wrist[1]), mcp[0] - wrist[0])
    return float((angle + np.pi) % (2 * np.pi) - np.pi)


def _shifted_square(cx, cy, w, h, angle, shift_y, scale) -> Rect:
    """MediaPipe's RectTransformation: shift by shift_y x h along the rotated y axis, square
    on the long side, scale."""
    cx, cy = cx - h * shift_y * np.sin(angle), cy + h * shift_y * np.cos(angle)
    return Rect(float(cx), float(cy), float(max(w, h) * scale), float(angle))


def palm_rect(box: np.ndarray, keypoints: np.ndarray) -> Rect:
    """The landmark model's input rectangle for one palm.

    box (4,) [x0, y0, x1, y1] and keypoints (7, 2) in image pixels (the image's own scale on
    both axes, not normalised, so that angles are true).
    """
    angle = upright_angle(keypoints[WRIST], keypoints[MIDDLE_MCP])
    w, h = box[2] - box[0], box[3] - box[1]
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    return _shifted_square(cx, cy, w, h, angle, RECT_SHIFT_Y, RECT_SCALE)


def landmark_rect(uv: np.ndarray) -> Rect:
    """The landmark model's input rectangle from a first pass's landmarks uv (21, 2) pixels."""
    angle = upright_angle(uv[LM_WRIST], uv[LM_MIDDLE_MCP])
    c, s = np.cos(angle), np.sin(angle)
    # landmarks in the rotated frame (inverse rotation), their box, its centre back in the image
    local = np.stack([uv[:, 0] * c + uv[:, 1] * s, -uv[:, 0] * s + uv[:, 1] * c], -1)
    lo, hi = local.min(0), local.max(0)
    mid = (lo + hi) / 2
    cx, cy = mid[0] * c - mid[1] * s, mid[0] * s + mid[1] * c
    w, h = hi - lo
    return _shifted_square(cx, cy, w, h, angle, LM_RECT_SHIFT_Y, LM_RECT_SCALE)


def rect_to_image(rect: Rect, uv: np.ndarray) -> np.ndarray:
    """Points in the rectangle's frame, uv (..., 2) in 0..1 (0.5 = centre), to image pixels."""
    c, s = np.cos(rect.angle), np.sin(rect.angle)
    d = (np.asarray(uv, dtype=np.float64) - 0.5) * rect.size
    return np.stack(
        [rect.cx + d[..., 0] * c - d[..., 1] * s, rect.cy + d[..., 0] * s + d[..., 1] * c], -1
    )


def crop_rect(image: Image.Image, rect: Rect, size: int = LANDMARK_INPUT) -> np.ndarray:
    """The rotated square resampled to (size, size, 3) float32 RGB in 0..1, black outside."""
    c, s = np.cos(rect.angle), np.sin(rect.angle)
    k = rect.size / size
    # PIL's AFFINE maps each output point (x, y) to the input point (a x + b y + t, ...)
    ox, oy = rect_to_image(rect, np.zeros(2))
    coeffs = (k * c, -k * s, ox, k * s, k * c, oy)
    out = image.transform((size, size), Image.Transform.AFFINE, coeffs, Image.Resampling.BILINEAR)
    return np.asarray(out, dtype=np.float32) / 255.0


def to_centre_pixels(uv: np.ndarray) -> np.ndarray:
    """Continuous (corner-at-integer) pixels to pixel-centre-at-integer pixels."""
    return np.asarray(uv) - 0.5
