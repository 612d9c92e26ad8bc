"""Picture files the commands write (`show`, `preview`, `hand-gallery`): the name is checked
before any work, and the file is written atomically in the format its suffix names."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from core.errors import DigitError
from core.files import atomic_path, check_output_dir

# Pillow also registers writers that only raise (HDF5, FITS, ... stubs): pictures are these.
PICTURE_FORMATS = ("PNG", "JPEG", "WEBP", "TIFF", "BMP")


def picture_format(path: str | Path) -> str | None:
    """The Pillow format that writes a file named `path` ("PNG" for x.png), None if none."""
    Image.init()
    fmt = Image.registered_extensions().get(Path(path).suffix.lower())
    return fmt if fmt in PICTURE_FORMATS and fmt in Image.SAVE else None


def check_picture_path(path: str | Path, what: str = "--out") -> Path:
    """`path` if a picture can be written there: not a folder, a suffix Pillow writes (.png,
    .jpg, ...), its folder writable or creatable. One DigitError line naming `what` if not."""
    path = Path(path)
    if path.is_dir():
        raise DigitError(f"{what} {path}: is a folder; name a picture file, e.g. {path / 'x.png'}")
    if picture_format(path) is None:
        kind = f"{path.suffix!r}" if path.suffix else "no suffix"
        raise DigitError(
            f"{what} {path}: {kind} is not a picture type that can be written; end the name "
            "with .png or .jpg"
        )
    check_output_dir(path.parent, what)
    return path


def save_picture(image: Image.Image, path: str | Path) -> Path:
    """Write `image` to `path` (created folders, atomic rename) in the format of its suffix."""
    path = check_picture_path(path)
    fmt = picture_format(path)
    if fmt == "JPEG" and image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        image.save(tmp, format=fmt)
    return path
