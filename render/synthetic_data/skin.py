"""Where a synthetic hand is palm and where it is nail: per-vertex weights, and their colours.

Real hands are lighter on the palm than on the back (palmar skin carries little melanin) and have
nails on the back of the fingertips. Those are the cues that tell a right hand from the mirror
image of a left one: a silhouette alone cannot (a right palm seen from the front and a left hand
seen from the back have the same outline). A hand of one uniform colour therefore leaves
handedness unlearnable, so the generator paints both cues.

The weights come from the model itself, so they follow any hand in MANO's format:
- volar direction of each vertex: where it moves when every joint flexes a little (positive
  flexion curls a digit towards the palm, `pose_prior.FingerPoseLimits`); palm vertices (skinned
  to the wrist joint) take the mean volar direction of the proximal finger segments (the palm
  normal);
- palm weight: how much the rest-pose surface normal faces that volar direction;
- nail weight: the back of the distal half of each distal phalanx (vertices skinned to a distal
  joint, facing away from the volar direction).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from render.synthetic_data.images import vertex_normals

# MANO's joints at the base of each distal phalanx, with the InterHand2.6M indices (within one
# hand's 21) of that joint and of the fingertip: thumb, index, middle, ring, little.
DISTAL_SEGMENTS = ((15, 1, 0), (3, 5, 4), (6, 9, 8), (12, 13, 12), (9, 17, 16))
PROXIMAL_JOINTS = (1, 4, 7, 10)  # MANO: index, middle, little, ring MCP segments
# InterHand2.6M joints (within one hand's 21) where a digit bends, each with the next joint
# towards the tip: thumb MCP and IP; MCP, PIP and DIP of the index, middle, ring and little
# fingers. Flexion creases cross the volar side there, knuckle folds the dorsal side.
BENDING_JOINTS = (
    (2, 1), (1, 0),
    (7, 6), (6, 5), (5, 4),
    (11, 10), (10, 9), (9, 8),
    (15, 14), (14, 13), (13, 12),
    (19, 18), (18, 17), (17, 16),
)  # fmt: skip
KNUCKLES = (2, 7, 11, 15, 19)  # MCP joints: the volar crease sits a quarter of a bone further on
# The main palm lines (distal and proximal transverse, thenar), as polylines in the palm's own
# coordinates: s across the palm, 0 on the middle finger's axis, +0.5 at the index knuckle and
# -0.5 at the little one (the thumb side is +); t along it, 0 at the wrist, 1 at the middle knuckle.
PALM_LINES = (
    ((-0.62, 0.74), (-0.3, 0.78), (0.0, 0.82), (0.22, 0.9)),
    ((0.56, 0.7), (0.25, 0.64), (-0.1, 0.6), (-0.45, 0.54)),
    ((0.56, 0.7), (0.36, 0.56), (0.26, 0.38), (0.2, 0.18), (0.16, 0.04)),
)
FLAT_FACING = 0.3  # |normal . volar| above which a vertex is clearly volar or dorsal

# v4 colours (see `detail_colours`): the palm and sole carry little melanin, so a palm is
# lighter than the back of the same hand at every skin tone, most of all on dark skin.
PALM_TONE = np.array([1.0, 0.88, 0.84])
NAIL_TONE = np.array([0.98, 0.9, 0.88])
PALM_MIX = 0.85
NAIL_MIX = 0.85
CREASE_DARKEN = 0.55  # a crease line's albedo relative to the skin around it
FOLD_DARKEN = 0.72
NAIL_GLOSS = 4.0  # nails shine: their highlight is this much stronger than skin's
FLEX_RAD = 0.2  # the small curl that gives each vertex's volar direction


def smoothstep(lo: float, hi: float, x: np.ndarray) -> np.ndarray:
    """0 below lo, 1 above hi, a smooth cubic between. Any shape."""
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def luminance(rgb: np.ndarray) -> np.ndarray:
    """Rec. 601 luma of (..., 3) linear values (what a grey camera records)."""
    return rgb @ np.array([0.299, 0.587, 0.114])


@dataclass(frozen=True)
class HandDetail:
    """Per-vertex weights of one hand model side, all (V,) in 0..1: `palm` (volar skin), `nail`
    (nail plate), `crease` (palm lines and the digits' flexion creases, on the volar side) and
    `fold` (knuckle folds, on the dorsal side). palm + nail <= 1."""

    palm: np.ndarray
    nail: np.ndarray
    crease: np.ndarray
    fold: np.ndarray

    def padded(self, extra: int) -> HandDetail:
        """The weights with `extra` plain-skin vertices appended (a wrist seal)."""
        pad = np.zeros(extra)
        return HandDetail(
            *(np.append(w, pad) for w in (self.palm, self.nail, self.crease, self.fold))
        )


def _segment_distance(points: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance of (N, 2) points to the segment a-b (2,)."""
    ab = b - a
    t = np.clip((points - a) @ ab / (ab @ ab), 0.0, 1.0)
    return np.linalg.norm(points - (a + t[:, None] * ab), axis=1)


def _palm_lines(verts: np.ndarray, ih_joints: np.ndarray, width_mm: float) -> np.ndarray:
    """(V,) closeness of each vertex to the nearest palm line (1 on it, Gaussian of `width_mm`)."""
    wrist = ih_joints[20]
    along = ih_joints[11] - wrist
    length = np.linalg.norm(along)
    along /= length
    across = ih_joints[7] - ih_joints[19]  # towards the thumb
    across = across - (across @ along) * along
    width = np.linalg.norm(across)
    across /= width
    rel = verts - wrist
    mm = np.stack([rel @ across, rel @ along], axis=1)  # (V, 2) mm in the palm's plane
    scale = np.array([width, length])
    best = np.full(len(verts), np.inf)
    for line in PALM_LINES:
        pts = np.asarray(line) * scale
        for a, b in itertools.pairwise(pts):
            best = np.minimum(best, _segment_distance(mm, a, b))
    return np.exp(-0.5 * (best / width_mm) ** 2)


def _joint_bands(
    verts: np.ndarray, ih_joints: np.ndarray, offsets: tuple[float, float], width_mm: float
) -> np.ndarray:
    """(V,) closeness of each vertex to the bands that cross the digits at their bending joints:
    the band of joint j lies `offsets[0]` (MCP: `offsets[1]`) of the next bone's length beyond j,
    Gaussian of `width_mm` along the bone, limited to the digit (within 14 mm of its axis)."""
    out = np.zeros(len(verts))
    for joint, nxt in BENDING_JOINTS:
        base, tip = ih_joints[joint], ih_joints[nxt]
        axis = tip - base
        bone = np.linalg.norm(axis)
        axis /= bone
        shift = offsets[1] if joint in KNUCKLES else offsets[0]
        rel = verts - (base + shift * bone * axis)
        along = rel @ axis
        radial = np.linalg.norm(rel - along[:, None] * axis, axis=1)
        band = np.exp(-0.5 * (along / width_mm) ** 2) * (radial < 14.0)
        out = np.maximum(out, band)
    return out


def hand_detail(
    flat_verts: np.ndarray,
    curled_verts: np.ndarray,
    faces: np.ndarray,
    skinning_weights: np.ndarray,
    ih_joints: np.ndarray,
) -> HandDetail:
    """Palm, nail, crease and fold weights from the flat hand and a slightly curled copy of it.

    flat_verts, curled_verts: (V, 3) mm, the same hand with every joint flexed by a small angle
    in the second; faces: (F, 3) of those vertices; skinning_weights: (V, 16) MANO joint
    weights; ih_joints: (21, 3) InterHand2.6M joints of the flat hand (mm).
    """
    normals = vertex_normals(flat_verts, faces)
    motion = curled_verts - flat_verts
    length = np.linalg.norm(motion, axis=1, keepdims=True)
    part = np.argmax(skinning_weights, axis=1)
    moving = length[:, 0] > 1e-3
    volar = np.where(moving[:, None], motion / np.maximum(length, 1e-12), 0.0)
    proximal = np.isin(part, PROXIMAL_JOINTS) & moving
    palm_normal = volar[proximal].mean(axis=0)
    palm_normal /= np.linalg.norm(palm_normal)
    # the palm's own vertices (and any that barely move) face the palm normal
    volar[(part == 0) | (length[:, 0] < 0.5)] = palm_normal
    facing = np.sum(normals * volar, axis=1)  # +1 volar surface, -1 dorsal

    nail = np.zeros(len(flat_verts))
    for joint, ih_base, ih_tip in DISTAL_SEGMENTS:
        base, tip = ih_joints[ih_base], ih_joints[ih_tip]
        axis = tip - base
        span = np.linalg.norm(axis)
        along = (flat_verts - base) @ (axis / span) / span
        on_segment = part == joint
        nail[on_segment] = (
            smoothstep(0.2, 0.35, along[on_segment])
            * smoothstep(0.3, 0.6, -facing[on_segment])
            * (1.0 - smoothstep(0.92, 1.0, along[on_segment]))
        )
    palm = smoothstep(-0.1, 0.5, facing) * (1.0 - nail)
    volar_side = smoothstep(FLAT_FACING - 0.2, FLAT_FACING + 0.2, facing)
    dorsal_side = smoothstep(FLAT_FACING - 0.2, FLAT_FACING + 0.2, -facing)
    on_palm = (part == 0).astype(float)
    crease = (
        np.maximum(
            _palm_lines(flat_verts, ih_joints, 2.5) * on_palm,
            _joint_bands(flat_verts, ih_joints, (0.0, 0.3), 1.8),
        )
        * volar_side
    )
    fold = _joint_bands(flat_verts, ih_joints, (0.0, 0.0), 3.0) * dorsal_side * (1.0 - nail)
    return HandDetail(palm=palm, nail=nail, crease=crease, fold=fold)


@dataclass(frozen=True)
class SkinColours:
    """The albedos (3,) in 0..1 of one subject's hands: `back` (the subject's skin, dorsal),
    `palm`, `nail`, and the darkening factors of `crease` lines and knuckle `fold`s."""

    back: np.ndarray
    palm: np.ndarray
    nail: np.ndarray
    crease: float = CREASE_DARKEN
    fold: float = FOLD_DARKEN


def detail_colours(skin: np.ndarray) -> SkinColours:
    """The colours of a subject's skin albedo (3,): the palm moved `PALM_MIX` of the way to the
    light `PALM_TONE`, the nails `NAIL_MIX` of the way to `NAIL_TONE`."""
    return SkinColours(
        back=skin,
        palm=skin + PALM_MIX * (PALM_TONE - skin),
        nail=skin + NAIL_MIX * (NAIL_TONE - skin),
    )


def vertex_albedo(detail: HandDetail, skin: np.ndarray) -> np.ndarray:
    """Albedo (V, 3) of each vertex: back skin, palm and nail mixed by weight, then darkened
    along creases and folds. detail: (V,) weights; skin: (3,) in 0..1."""
    c = detail_colours(skin)
    vert = (
        c.back[None, :]
        + detail.palm[:, None] * (c.palm - c.back)[None, :]
        + detail.nail[:, None] * (c.nail - c.back)[None, :]
    )
    darken = 1.0 - (1.0 - c.crease) * detail.crease - (1.0 - c.fold) * detail.fold
    return vert * np.clip(darken, c.crease, 1.0)[:, None]


def face_albedo(detail: HandDetail, faces: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """Albedo (F, 3) of each face: the mean of its vertices' `vertex_albedo`.

    detail: weights of the V vertices the faces index (extra vertices, such as a wrist seal,
    must be covered by the caller's padding); faces: (F, 3); skin: (3,) in 0..1."""
    return vertex_albedo(detail, skin)[faces].mean(axis=1)


def face_gloss(detail: HandDetail, faces: np.ndarray) -> np.ndarray:
    """Highlight strength (F,) of each face relative to skin: 1, up to `NAIL_GLOSS` on nails."""
    return 1.0 + (NAIL_GLOSS - 1.0) * detail.nail[faces].mean(axis=1)
