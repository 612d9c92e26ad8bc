"""InterHand2.6M's joint layout, skeleton and hand types: the one table every module imports.

42 joints: right hand 0..20, left hand 21..41 (left = right + 21). Within a hand (skeleton.txt
order): 0-3 thumb tip..thumb1, 4-7 index, 8-11 middle, 12-15 ring, 16-19 pinky, 20 wrist (the
root). The parent of joint k is k + 1 inside a finger and the wrist for each finger's base
(3, 7, 11, 15, 19). Hand types: 0 right, 1 left, 2 interacting; as (right, left) presence bits
[1, 0], [0, 1], [1, 1].
"""

from __future__ import annotations

import numpy as np

HAND_JOINTS = 21
NUM_JOINTS = 2 * HAND_JOINTS
RIGHT_ROOT = 20
LEFT_ROOT = RIGHT_ROOT + HAND_JOINTS
ROOT_JOINTS = (RIGHT_ROOT, LEFT_ROOT)
RIGHT = slice(0, HAND_JOINTS)
LEFT = slice(HAND_JOINTS, NUM_JOINTS)
SIDES = ("right", "left")

_FINGERS = ("thumb", "index", "middle", "ring", "pinky")
# One hand's joint names in skeleton.txt order (tip = 4, base = 1).
HAND_JOINT_NAMES: tuple[str, ...] = (
    *(f"{finger}{k}" for finger in _FINGERS for k in (4, 3, 2, 1)),
    "wrist",
)
# The 42 names with skeleton.txt's side prefix: r_thumb4 .. r_wrist, l_thumb4 .. l_wrist.
JOINT_NAMES: tuple[str, ...] = tuple(
    f"{side}_{name}" for side in ("r", "l") for name in HAND_JOINT_NAMES
)

_FINGER_BASES = (3, 7, 11, 15, 19)
# Parent of each joint within one hand (21,), -1 for the wrist.
HAND_PARENTS: tuple[int, ...] = (
    *(RIGHT_ROOT if k in _FINGER_BASES else k + 1 for k in range(HAND_JOINTS - 1)),
    -1,
)
# Parent of each of the 42 joints, -1 for both roots.
PARENTS: tuple[int, ...] = HAND_PARENTS + tuple(
    -1 if p < 0 else p + HAND_JOINTS for p in HAND_PARENTS
)
# (child, parent) for the 20 right-hand bones, then the 20 left-hand ones.
BONES: tuple[tuple[int, int], ...] = tuple((k, p) for k, p in enumerate(PARENTS) if p >= 0)
# The root each joint is expressed relative to: 20 for right joints, 41 for left ones.
ROOT_OF_JOINT: tuple[int, ...] = (RIGHT_ROOT,) * HAND_JOINTS + (LEFT_ROOT,) * HAND_JOINTS

HAND_TYPES: tuple[str, ...] = ("right", "left", "interacting")
HAND_TYPE_CODE: dict[str, int] = {name: code for code, name in enumerate(HAND_TYPES)}
_HAND_TYPE_PAIRS = np.array([[1, 0], [0, 1], [1, 1]], dtype=np.int64)


def with_root_validity(valid):
    """The official rule: a joint counts only where its own hand's root does.

    valid (..., 42) bool, numpy array or torch tensor. Returns (..., 42) of the same kind.
    """
    return valid & valid[..., list(ROOT_OF_JOINT)]


def hand_type_pair(code: np.ndarray) -> np.ndarray:
    """Hand-type code (...,) (0 right, 1 left, 2 interacting) -> (..., 2) int64 (right, left)
    presence bits: right [1, 0], left [0, 1], interacting [1, 1]."""
    return _HAND_TYPE_PAIRS[np.asarray(code)]


def skeleton_text() -> str:
    """annotations/skeleton.txt: a comment line, then `name index parent` for the 42 joints."""
    lines = ["# joint_name joint_id parent_id"]
    lines += [
        f"{name} {k} {parent}"
        for k, (name, parent) in enumerate(zip(JOINT_NAMES, PARENTS, strict=True))
    ]
    return "\n".join(lines) + "\n"
