"""A contact sheet of dataset images with their annotated joints projected on top."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from core.drawing import draw_skeleton
from core.errors import DigitError
from core.image_io import load_rgb
from core.interhand.reader import InterHandSplit


def preview_sheet(split: InterHandSplit, indices: list[int], columns: int = 4) -> Image.Image:
    """Images `indices` of `split`, each with its valid joints (projected from joints_world with
    the image's camera) and its annotated bbox, tiled `columns` wide at 256 px per tile."""
    tile = 256
    rows = (len(indices) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * tile, rows * (tile + 16)), (255, 255, 255))
    for k, i in enumerate(indices):
        rec = split[i]
        image = Image.fromarray(load_rgb(rec.image_path))
        im = draw_skeleton(image, rec.joints_img, rec.joint_valid)
        x, y, w, h = rec.bbox
        ImageDraw.Draw(im).rectangle([x, y, x + w, y + h], outline=(255, 255, 0))
        scale = tile / max(im.size)
        im = im.resize((round(im.size[0] * scale), round(im.size[1] * scale)), Image.BILINEAR)
        ox, oy = (k % columns) * tile, (k // columns) * (tile + 16)
        sheet.paste(im, (ox + (tile - im.size[0]) // 2, oy + 16))
        label = f"{rec.image_id} {rec.hand_type} cam{rec.camera_name}"
        ImageDraw.Draw(sheet).text((ox + 4, oy + 2), label, fill=(0, 0, 0))
    return sheet


def spread_indices(n_items: int, count: int, seed: int = 0) -> list[int]:
    """`count` distinct indices in 0..n_items-1 spread over the split, reproducible."""
    if count < 1:
        raise DigitError(f"--count: must be at least 1, got {count}")
    rng = np.random.default_rng(seed)
    return sorted(rng.choice(n_items, size=min(count, n_items), replace=False).tolist())
