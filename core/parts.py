"""The 33-class part definition and per-vertex / per-face part labels.

Class ids: 0 background, 1..16 right-hand parts, 17..32 left-hand parts (left = right + 16).
A part is one of MANO's 16 skinning joints (0 palm, 1-3 index, 4-6 middle, 7-9 pinky, 10-12 ring,
13-15 thumb; proximal to distal), so right id = 1 + MANO joint and left id = 17 + MANO joint.
"""

from __future__ import annotations

import colorsys
import json
from dataclasses import asdict, dataclass

import numpy as np

NUM_PARTS = 16
NUM_CLASSES = 1 + 2 * NUM_PARTS
RIGHT_OFFSET = 1
LEFT_OFFSET = 1 + NUM_PARTS

PART_NAMES: tuple[str, ...] = (
    "palm",
    "index1",
    "index2",
    "index3",
    "middle1",
    "middle2",
    "middle3",
    "pinky1",
    "pinky2",
    "pinky3",
    "ring1",
    "ring2",
    "ring3",
    "thumb1",
    "thumb2",
    "thumb3",
)

# DIGIT's per-vertex JSON value -> MANO joint (reference/mano.md). DIGIT's mask channel for the
# right hand is value + 1, for the left value + 17.
DIGIT_TO_MANO_PART: tuple[int, ...] = (10, 2, 7, 4, 6, 12, 9, 13, 0, 14, 1, 3, 15, 8, 5, 11)

# One hue per finger; the palm is a neutral tone. Segments darken from proximal to distal.
_FINGER_HUE = {"index": 0.00, "middle": 0.13, "ring": 0.33, "pinky": 0.58, "thumb": 0.78}
_SEGMENT_VALUE = (1.0, 0.78, 0.56)


@dataclass(frozen=True)
class ClassInfo:
    """One mask class: `id` 0..32, `name` (e.g. `right_index1`), `hand` ("right" | "left" | None),
    `mano_joint` (0..15, None for background), `rgb` (three ints 0..255)."""

    id: int
    name: str
    hand: str | None
    mano_joint: int | None
    rgb: tuple[int, int, int]


def _part_rgb(part: int, hand: str) -> tuple[int, int, int]:
    """Right parts are saturated; the left version of a part has the same hue, paler (related
    but distinguishable side by side)."""
    saturation = 0.85 if hand == "right" else 0.38
    if part == 0:
        value = 0.62 if hand == "right" else 0.86
        r, g, b = colorsys.hsv_to_rgb(0.08, 0.25 if hand == "right" else 0.10, value)
    else:
        finger = PART_NAMES[part][:-1]
        segment = int(PART_NAMES[part][-1]) - 1
        r, g, b = colorsys.hsv_to_rgb(_FINGER_HUE[finger], saturation, _SEGMENT_VALUE[segment])
    return (round(r * 255), round(g * 255), round(b * 255))


def class_table() -> tuple[ClassInfo, ...]:
    """The 33 classes in id order (background first, then the right hand's 16, then the left's)."""
    table = [ClassInfo(0, "background", None, None, (0, 0, 0))]
    for hand, offset in (("right", RIGHT_OFFSET), ("left", LEFT_OFFSET)):
        for part, part_name in enumerate(PART_NAMES):
            rgb = _part_rgb(part, hand)
            table.append(ClassInfo(offset + part, f"{hand}_{part_name}", hand, part, rgb))
    return tuple(table)


def class_table_json() -> str:
    """The class table as the JSON list stored in `assets/textures/classes.json` and in every
    mask cache's `classes` attribute."""
    rows = [json.dumps(asdict(c) | {"rgb": list(c.rgb)}) for c in class_table()]
    return "[\n " + ",\n ".join(rows) + "\n]"


def palette() -> np.ndarray:
    """(33, 3) uint8 RGB colour per class id."""
    return np.array([c.rgb for c in class_table()], dtype=np.uint8)


def swap_hands(labels: np.ndarray) -> np.ndarray:
    """Class ids after a horizontal flip: 1..16 <-> 17..32, background unchanged. Any shape."""
    labels = np.asarray(labels)
    out = labels.copy()
    right = (labels >= RIGHT_OFFSET) & (labels < LEFT_OFFSET)
    left = labels >= LEFT_OFFSET
    out[right] += NUM_PARTS
    out[left] -= NUM_PARTS
    return out
