"""Per-vertex and per-face part labels of a hand mesh (the part texture the renderer draws).

A vertex's part is a MANO joint 0..15 (`core.parts`); a face's mask class adds the hand's offset.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from core.errors import DigitError
from core.parts import DIGIT_TO_MANO_PART, LEFT_OFFSET, NUM_PARTS, RIGHT_OFFSET


def vertex_parts_from_weights(weights: np.ndarray, sealed: bool = True) -> np.ndarray:
    """Part (MANO joint 0..15) of each vertex = argmax of its 16 skinning weights.

    weights: (V, 16). Returns (V+1,) int64 when `sealed` (the seal vertex closing the wrist is
    palm), else (V,). Ties go to the lower joint (numpy's argmax).
    """
    parts = np.argmax(np.asarray(weights), axis=1).astype(np.int64)
    if sealed:
        parts = np.append(parts, 0)
    return parts


def vertex_parts_from_digit_json(path: str | Path, n_vertices_sealed: int) -> np.ndarray:
    """Per-vertex parts from DIGIT's published JSON (a list of values 0..15 in DIGIT's order, one
    per vertex of the sealed mesh, e.g. 779 for MANO), remapped to MANO joints.

    Returns (n_vertices_sealed,) int64 MANO joint ids. Bad files raise DigitError.
    """
    path = Path(path)
    try:
        values = json.loads(path.read_text())
    except FileNotFoundError:
        raise DigitError(f"{path}: part-label file not found") from None
    except json.JSONDecodeError as exc:
        raise DigitError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if not isinstance(values, list) or not all(isinstance(v, int) for v in values):
        raise DigitError(f"{path}: expected a JSON list of integers (one part id per vertex)")
    if len(values) != n_vertices_sealed:
        raise DigitError(
            f"{path}: has {len(values)} entries, the sealed mesh has {n_vertices_sealed} vertices"
        )
    arr = np.asarray(values, dtype=np.int64)
    if arr.min() < 0 or arr.max() >= NUM_PARTS:
        raise DigitError(f"{path}: part ids must lie in 0..15, found {arr.min()}..{arr.max()}")
    return np.asarray(DIGIT_TO_MANO_PART, dtype=np.int64)[arr]


def face_parts(faces: np.ndarray, vertex_parts: np.ndarray) -> np.ndarray:
    """Part of each face: the label held by at least two of its three vertices; with three
    different labels, the label of the face's lowest-index vertex.

    faces: (F, 3) int; vertex_parts: (V,) int. Returns (F,) int64.
    """
    faces = np.asarray(faces, dtype=np.int64)
    labels = np.asarray(vertex_parts, dtype=np.int64)[faces]  # (F, 3)
    a, b, c = labels[:, 0], labels[:, 1], labels[:, 2]
    lowest = labels[np.arange(len(faces)), np.argmin(faces, axis=1)]
    return np.where((a == b) | (a == c), a, np.where(b == c, b, lowest))


def face_classes(faces: np.ndarray, vertex_parts: np.ndarray, hand: str) -> np.ndarray:
    """Mask class id of each face of one hand's mesh: (F,) uint8, 1..16 right or 17..32 left."""
    if hand not in ("right", "left"):
        raise ValueError(f"hand must be 'right' or 'left', got {hand!r}")
    offset = RIGHT_OFFSET if hand == "right" else LEFT_OFFSET
    return (face_parts(faces, vertex_parts) + offset).astype(np.uint8)
