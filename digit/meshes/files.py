"""The mesh files `digit-demo --meshes` writes, and reading the MANO JSON back.

- `<stem>_right.obj`, `<stem>_left.obj`: one hand each, Wavefront OBJ, the model's own vertices
  (MANO: 778) in the image's camera frame (OpenCV: x right, y down, z forward) in metres, and
  its own face list (MANO: 1,538 triangles, 1-based indices, the model file's winding).
- `<stem>_mano.json`: the fitted parameters in InterHand2.6M's MANO_NeuralAnnot layout,
  `{capture: {frame: {"right": {"pose", "shape", "trans"} | null, "left": ... }}}` with one
  entry, capture "0" and frame "0". The world frame of these parameters is the image's camera
  frame (camrot = identity, campos = 0), so `HandModel(side, pose, shape, trans)` gives the
  camera-frame vertices in mm directly; the project's own reader (`core.interhand`: the
  `mano_hook` of `InterHandSplit`) reads the file as it reads the dataset's.

Every file is written to a temporary name beside it and renamed into place.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from core.errors import DigitError
from core.files import atomic_write_text
from core.interhand.reader import ManoFit
from core.interhand.schema import SchemaProblem, mano_hook, parse_mano_hand, read_json

MANO_JSON_CAPTURE = "0"
MANO_JSON_FRAME = "0"
OBJ_DIGITS = 9  # significant digits per coordinate (metres): 1 nm near 1 m


def obj_text(vertices_mm: np.ndarray, faces: np.ndarray, comment: str = "") -> str:
    """Wavefront OBJ of one mesh: vertices_mm (V, 3) camera mm are written in metres, faces
    (F, 3) 0-based are written 1-based; `comment` lines go first, each after '# '."""
    verts = np.asarray(vertices_mm, dtype=np.float64) / 1000.0
    faces = np.asarray(faces, dtype=np.int64)
    if verts.ndim != 2 or verts.shape[1] != 3 or faces.ndim != 2 or faces.shape[1] != 3:
        raise ValueError(
            f"expected (V, 3) vertices and (F, 3) faces, got {verts.shape}, {faces.shape}"
        )
    if faces.size and (faces.min() < 0 or faces.max() >= len(verts)):
        raise ValueError(f"face indices must lie in 0..{len(verts) - 1}")
    lines = [f"# {line}" for line in comment.splitlines()]
    lines += [f"v {x:.{OBJ_DIGITS}g} {y:.{OBJ_DIGITS}g} {z:.{OBJ_DIGITS}g}" for x, y, z in verts]
    lines += [f"f {a} {b} {c}" for a, b, c in faces + 1]
    return "\n".join(lines) + "\n"


def write_obj(path: Path, vertices_mm: np.ndarray, faces: np.ndarray, comment: str = "") -> None:
    """`obj_text` written atomically to `path`."""
    atomic_write_text(path, obj_text(vertices_mm, faces, comment))


def mano_entry(pose: np.ndarray, shape: np.ndarray, trans: np.ndarray) -> dict:
    """One hand in MANO_NeuralAnnot form: pose (48,), shape (10,), trans (3,) metres."""
    entry = {
        "pose": np.asarray(pose, dtype=np.float64).tolist(),
        "shape": np.asarray(shape, dtype=np.float64).tolist(),
        "trans": np.asarray(trans, dtype=np.float64).tolist(),
    }
    parse_mano_hand(entry)  # the reader's own check: a file we write is one it reads
    return entry


def mano_json_text(right: dict | None, left: dict | None) -> str:
    """`<stem>_mano.json`'s text: the two hands' `mano_entry` (or None) under capture "0",
    frame "0". Floats are written with Python's repr, which reads back to the same double."""
    document = {MANO_JSON_CAPTURE: {MANO_JSON_FRAME: {"right": right, "left": left}}}
    return json.dumps(document, indent=1, allow_nan=False) + "\n"


def write_mano_json(path: Path, right: dict | None, left: dict | None) -> None:
    """`mano_json_text` written atomically to `path`."""
    atomic_write_text(path, mano_json_text(right, left))


def read_mano_json(path: str | Path) -> tuple[ManoFit | None, ManoFit | None]:
    """The (right, left) fits of a one-frame MANO_NeuralAnnot file such as `<stem>_mano.json`,
    through the reader's own `mano_hook` and `parse_mano_hand`; None for a null hand.

    A file that is not one frame of that layout is one DigitError line naming it.
    """
    path = Path(path)
    document = read_json(path, mano_hook)
    try:
        (frames,) = document.values() if isinstance(document, dict) else (None,)
        (frame,) = frames.values() if isinstance(frames, dict) else (None,)
        hands = [frame["right"], frame["left"]] if isinstance(frame, dict) else None
    except (ValueError, KeyError):
        hands = None
    if hands is None:
        raise DigitError(
            f"{path}: expected one frame of MANO_NeuralAnnot: "
            '{capture: {frame: {"right": ..., "left": ...}}}'
        )
    fits = []
    for side, hand in zip(("right", "left"), hands, strict=True):
        if hand is not None and type(hand) is not tuple:  # the hook leaves bad entries as dicts
            try:
                hand = parse_mano_hand(hand)
            except SchemaProblem as problem:
                raise DigitError(f"{path}: {side}: {problem}") from None
        fits.append(None if hand is None else ManoFit(*hand))
    return fits[0], fits[1]
