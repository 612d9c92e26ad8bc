"""Pictures for people: the class legend, mask colouring and overlays, joint skeletons."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from core.joints import HAND_PARENTS
from core.parts import NUM_PARTS, class_table, palette

_FINGER_RGB = ((230, 60, 60), (240, 170, 30), (60, 190, 60), (40, 150, 230), (170, 80, 220))


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType support for the default font
        return ImageFont.load_default()


def colorize_mask(mask: np.ndarray) -> np.ndarray:
    """Class ids (H, W) uint8 -> RGB (H, W, 3) uint8 with the class palette."""
    return palette()[np.asarray(mask, dtype=np.int64)]


def overlay_mask(image: np.ndarray, mask: np.ndarray, alpha: float = 0.6) -> np.ndarray:
    """Blend the coloured mask over an RGB image (H, W, 3) uint8 wherever it is not background."""
    image = np.asarray(image, dtype=np.float32)
    colour = colorize_mask(mask).astype(np.float32)
    fg = (np.asarray(mask) > 0)[..., None]
    out = np.where(fg, (1 - alpha) * image + alpha * colour, image)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def legend_image(swatch: int = 22) -> Image.Image:
    """A picture of the 33 classes: colour swatch, id and name, right and left side by side."""
    table = class_table()
    font = _font(14)
    col_w, row_h = 210, swatch + 6
    rows = NUM_PARTS + 1
    img = Image.new("RGB", (2 * col_w, rows * row_h + 8), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    cells = [(0, 0, table[0])]
    cells += [(0, 1 + i, table[1 + i]) for i in range(NUM_PARTS)]
    cells += [(1, 1 + i, table[1 + NUM_PARTS + i]) for i in range(NUM_PARTS)]
    for col, row, cls in cells:
        x, y = 6 + col * col_w, 4 + row * row_h
        draw.rectangle([x, y, x + swatch, y + swatch], fill=cls.rgb, outline=(80, 80, 80))
        draw.text((x + swatch + 6, y + 3), f"{cls.id:2d} {cls.name}", fill=(0, 0, 0), font=font)
    return img


def draw_skeleton(
    image: Image.Image,
    joints_uv: np.ndarray,
    valid: np.ndarray | None = None,
    radius: int = 3,
) -> Image.Image:
    """Draw InterHand2.6M hands on a copy of `image`.

    joints_uv: (42, 2) or (21, 2) pixel coordinates (u right, v down, pixel centres at integers).
    valid: (J,) bool; invalid joints and the bones touching them are skipped. Each finger has its
    own colour; the left hand is drawn with a white rim so the hands can be told apart.
    """
    out = image.copy()
    draw = ImageDraw.Draw(out)
    joints_uv = np.asarray(joints_uv, dtype=np.float64)
    n_joints = len(joints_uv)
    valid = np.ones(n_joints, bool) if valid is None else np.asarray(valid, bool)
    for hand in range(n_joints // 21):
        base = 21 * hand
        rim = (255, 255, 255) if hand == 1 else (0, 0, 0)
        for k, parent in enumerate(HAND_PARENTS):
            if parent < 0 or not (valid[base + k] and valid[base + parent]):
                continue
            a, b = joints_uv[base + k], joints_uv[base + parent]
            draw.line([tuple(a), tuple(b)], fill=_FINGER_RGB[min(k // 4, 4)], width=2)
        for k in range(21):
            if not valid[base + k]:
                continue
            u, v = joints_uv[base + k]
            fill = _FINGER_RGB[k // 4] if k < 20 else (255, 255, 255)
            draw.ellipse([u - radius, v - radius, u + radius, v + radius], fill=fill, outline=rim)
    return out
