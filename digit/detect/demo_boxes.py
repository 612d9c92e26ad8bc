"""`digit-demo` without --bbox: each image's hands box from the detector, and what to record."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from core.errors import DigitError
from core.image_io import load_rgb
from core.progress import progress
from digit.detect.crop import crop_from_hand_boxes
from digit.detect.detector import DetectedHand, HandDetector


def hand_record(hand: DetectedHand) -> dict:
    """One detected hand in predictions.json."""
    return {
        "box": hand.box.tolist(),
        "score": hand.score,
        "presence": hand.presence,
        "side": hand.side,
        "right_prob": hand.right_prob,
        "landmarks_uv": hand.landmarks.tolist(),
    }


def detect_hand_boxes(
    images: list[Path], say: Callable[[str], None], detector: HandDetector | None = None
) -> tuple[list[Path], list[np.ndarray], list[dict]]:
    """The images where hands were found, each one's hands bbox (4,) (the union of the
    detected hands' x1.2 boxes; the demo makes the square x1.25 crop of it), and each one's
    detection record. An image without hands is one `say` line and is left out; DigitError
    when no image has any."""
    detector = detector or HandDetector()
    kept, boxes, records = [], [], []
    with progress(len(images), "detecting hands") as bar:
        for path in images:
            hands, found = detector(Image.fromarray(load_rgb(path)))
            bar.advance()
            if not hands:
                say(f"{path}: no hands found, skipped")
                continue
            bbox, _ = crop_from_hand_boxes(np.stack([h.box for h in hands]))
            kept.append(path)
            boxes.append(bbox)
            records.append(
                {
                    "hands_found": found,
                    "hands_used": len(hands),
                    "detected_hands": [hand_record(h) for h in hands],
                }
            )
    if not kept:
        raise DigitError(f"no hands found in any of the {len(images)} images")
    return kept, boxes, records
