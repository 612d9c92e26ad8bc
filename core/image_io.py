"""Reading images: one function, one error style, for the renderer's pictures and the network.

Any JPEG / PNG / TIFF Pillow opens becomes RGB: 8-bit modes through Pillow's own conversion,
16- and 32-bit integer images scaled by their type's maximum (65535 for 16 bits), float images
taken as 0..1 (clipped; NaN refused). Alpha (RGBA, grey+alpha, palette transparency) is
composited over black, the dark background the network was trained on. EXIF orientation is
applied. The size is checked from the header, before any pixel is decoded: at least
`MIN_SIDE` pixels a side and at most `MAX_PIXELS` pixels.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from core.errors import DigitError

MIN_SIDE = 2
MAX_PIXELS = 100_000_000  # 100 Mpx: 300 MB as RGB bytes; larger is no photograph of hands

_EXIF_ORIENTATION = 0x0112
_ALPHA_MODES = ("LA", "La", "PA", "RGBA", "RGBa")
_TIFF_BITS, _TIFF_SAMPLE_FORMAT = 258, 339


def load_rgb(path: str | Path) -> np.ndarray:
    """An image file as RGB (H, W, 3) uint8 (a new, writable array): the image's 0..1 range
    mapped to 0..255 (rounded), as the module doc describes.

    A missing, empty, unreadable, too small or too large file is one DigitError line naming it.
    """
    path = Path(path)
    if not path.is_file():
        raise DigitError(f"{path}: image not found")
    if path.stat().st_size == 0:
        raise DigitError(f"{path}: empty file, not an image")
    try:
        with warnings.catch_warnings():
            # our own cap below decides; Pillow's bomb check only raises for far larger images
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                check_size(path, img.width, img.height)
                img.load()
                return _to_rgb8(path, _upright(img))
    except Image.DecompressionBombError:
        raise DigitError(
            f"{path}: image too large (over {MAX_PIXELS:,} pixels), refused before decoding"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        # OSError: truncated or damaged data; ValueError / SyntaxError: malformed headers
        raise DigitError(
            f"{path}: cannot read image ({type(exc).__name__}: {_first(exc)})"
        ) from None


def check_size(path: Path, width: int, height: int) -> None:
    """DigitError unless the image is between `MIN_SIDE` a side and `MAX_PIXELS` pixels."""
    if min(width, height) < MIN_SIDE:
        raise DigitError(f"{path}: image is {width}x{height} pixels, too small to use")
    if width * height > MAX_PIXELS:
        raise DigitError(
            f"{path}: image is {width}x{height} pixels, over the {MAX_PIXELS:,}-pixel limit; "
            "refused before decoding"
        )


def _first(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:120] if lines else "unknown error"


def _upright(img: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation tag says (unchanged without one)."""
    if img.getexif().get(_EXIF_ORIENTATION, 1) in (1, None):
        return img
    return ImageOps.exif_transpose(img)


def _to_rgb8(path: Path, img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode == "RGB":
        return np.array(img, dtype=np.uint8)
    if mode.startswith("I") or mode == "F":
        unit = _unit_grey(path, img)
        grey = np.rint(unit * 255.0).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=-1)
    if mode == "P" and "transparency" in img.info:
        img, mode = img.convert("RGBA"), "RGBA"
    if mode in _ALPHA_MODES:
        rgba = np.asarray(img.convert("RGBA"), dtype=np.uint16)
        over_black = (rgba[..., :3] * rgba[..., 3:] + 127) // 255  # round(c * a / 255)
        return over_black.astype(np.uint8)
    return np.array(img.convert("RGB"), dtype=np.uint8)


def _unit_grey(path: Path, img: Image.Image) -> np.ndarray:
    """(H, W) float64 in [0, 1] of a single-channel integer ("I", "I;16*") or float ("F")
    image."""
    values = np.asarray(img)
    if img.mode == "F":
        values = values.astype(np.float64)
        if np.isnan(values).any():
            raise DigitError(f"{path}: float image holds NaN pixels")
        return np.clip(values, 0.0, 1.0)
    top = _integer_max(img, values.dtype)
    return np.clip(values.astype(np.float64) / top, 0.0, 1.0)


def _integer_max(img: Image.Image, dtype: np.dtype) -> float:
    """The largest value of the file's integer type: Pillow widens some (a 16-bit TIFF may come
    as 32-bit "I"), so a TIFF's own BitsPerSample / SampleFormat tags win where present."""
    tags = getattr(img, "tag_v2", None)
    if tags is not None and _TIFF_BITS in tags:
        bits = tags[_TIFF_BITS]
        bits = int(bits[0] if isinstance(bits, tuple) else bits)
        fmt = tags.get(_TIFF_SAMPLE_FORMAT, 1)
        signed = int(fmt[0] if isinstance(fmt, tuple) else fmt) == 2
        return float(2 ** (bits - 1) - 1 if signed else 2**bits - 1)
    return float(np.iinfo(dtype).max)
