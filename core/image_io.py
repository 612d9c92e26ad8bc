"""Reading images: one function, one error style, for the renderer's pictures and the network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from core.errors import DigitError


def load_rgb(path: str | Path) -> np.ndarray:
    """An image file as RGB (H, W, 3) uint8 (a new, writable array).

    A missing or unreadable file is one DigitError line naming it.
    """
    path = Path(path)
    if not path.is_file():
        raise DigitError(f"{path}: image not found")
    try:
        with Image.open(path) as img:
            return np.array(img.convert("RGB"), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise DigitError(f"{path}: cannot read image ({type(exc).__name__})") from None
