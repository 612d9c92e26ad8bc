"""The pinhole intrinsics the demo lifts 2.5D predictions with: `--focal`, `--princpt`, or the
stated defaults (or, with --split, the dataset's camera).

Defaults, for a photo whose camera is unknown:
- principal point: the image centre ((W - 1) / 2, (H - 1) / 2), pixel centres at integers
  (`core.camera`'s convention);
- focal: `FOCAL_PER_LONG_SIDE` x the image's long side, for both fx and fy. InterHand2.6M's
  cameras, whose images the released network learned its relative depths from, have a focal of
  about 1261-1274 px on 512-pixel-long images (ratio 2.46-2.49; the synthetic stand-in draws
  1150-1350 px, 2.25-2.64), so 2.48 treats a photo as taken by such a camera. A phone's main
  camera is wider (about 0.8 x the long side): pass `--focal` when it is known.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.camera import intrinsics
from core.errors import DigitError
from core.plausible import FOCAL_PER_LONG_SIDE as FOCAL_RANGE
from core.plausible import warn_implausible

FOCAL_PER_LONG_SIDE = 2.48
FROM_OPTION = ("--focal", "--princpt")
DEFAULT = "default"
DATASET = "dataset camera"


@dataclass(frozen=True)
class Intrinsics:
    """focal (2,) (fx, fy) and princpt (2,) (cx, cy) in pixels, and where each came from
    ("--focal" / "--princpt", "default" or "dataset camera")."""

    focal: np.ndarray
    princpt: np.ndarray
    focal_source: str
    princpt_source: str

    @property
    def K(self) -> np.ndarray:
        """(3, 3) intrinsics matrix."""
        return intrinsics(self.focal, self.princpt)

    def record(self) -> dict:
        """The JSON entry."""
        return {
            "focal": self.focal.tolist(),
            "focal_source": self.focal_source,
            "princpt": self.princpt.tolist(),
            "princpt_source": self.princpt_source,
        }


def _numbers(text: str) -> list[float] | None:
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        return None
    return values if all(np.isfinite(values)) else None


def parse_focal(text: str) -> np.ndarray:
    """`--focal F` or `FX,FY` (pixels, > 0) -> (2,) float64 (fx, fy); DigitError otherwise."""
    values = _numbers(text)
    if values is None or len(values) not in (1, 2) or min(values) <= 0:
        raise DigitError(f"--focal: expected F or FX,FY in pixels, each > 0, got {text!r}")
    return np.asarray(values * (3 - len(values)), dtype=np.float64)


def parse_princpt(text: str) -> np.ndarray:
    """`--princpt X,Y` (pixels) -> (2,) float64 (cx, cy); DigitError otherwise."""
    values = _numbers(text)
    if values is None or len(values) != 2:
        raise DigitError(f"--princpt: expected X,Y in pixels, got {text!r}")
    return np.asarray(values, dtype=np.float64)


def default_focal(height: int, width: int) -> np.ndarray:
    """(2,) (fx, fy) = FOCAL_PER_LONG_SIDE x the long side, pixels."""
    return np.full(2, FOCAL_PER_LONG_SIDE * max(height, width), dtype=np.float64)


def default_princpt(height: int, width: int) -> np.ndarray:
    """(2,) the image centre ((W - 1) / 2, (H - 1) / 2), pixel centres at integers."""
    return np.array([(width - 1) / 2, (height - 1) / 2], dtype=np.float64)


def image_intrinsics(
    hw: tuple[int, int],
    focal: np.ndarray | None = None,
    princpt: np.ndarray | None = None,
    camera: tuple[np.ndarray, np.ndarray] | None = None,
) -> Intrinsics:
    """One image's intrinsics: the options where given, else the dataset camera's (focal,
    princpt) where given, else the defaults for an image of `hw` = (height, width)."""

    def pick(given, from_camera, default, option):
        if given is not None:
            return np.asarray(given, dtype=np.float64), option
        if from_camera is not None:
            return np.asarray(from_camera, dtype=np.float64), DATASET
        return default(*hw), DEFAULT

    cam_focal, cam_princpt = camera if camera is not None else (None, None)
    f, f_src = pick(focal, cam_focal, default_focal, FROM_OPTION[0])
    c, c_src = pick(princpt, cam_princpt, default_princpt, FROM_OPTION[1])
    return Intrinsics(focal=f, princpt=c, focal_source=f_src, princpt_source=c_src)


def warn_implausible_options(
    focal: np.ndarray | None, princpt: np.ndarray | None, sizes: list[tuple[Path, tuple[int, int]]]
) -> None:
    """One `ImplausibleValue` warning each for a `--focal` outside `FOCAL_RANGE` and a
    `--princpt` outside the picture, over the images and their (height, width) `sizes`."""
    if focal is not None:
        ratios = [
            (path, float(np.min(focal)) / max(hw), float(np.max(focal)) / max(hw))
            for path, hw in sizes
        ]
        odd = [(p, lo, hi) for p, lo, hi in ratios if FOCAL_RANGE.outside([lo, hi]).any()]
        if odd:
            path, lo, hi = odd[0]
            ratio = lo if FOCAL_RANGE.outside(lo) else hi
            warn_implausible(
                f"--focal {','.join(f'{f:g}' for f in np.unique(focal))} px is {ratio:.3g} x the "
                f"long side of {path.name} ({len(odd)} of {len(sizes)} images), outside the "
                f"plausible {FOCAL_RANGE.describe()}; the joints are placed with it as given"
            )
    if princpt is not None:
        x, y = (float(v) for v in princpt)
        odd = [(p, hw) for p, hw in sizes if not (0 <= x <= hw[1] - 1 and 0 <= y <= hw[0] - 1)]
        if odd:
            path, (h, w) = odd[0]
            warn_implausible(
                f"--princpt {x:g},{y:g} lies outside {path.name} ({w}x{h} px; {len(odd)} of "
                f"{len(sizes)} images): a camera's principal point is inside its picture, near "
                "the centre; the joints are placed with it as given"
            )
