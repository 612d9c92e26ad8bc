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

from dataclasses import dataclass

import numpy as np

from render.synthetic_data.images import vertex_normals

# MANO's joints at the base of each distal phalanx, with the InterHand2.6M indices (within one
# hand's 21) of that joint and of the fingertip: thumb, index, middle, ring, little.
DISTAL_SEGMENTS = ((15, 1, 0), (3, 5, 4), (6, 9, 8), (12, 13, 12), (9, 17, 16))
PROXIMAL_JOINTS = (1, 4, 7, 10)  # MANO: index, middle, little, ring MCP segments
PALM_TONE = np.array([0.93, 0.75, 0.69])  # light and pinkish, whatever the skin
NAIL_TONE = np.array([0.96, 0.84, 0.82])
PALM_MIX = 0.5  # palm = skin moved half-way to PALM_TONE (dark skin: a clearly lighter palm)
NAIL_MIX = 0.6
FLEX_RAD = 0.2  # the small curl that gives each vertex's volar direction


def smoothstep(lo: float, hi: float, x: np.ndarray) -> np.ndarray:
    """0 below lo, 1 above hi, a smooth cubic between. Any shape."""
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


@dataclass(frozen=True)
class HandDetail:
    """Per-vertex weights of one hand model side, both (V,) in 0..1: `palm` (volar skin) and
    `nail` (nail plate); the rest is plain skin. palm + nail <= 1."""

    palm: np.ndarray
    nail: np.ndarray


def hand_detail(
    flat_verts: np.ndarray,
    curled_verts: np.ndarray,
    faces: np.ndarray,
    skinning_weights: np.ndarray,
    ih_joints: np.ndarray,
) -> HandDetail:
    """Palm and nail weights from the flat hand and a slightly curled copy of it.

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
            smoothstep(0.3, 0.45, along[on_segment])
            * smoothstep(0.45, 0.75, -facing[on_segment])
            * (1.0 - smoothstep(0.9, 1.0, along[on_segment]))
        )
    palm = smoothstep(-0.1, 0.5, facing) * (1.0 - nail)
    return HandDetail(palm=palm, nail=nail)


def detail_colours(skin: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(palm, nail) albedos (3,) each for a subject's skin albedo (3,), all in 0..1."""
    return skin + PALM_MIX * (PALM_TONE - skin), skin + NAIL_MIX * (NAIL_TONE - skin)


def face_albedo(detail: HandDetail, faces: np.ndarray, skin: np.ndarray) -> np.ndarray:
    """Albedo (F, 3) of each face: the mean of its vertices' skin, palm and nail mix.

    detail: weights of the V vertices the faces index (extra vertices, such as a wrist seal,
    must be covered by the caller's padding); faces: (F, 3); skin: (3,) in 0..1."""
    palm_rgb, nail_rgb = detail_colours(skin)
    vert = (
        skin[None, :]
        + detail.palm[:, None] * (palm_rgb - skin)[None, :]
        + detail.nail[:, None] * (nail_rgb - skin)[None, :]
    )
    return vert[faces].mean(axis=1)
