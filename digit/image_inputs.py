"""Command-line image arguments: files as given, folders as their image files, sorted."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from core.errors import DigitError


def image_suffixes() -> set[str]:
    """Lower-case file suffixes PIL can open (".jpg", ".png", ...)."""
    Image.init()
    return {s.lower() for s, fmt in Image.registered_extensions().items() if fmt in Image.OPEN}


def expand_image_paths(paths: list[Path]) -> list[Path]:
    """Each file as given; each folder's image files (by suffix, not recursive), sorted by name.

    A missing path, or a folder without images, is one DigitError line naming it.
    """
    suffixes, out = image_suffixes(), []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(
                p for p in path.iterdir() if p.is_file() and p.suffix.lower() in suffixes
            )
            if not found:
                raise DigitError(f"{path}: no image files in this folder")
            out.extend(found)
        elif path.exists():
            out.append(path)
        else:
            raise DigitError(f"{path}: image not found")
    return out
