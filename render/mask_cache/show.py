"""`digit-render show`: one cached mask next to its image, with the legend and the joints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from core.drawing import draw_skeleton, legend_image, overlay_mask
from core.errors import DigitError
from core.image_io import load_rgb
from core.interhand.reader import InterHandSplit
from core.mask_cache import MaskCache, match_split
from core.picture_files import check_picture_path, save_picture

_HEADER = 34


def show_picture(cache: MaskCache, index: int, data: InterHandSplit) -> Image.Image:
    """[image with projected joints | mask overlay | legend] of cache row `index`, with a header.

    The image is found in `data` by the cache's image_id (DigitError if absent).
    """
    if not 0 <= index < len(cache):
        raise DigitError(f"--index {index}: out of range (the cache holds {len(cache)} images)")
    image_id = int(cache.image_id[index])
    row = int(data.find([image_id])[0])
    if row < 0:
        raise DigitError(f"{data.files.data}: image id {image_id} not found")
    rec = data[row]
    image = Image.fromarray(load_rgb(rec.image_path))
    mask = cache.mask(index)
    if mask.shape != (image.height, image.width):
        raise DigitError(
            f"{rec.image_path}: image is {image.height}x{image.width}, cached mask {mask.shape}"
        )
    joints = draw_skeleton(image, rec.joints_img, rec.joint_valid)
    overlay = draw_skeleton(
        Image.fromarray(overlay_mask(np.asarray(image), mask)), rec.joints_img, rec.joint_valid
    )
    legend = legend_image()
    width = joints.width + overlay.width + legend.width
    height = _HEADER + max(joints.height, legend.height)
    sheet = Image.new("RGB", (width, height), (255, 255, 255))
    sheet.paste(joints, (0, _HEADER))
    sheet.paste(overlay, (joints.width, _HEADER))
    sheet.paste(legend, (joints.width + overlay.width, _HEADER))
    f = cache.file
    hands = f["hands"][index]
    fit = f["fit_error_mm"][index]
    iou = float(f["lr_iou"][index])
    lines = (
        f"#{index}  image {image_id}  {rec.file_name}  {rec.hand_type}",
        f"rendered right={bool(hands[0])} left={bool(hands[1])}  valid={bool(f['valid'][index])}  "
        f"fit error {fit[0]:.2f}/{fit[1]:.2f} mm  lr_iou {iou:.3f}",
    )
    draw = ImageDraw.Draw(sheet)
    for k, line in enumerate(lines):
        draw.text((6, 3 + 15 * k), line, fill=(0, 0, 0))
    return sheet


def show_mask(file: Path, index: int, out: Path, data_root: Path | None = None) -> Path:
    """Draw cache row `index` of `file` into the picture `out` (.png, .jpg, checked first); the
    data root defaults to the one recorded in the file."""
    out = check_picture_path(out)
    with MaskCache(file) as cache:
        root = Path(data_root) if data_root is not None else Path(cache.attrs.data_root)
        if not root.is_dir():
            raise DigitError(f"{root}: data root not found (pass --data-root)")
        data = InterHandSplit.from_root(root, cache.attrs.split)
        match_split(cache, data, root)  # the masks must be this data's (one line if not)
        picture = show_picture(cache, index, data)
    return save_picture(picture, out)
