"""Every hand of a dataset can be seen: no black or washed-out pictures.

`python -m render.synthetic_data.visibility [--data-root DIR]` (`make check-default`) reads
every image of every split (default: the synthetic default, created first if absent) and checks
that it is not black: the picture's bright pixels (99th percentile of luma) must reach
`MIN_PICTURE` and those of the annotated hand box (95th percentile) `MIN_BOX`, in 0..255 units.
(Dark skin before a dark background is a real picture and passes; an exposure of a few percent
does not.) Generator v3 made 1 % of its pictures nearly black on purpose; v4 makes none, and this
is the check over the whole default.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from core.errors import DigitError
from core.interhand.reader import InterHandSplit
from core.progress import progress
from core.splits import SPLITS

MIN_PICTURE = 60.0
MIN_BOX = 35.0


def luma(picture: np.ndarray) -> np.ndarray:
    """(H, W) Rec. 601 luma of an (H, W, 3) uint8 picture, float64 0..255."""
    return picture.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def bright_levels(picture: np.ndarray, box: np.ndarray) -> tuple[float, float]:
    """(99th percentile of the picture's luma, 95th percentile inside the [x, y, w, h] box) of an
    (H, W, 3) uint8 picture (the box clipped to the picture, whole pixels it touches; 0 if
    nothing is left)."""
    y = luma(picture)
    h, w = y.shape
    x0, y0 = max(int(np.floor(box[0])), 0), max(int(np.floor(box[1])), 0)
    x1, y1 = min(int(np.ceil(box[0] + box[2])) + 1, w), min(int(np.ceil(box[1] + box[3])) + 1, h)
    patch = y[y0:y1, x0:x1]
    box_p95 = float(np.percentile(patch, 95)) if patch.size else 0.0
    return float(np.percentile(y, 99)), box_p95


def hidden_hands(root: Path, split: str, show_progress: bool = True) -> list[str]:
    """One line per image of `split` that is black, or black where its hand is."""
    data = InterHandSplit.from_root(root, split)
    out = []
    with progress(len(data), f"visibility {split}", enabled=show_progress) as bar:
        for i in range(len(data)):
            rec = data[i]
            whole, box = bright_levels(np.asarray(Image.open(rec.image_path)), rec.bbox)
            if whole < MIN_PICTURE or box < MIN_BOX:
                out.append(f"{rec.image_path}: luma p99 {whole:.0f}, hand box p95 {box:.0f}")
            bar.advance(1)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="visibility", description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default=None, help="default: the synthetic default")
    args = ap.parse_args(argv)
    from render.synthetic_data.default import prepare_data_root

    try:
        root = prepare_data_root(args.data_root)
        problems = [line for split in SPLITS for line in hidden_hands(root, split)]
    except DigitError as exc:
        print(f"visibility: {exc}", file=sys.stderr)
        return 1
    for line in problems:
        print(line)
    print(f"visibility: {len(problems)} image(s) with a hand that cannot be seen, in {root}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
