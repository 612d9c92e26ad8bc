"""The project's own synthetic hand model in the MANO pickle format (not MANO data).

MANO files are licensed, so the project builds a stand-in that obeys the same pickle contract
(``reference/mano.md``): a quad-ring hand mesh (palm tube open at the wrist, four finger tubes out
of the knuckle ring, a thumb tube out of the radial-palmar side, rounded tips) sized from
``reference/hand_anatomy.md``, with smooth skinning weights, ring-centroid joint regressors,
finite-difference shape directions and PCA pose components of sampled natural poses.

Rest frame (that of the real MANO files): metres; right hand lies flat with the fingers along
-x, the back of the hand towards +y (palm normal -y), the thumb towards +z, and the wrist joint at
real MANO's (0.0957, 0.0064, 0.0062). The left model is the exact mirror x -> -x.

Everything is deterministic: the build uses only IEEE-exact numpy element-wise operations, libm
(``math``) trigonometry, exact sums (``math.fsum``), a built-in SplitMix64 generator and a Jacobi
eigensolver, rounds every stored float to a fixed grid, and writes the pickle with its own opcode
emitter, so the bytes do not depend on the numpy / scipy / BLAS versions.
"""

from __future__ import annotations

import functools
import math
import struct
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import scipy.sparse

from core.files import atomic_write_bytes
from render.mano import MANO_PARENTS, NUM_JOINTS

SYNTHETIC_MODEL_VERSION = 1
N_JOINTS = NUM_JOINTS  # the MANO tree (`render.mano`): 16 joints, MANO_PARENTS
# Joints (proximal to distal) of each finger, in MANO's joint order.
FINGER_JOINTS = {
    "index": (1, 2, 3),
    "middle": (4, 5, 6),
    "pinky": (7, 8, 9),
    "ring": (10, 11, 12),
    "thumb": (13, 14, 15),
}
TIP_ORDER = ("thumb", "index", "middle", "ring", "pinky")
# Real MANO's right-hand rest wrist joint (metres), a published fact; the left one has x negated.
MANO_WRIST_RIGHT_M = (0.09566994, 0.00638343, 0.0061863)
ROOT_PARENT_UINT32 = 4294967295
N_SHAPE = 10
_ROUND_M = 10  # decimals kept for metre-valued arrays (0.1 nm grid)
_ROUND_UNIT = 12  # decimals kept for unitless arrays (weights, regressor, pose)

# The four long fingers, radial (index) to ulnar (little), as they sit on the knuckle ring.
_LONG_FINGERS = ("index", "middle", "ring", "pinky")
_RING = 12  # vertices around every finger / thumb ring
_COL = _RING // 2  # knuckle-ring vertices per finger column (top and bottom rows each)
_ROW = _COL * 4  # vertices in one row (top or bottom) of a palm ring
_LOOP = 2 * _ROW  # vertices around the palm
_N_PALM_RINGS = 7  # wrist boundary, wrist, 3 palm rings, MCP ring, knuckle (web) ring
_PATCH_RINGS = (2, 3, 4)  # palm rings spanned by the thumb's opening
_PATCH_LOOP = (_LOOP - 4, _LOOP - 3, _LOOP - 2, _LOOP - 1, 0)  # radial-palmar corner


# --------------------------------------------------------------------------------------------
# Shape parameters
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class HandDimensions:
    """Multipliers and offsets applied to the mean hand (all 1 / 0 for the mean shape)."""

    size: float = 1.0  # uniform scale about the wrist
    palm_width: float = 1.0
    palm_length: float = 1.0
    finger_length: float = 1.0  # index, middle, ring, little
    thumb_length: float = 1.0
    finger_thickness: float = 1.0  # all five digits
    palm_thickness: float = 1.0
    finger_spread_deg: float = 0.0  # extra fan of the long fingers, degrees at the little finger
    little_length: float = 1.0
    thumb_abduction_deg: float = 0.0  # extra in-plane angle of the thumb metacarpal


# (name, field, change per unit beta). beta ~ N(0, 1) changes each by a few percent.
SHAPE_DIRECTIONS = (
    ("size", "size", 0.035),
    ("palm_width", "palm_width", 0.04),
    ("palm_length", "palm_length", 0.04),
    ("finger_length", "finger_length", 0.04),
    ("thumb_length", "thumb_length", 0.05),
    ("finger_thickness", "finger_thickness", 0.06),
    ("palm_thickness", "palm_thickness", 0.06),
    ("finger_spread", "finger_spread_deg", 3.0),
    ("little_length", "little_length", 0.05),
    ("thumb_abduction", "thumb_abduction_deg", 4.0),
)


@dataclass(frozen=True)
class _Finger:
    """One long finger of the mean hand (mm, degrees); u distal, w radial, n dorsal."""

    width: float  # knuckle-ring column width
    mcp_u: float  # MCP joint distance from the wrist along the hand
    length: float  # MCP joint to fingertip (sum of phalanges, hand_anatomy.md)
    fan_deg: float  # rest angle towards the radial side
    base: tuple[float, float]  # half width, half thickness just past the web
    tip: tuple[float, float]  # half width, half thickness before the tip rounding


_MEAN_FINGERS = {
    "index": _Finger(20.0, 67.0, 104.0, 4.0, (9.4, 8.8), (7.4, 6.6)),
    "middle": _Finger(21.0, 70.0, 115.0, 0.0, (9.8, 9.2), (7.7, 6.9)),
    "ring": _Finger(19.5, 67.0, 109.0, -5.0, (9.2, 8.6), (7.2, 6.5)),
    "pinky": _Finger(17.5, 58.0, 89.0, -12.0, (8.2, 7.6), (6.4, 5.9)),
}
_SPREAD_SHARE = {"index": -0.4, "middle": 0.0, "ring": 0.4, "pinky": 1.0}  # of the extra fan
_KNUCKLE_HALF = 42.75  # mm, half the mean knuckle-ring width (4 columns + 3 gaps)
_GAP = 2.5  # knuckle-ring web between neighbouring finger columns (mm)
_WEB_S = 19.0  # MCP joint to the web (start of the free finger), mm along the finger
_PHALANX = (1.0, 0.6, 0.45)  # proximal : middle : distal
_KNUCKLE_CENTRE_W = -7.0  # the palm widens towards the little finger
# Palm rings 0..4: (u along the hand, half width, half thickness) in mm; 5 = MCP, 6 = web.
_PALM_RINGS = ((-10.0, 28.0, 16.5), (0.0, 29.0, 16.5), (14.0, 32.0, 16.0), (30.0, 36.0, 15.5))
_PALM_RINGS += ((45.0, 40.0, 15.0),)
_MCP_RING_HALF_THICK = 13.0
_WEB_RING_HALF_THICK = 10.5
_SUPERELLIPSE_P = 3.0
# Thumb: lengths (mm) and directions (in-plane angle from the hand axis towards the radial
# side, tilt towards the palm side), degrees.
_THUMB_META_LEN = 32.0
_THUMB_LEN = 72.0  # MCP to tip, split 1 : 0.7 (hand_anatomy.md)
_THUMB_DIRS = ((55.0, 25.0), (32.0, 16.0), (18.0, 8.0))
_THUMB_PAD_ROLL_DEG = 60.0  # pad normal turned from the palm normal towards the fingers
_THUMB_RADII = ((14.0, 11.0), (12.0, 10.0), (10.8, 9.4), (10.0, 8.6), (9.4, 8.0), (8.9, 7.2))
_THUMB_TIP = (6.8, 6.2)  # half width, half thickness before the tip rounding
_TIP_POLAR_DEG = (70.0, 42.0)  # tip-rounding rings, polar angle from the fingertip


# --------------------------------------------------------------------------------------------
# Small vector helpers (element-wise only, so results are bit-reproducible)
# --------------------------------------------------------------------------------------------
def _unit(v: np.ndarray) -> np.ndarray:
    return v / math.sqrt(math.fsum(float(x) * float(x) for x in v))


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.array(
        [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]
    )


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    return math.fsum(float(x) * float(y) for x, y in zip(a, b, strict=True))


def _mean_rows(p: np.ndarray) -> np.ndarray:
    """Exact (fsum) mean of the rows of p (N, 3)."""
    return np.array([math.fsum(p[:, k].tolist()) / p.shape[0] for k in range(p.shape[1])])


def _dir(angle_deg: float, tilt_deg: float) -> np.ndarray:
    """Unit vector (u, w, n): angle_deg towards +w in the palm plane, tilt_deg towards -n."""
    a, t = math.radians(angle_deg), math.radians(tilt_deg)
    return np.array([math.cos(t) * math.cos(a), math.cos(t) * math.sin(a), -math.sin(t)])


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def _ramp(s: np.ndarray, centre: float, width: float) -> np.ndarray:
    """0 before centre - width/2, 1 after centre + width/2, C1-smooth in between."""
    return _smoothstep((s - centre) / width + 0.5)


# --------------------------------------------------------------------------------------------
# Geometry (hand-local millimetres: u distal along the hand, w radial, n dorsal)
# --------------------------------------------------------------------------------------------
_DIGITS = ("index", "middle", "ring", "pinky", "thumb")  # owner ids 0..4 of tube vertices
_PALM_OWNER = -1


@dataclass(frozen=True)
class _Digit:
    """A digit's skeleton: first joint (3,) mm, unit direction per bone (3, 3), lengths (3,)."""

    origin: np.ndarray
    dirs: np.ndarray
    lengths: np.ndarray


@dataclass(frozen=True)
class _Geometry:
    """One build of the hand; the topology is the same for every HandDimensions."""

    verts: np.ndarray  # (V, 3) mm, hand-local
    quads: tuple  # (a, b, c, d) vertex ids, in ring order (orientation fixed later)
    tris: tuple  # fingertip fans
    regressor_sets: tuple  # per joint, the vertex ids whose mean is the joint
    tips: tuple  # apex vertex id per TIP_ORDER digit
    owner: np.ndarray  # (V,) _PALM_OWNER, or index into _DIGITS for tube vertices
    tube_s: np.ndarray  # (V,) mm along the owning digit from its first joint; NaN on the palm
    palm_column: np.ndarray  # (V,) long-finger column (0..3) of palm vertices, -1 elsewhere
    digits: tuple  # _Digit per _DIGITS entry
    thumb_nails: tuple  # per thumb bone, the unit nail-side direction (3,)


class _Mesh:
    """Accumulates vertices (with their owner and position along the digit) and faces."""

    def __init__(self) -> None:
        self.points: list[np.ndarray] = []
        self.owner: list[int] = []
        self.tube_s: list[float] = []
        self.column: list[int] = []
        self.quads: list[tuple] = []
        self.tris: list[tuple] = []

    def add(self, points: np.ndarray, owner: int, s: float = math.nan, column: int = -1) -> list:
        start = len(self.owner)
        for p in np.asarray(points, dtype=np.float64).reshape(-1, 3):
            self.points.append(p)
            self.owner.append(owner)
            self.tube_s.append(s)
            self.column.append(column)
        return list(range(start, len(self.owner)))

    def xyz(self, ids) -> np.ndarray:
        return np.array([self.points[i] for i in ids])

    def band(self, a: list, b: list) -> None:
        """Quads joining two equally long loops, vertex k to vertex k."""
        n = len(a)
        self.quads.extend((a[k], a[(k + 1) % n], b[(k + 1) % n], b[k]) for k in range(n))

    def fan(self, loop: list, apex: int) -> None:
        n = len(loop)
        self.tris.extend((loop[k], loop[(k + 1) % n], apex) for k in range(n))


def _pow(x: np.ndarray, e: float) -> np.ndarray:
    # libm per element: numpy's SIMD pow differs in the last bit between CPUs
    return np.array([math.pow(float(v), e) for v in x])


def _ring_points(centre, side, nail, radii, phis) -> np.ndarray:
    """(len(phis), 3) points centre + a cos(phi) side + b sin(phi) nail."""
    c = np.array([math.cos(p) for p in phis])  # libm, for bit-reproducibility
    s = np.array([math.sin(p) for p in phis])
    return centre + np.outer(radii[0] * c, side) + np.outer(radii[1] * s, nail)


def _uniform_phis(start: float = 0.0, sense: float = 1.0) -> np.ndarray:
    """_RING angles, evenly spaced, half a step off `start`, turning with `sense` (+1 / -1)."""
    return np.array([start + sense * (math.pi / _RING) * (2 * k + 1) for k in range(_RING)])


def _knuckle_row(dims: HandDimensions) -> tuple[np.ndarray, list[int]]:
    """w (mm) of the knuckle ring's row vertices, radial to ulnar, and each one's column."""
    w = (_KNUCKLE_CENTRE_W + _KNUCKLE_HALF) * dims.palm_width
    row_w, row_col = [], []
    for c, name in enumerate(_LONG_FINGERS):
        width = _MEAN_FINGERS[name].width * dims.palm_width
        row_w += [w - width * i / (_COL - 1) for i in range(_COL)]
        row_col += [c] * _COL
        w -= width + _GAP * dims.palm_width
    return np.array(row_w), row_col


def _palm_ring(
    centre_w: float, half_w: float, half_n: float, blend: float, col_norm: np.ndarray, u: np.ndarray
) -> np.ndarray:
    """Palm cross-section (_LOOP, 3): top row radial->ulnar, then bottom row ulnar->radial.

    col_norm (_ROW,) in [-1, 1] is each row vertex's place on the knuckle ring (+1 radial);
    blend 0 puts the rows on a rounded superellipse, 1 on the flat-topped knuckle rectangle.
    """
    e = 2.0 / _SUPERELLIPSE_P
    cos_t = col_norm * 0.97  # the rows stop short of the sides, which stay one edge tall
    sin_t = np.sqrt(1.0 - cos_t * cos_t)
    round_w = np.sign(cos_t) * _pow(np.abs(cos_t), e)
    w = centre_w + half_w * ((1.0 - blend) * round_w + blend * col_norm)
    n = half_n * ((1.0 - blend) * _pow(sin_t, e) + blend)
    top = np.stack([u, w, n], axis=1)
    bottom = np.stack([u, w, -n], axis=1)[::-1]
    return np.concatenate([top, bottom])


def _palm(mesh: _Mesh, dims: HandDimensions) -> np.ndarray:
    """Palm rings and their quads (less the thumb's opening); (_N_PALM_RINGS, _LOOP) ids."""
    row_w, row_col = _knuckle_row(dims)
    centre = _KNUCKLE_CENTRE_W * dims.palm_width
    half = (row_w[0] - row_w[-1]) / 2.0
    col_norm = (row_w - centre) / half
    pl = dims.palm_length
    row_mcp_u = np.array([_MEAN_FINGERS[_LONG_FINGERS[c]].mcp_u * pl for c in row_col])
    middle_u = _MEAN_FINGERS["middle"].mcp_u * pl
    rings = []
    for u, half_w, half_n in _PALM_RINGS:
        t = min(max(u * pl / middle_u, 0.0), 1.0)  # towards the knuckles: widen and shift
        hw = (half_w + (half / dims.palm_width - _KNUCKLE_HALF) * t) * dims.palm_width
        hn = half_n * dims.palm_thickness
        rings.append(_palm_ring(centre * t, hw, hn, 0.0, col_norm, np.full(_ROW, u * pl)))
    hn = _MCP_RING_HALF_THICK * dims.palm_thickness
    rings.append(_palm_ring(centre, half, hn, 0.5, col_norm, row_mcp_u))
    hn = _WEB_RING_HALF_THICK * 0.5 * (dims.palm_thickness + dims.finger_thickness)
    web_u = row_mcp_u + _WEB_S * dims.finger_thickness
    rings.append(_palm_ring(centre, half, hn, 1.0, col_norm, web_u))

    loop_col = row_col + row_col[::-1]
    hole = {(_PATCH_RINGS[1], i) for i in _PATCH_LOOP[1:-1]}  # inside the thumb's opening
    ids = np.full((_N_PALM_RINGS, _LOOP), -1, dtype=np.int64)
    for r, ring in enumerate(rings):
        for i in range(_LOOP):
            if (r, i) not in hole:
                ids[r, i] = mesh.add(ring[i], _PALM_OWNER, column=loop_col[i])[0]
    hole_quads = {(r, i) for r in _PATCH_RINGS[:-1] for i in _PATCH_LOOP[:-1]}
    for r in range(_N_PALM_RINGS - 1):
        for i in range(_LOOP):
            if (r, i) not in hole_quads:
                j = (i + 1) % _LOOP
                mesh.quads.append((ids[r, i], ids[r, j], ids[r + 1, j], ids[r + 1, i]))
    for c in range(len(_LONG_FINGERS) - 1):  # one quad across each gap between fingers
        a, b = c * _COL + _COL - 1, (c + 1) * _COL
        w = ids[_N_PALM_RINGS - 1]
        mesh.quads.append((w[a], w[b], w[_LOOP - 1 - b], w[_LOOP - 1 - a]))
    return ids


def _column_loop(c: int) -> list[int]:
    """Palm-loop indices of long finger c's column: top radial->ulnar, bottom ulnar->radial."""
    top = [c * _COL + k for k in range(_COL)]
    return top + [_LOOP - 1 - t for t in top[::-1]]


def _long_finger(mesh: _Mesh, dims: HandDimensions, c: int, palm: np.ndarray, reg: list):
    """Finger c's tube out of its knuckle-ring column; returns (_Digit, apex id)."""
    name = _LONG_FINGERS[c]
    spec = _MEAN_FINGERS[name]
    loop = _column_loop(c)
    mcp_ids = [int(palm[_N_PALM_RINGS - 2, i]) for i in loop]
    j1, j2, j3 = FINGER_JOINTS[name]
    reg[j1] = tuple(mcp_ids)
    origin = _mean_rows(mesh.xyz(mcp_ids))  # exactly the regressed MCP joint
    ang = math.radians(spec.fan_deg - dims.finger_spread_deg * _SPREAD_SHARE[name])
    axis = np.array([math.cos(ang), math.sin(ang), 0.0])
    side = np.array([-math.sin(ang), math.cos(ang), 0.0])
    nail = np.array([0.0, 0.0, 1.0])
    length = spec.length * dims.finger_length * (dims.little_length if name == "pinky" else 1.0)
    lengths = np.array(_PHALANX) * (length / sum(_PHALANX))
    pip, dip = lengths[0], lengths[0] + lengths[1]
    web_s = _WEB_S * dims.finger_thickness
    base = np.array(spec.base) * dims.finger_thickness
    tip = np.array(spec.tip) * dims.finger_thickness
    tip_centre = length - tip[1]  # the tip is rounded about this point on the axis
    phis = _uniform_phis()
    prev = [int(palm[_N_PALM_RINGS - 1, i]) for i in loop]
    ring_s = ((web_s + pip) / 2.0, pip, (pip + dip) / 2.0, dip, dip + 0.45 * lengths[2])
    for k, s in enumerate(ring_s):
        t = (s - web_s) / (tip_centre - web_s)
        bulge = 1.04 if k in (1, 3) else 1.0  # joints a little fuller than the shafts
        radii = ((1.0 - t) * base + t * tip) * bulge
        ids = mesh.add(_ring_points(origin + s * axis, side, nail, radii, phis), c, s)
        if k in (1, 3):
            reg[j2 if k == 1 else j3] = tuple(ids)
        mesh.band(prev, ids)
        prev = ids
    for polar in np.radians(_TIP_POLAR_DEG):
        s = tip_centre + tip[1] * math.cos(polar)
        ids = mesh.add(
            _ring_points(origin + s * axis, side, nail, tip * math.sin(polar), phis), c, s
        )
        mesh.band(prev, ids)
        prev = ids
    apex = mesh.add(origin + length * axis, c, length)[0]
    mesh.fan(prev, apex)
    return _Digit(origin, np.stack([axis, axis, axis]), lengths), apex


def _thumb_opening(palm: np.ndarray) -> list[int]:
    """The 12 palm vertices around the thumb's opening, in loop order."""
    r0, r1, r2 = _PATCH_RINGS
    ids = [palm[r0, i] for i in _PATCH_LOOP] + [palm[r1, _PATCH_LOOP[-1]]]
    ids += [palm[r2, i] for i in _PATCH_LOOP[::-1]] + [palm[r1, _PATCH_LOOP[0]]]
    return [int(i) for i in ids]


def _thumb(mesh: _Mesh, dims: HandDimensions, palm: np.ndarray, reg: list):
    """The thumb's tube out of the radial-palmar opening; returns (_Digit, apex, nails)."""
    opening = _thumb_opening(palm)
    rim = mesh.xyz(opening)
    p0 = _mean_rows(rim)
    middle_u = _MEAN_FINGERS["middle"].mcp_u * dims.palm_length
    on_axis = np.array([p0[0], _KNUCKLE_CENTRE_W * dims.palm_width * min(p0[0] / middle_u, 1), 0])
    (a0, t0), (a1, t1), (a2, t2) = _THUMB_DIRS
    extra = dims.thumb_abduction_deg
    d_meta, d_prox, d_dist = (
        _dir(a0 + extra, t0),
        _dir(a1 + extra / 2, t1),
        _dir(a2 + extra / 4, t2),
    )
    exit_dir = _unit(0.6 * _unit(p0 - on_axis) + d_meta)  # out of the palm and along the thumb
    scale = dims.finger_thickness
    c1 = p0 + 10.0 * scale * exit_dir
    origin = p0 + 5.0 * scale * exit_dir  # about where the CMC regressor lands
    l_meta = _THUMB_META_LEN * dims.thumb_length
    l_prox = _THUMB_LEN * dims.thumb_length / 1.7
    l_dist = l_prox * 0.7
    j14 = origin + l_meta * d_meta
    j15 = j14 + l_prox * d_prox
    apex_pt = j15 + l_dist * d_dist
    roll = math.radians(_THUMB_PAD_ROLL_DEG)
    pad = np.array([0.0, -math.sin(roll), -math.cos(roll)])  # palm normal turned to the fingers

    def frame(axis: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        nail = _unit(_dot(pad, axis) * axis - pad)
        return _cross(nail, axis), nail

    # (centre, axis, s along the thumb from its first joint)
    rings = [
        (c1, exit_dir, _dot(c1 - origin, d_meta)),
        ((c1 + j14) / 2, _unit(exit_dir + d_meta), _dot((c1 + j14) / 2 - origin, d_meta)),
        (j14, _unit(d_meta + d_prox), l_meta),
        ((j14 + j15) / 2, d_prox, l_meta + l_prox / 2),
        (j15, _unit(d_prox + d_dist), l_meta + l_prox),
        (j15 + 0.45 * l_dist * d_dist, d_dist, l_meta + l_prox + 0.45 * l_dist),
    ]
    # the first ring copies the opening's outline (so nothing twists); the next ones relax to
    # an ellipse whose angles follow the opening's sense of rotation
    side1, nail1 = frame(exit_dir)
    rel = rim - p0
    psi = [math.atan2(_dot(r, nail1), _dot(r, side1)) for r in rel]
    steps = [math.remainder(psi[(k + 1) % _RING] - psi[k], 2 * math.pi) for k in range(_RING)]
    turn = math.fsum(steps)
    sense = 1.0 if turn > 0 else -1.0
    offsets = [psi[k] - sense * (math.pi / _RING) * (2 * k + 1) for k in range(_RING)]
    start = math.atan2(math.fsum(map(math.sin, offsets)), math.fsum(map(math.cos, offsets)))
    uniform = _uniform_phis(start, sense)
    outline = rel - np.outer([_dot(r, exit_dir) for r in rel], exit_dir)
    prev = opening
    ring_ids = []
    for k, (centre, axis, s) in enumerate(rings):
        side, nail = frame(axis)
        pts = _ring_points(centre, side, nail, np.array(_THUMB_RADII[k]) * scale, uniform)
        if k == 0:
            pts = centre + 0.9 * outline
        elif k == 1:
            pts = 0.5 * pts + 0.5 * (centre + 0.9 * outline)
        ids = mesh.add(pts, 4, s)
        ring_ids.append(ids)
        mesh.band(prev, ids)
        prev = ids
    tip = np.array(_THUMB_TIP) * scale
    side, nail = frame(d_dist)
    for polar in np.radians(_TIP_POLAR_DEG):
        centre = apex_pt - tip[1] * (1.0 - math.cos(polar)) * d_dist
        s = l_meta + l_prox + _dot(centre - j15, d_dist)
        ids = mesh.add(_ring_points(centre, side, nail, tip * math.sin(polar), uniform), 4, s)
        mesh.band(prev, ids)
        prev = ids
    apex = mesh.add(apex_pt, 4, l_meta + l_prox + l_dist)[0]
    mesh.fan(prev, apex)
    reg[13] = tuple(opening) + tuple(ring_ids[0])
    reg[14] = tuple(ring_ids[2])
    reg[15] = tuple(ring_ids[4])
    digit = _Digit(origin, np.stack([d_meta, d_prox, d_dist]), np.array([l_meta, l_prox, l_dist]))
    return digit, apex, tuple(frame(d)[1] for d in (d_meta, d_prox, d_dist))


def _build(dims: HandDimensions) -> _Geometry:
    """The whole hand for one set of dimensions (topology independent of them)."""
    mesh = _Mesh()
    reg: list = [()] * N_JOINTS
    palm = _palm(mesh, dims)
    reg[0] = tuple(int(i) for i in palm[1])  # the wrist: the palm ring through it
    digits, tips = [], {}
    for c, name in enumerate(_LONG_FINGERS):
        digit, tips[name] = _long_finger(mesh, dims, c, palm, reg)
        digits.append(digit)
    digit, tips["thumb"], nails = _thumb(mesh, dims, palm, reg)
    digits.append(digit)
    size = dims.size  # uniform scale about the wrist (hand-local origin)
    return _Geometry(
        verts=np.array(mesh.points) * size,
        quads=tuple(tuple(int(i) for i in q) for q in mesh.quads),
        tris=tuple(mesh.tris),
        regressor_sets=tuple(reg),
        tips=tuple(tips[f] for f in TIP_ORDER),
        owner=np.array(mesh.owner),
        tube_s=np.array(mesh.tube_s) * size,
        palm_column=np.array(mesh.column),
        digits=tuple(_Digit(d.origin * size, d.dirs, d.lengths * size) for d in digits),
        thumb_nails=nails,
    )


# --------------------------------------------------------------------------------------------
# Topology: triangulation and consistent orientation
# --------------------------------------------------------------------------------------------
def _triangulate(geo: _Geometry) -> np.ndarray:
    """Split each quad along its shorter diagonal, orient all faces outwards, (F, 3) int64."""
    v = geo.verts
    faces = []
    for a, b, c, d in geo.quads:
        ac = float(np.sum((v[a] - v[c]) ** 2))
        bd = float(np.sum((v[b] - v[d]) ** 2))
        if ac <= bd * (1.0 - 1e-9):
            faces += [(a, b, c), (a, c, d)]
        else:
            faces += [(a, b, d), (b, c, d)]
    faces += list(geo.tris)
    faces = np.array(faces, dtype=np.int64)
    faces = _orient(faces)
    # outward: the swept volume of a closed-but-for-the-wrist hand is positive
    if _signed_volume(v, faces) < 0:
        faces = faces[:, ::-1].copy()
    return faces


def _orient(faces: np.ndarray) -> np.ndarray:
    """Flip faces so that every shared edge is traversed in opposite directions (BFS)."""
    edge_faces: dict[tuple[int, int], list[int]] = {}
    for fi, f in enumerate(faces.tolist()):
        for k in range(3):
            a, b = f[k], f[(k + 1) % 3]
            edge_faces.setdefault((min(a, b), max(a, b)), []).append(fi)
    out = faces.copy()
    done = np.zeros(len(faces), dtype=bool)
    for seed in range(len(faces)):
        if done[seed]:
            continue
        done[seed] = True
        stack = [seed]
        while stack:
            fi = stack.pop()
            f = out[fi].tolist()
            for k in range(3):
                a, b = f[k], f[(k + 1) % 3]
                for gj in edge_faces[(min(a, b), max(a, b))]:
                    if done[gj]:
                        continue
                    g = out[gj].tolist()
                    same = any(g[m] == a and g[(m + 1) % 3] == b for m in range(3))
                    if same:
                        out[gj] = out[gj][::-1]
                    done[gj] = True
                    stack.append(gj)
    return out


def _signed_volume(v: np.ndarray, faces: np.ndarray) -> float:
    a, b, c = v[faces[:, 0]], v[faces[:, 1]], v[faces[:, 2]]
    return math.fsum((np.einsum("ij,ij->i", a, np.cross(b, c)) / 6.0).tolist())


# --------------------------------------------------------------------------------------------
# Skinning weights and regressor
# --------------------------------------------------------------------------------------------
_THENAR_BLEND = (-6.0, 0.45)  # palm -> thumb1 ramp: centre (mm from J13), width (x metacarpal)
_THENAR_REACH = (14.0, 12.0)  # palm vertices this close (mm) to the thumb's axis, then fading


def _chain_weights(s: np.ndarray, lengths: np.ndarray, root_centre: float, root_width: float):
    """(N, 4) weights of (parent, bone1, bone2, bone3) along a digit at distances s (mm)."""
    u0 = _ramp(s, root_centre, root_width)
    u1 = _ramp(s, lengths[0], lengths[:2].min() / 3.0)
    u2 = _ramp(s, lengths[0] + lengths[1], lengths[1:].min() / 3.0)
    return np.stack([1.0 - u0, u0 - u1, u1 - u2, u2], axis=1)


def _skinning_weights(geo: _Geometry) -> np.ndarray:
    """(V, 16) rows summing to 1: palm, then each digit's bones, blended across each joint."""
    v = geo.verts
    w = np.zeros((len(v), N_JOINTS))
    palm = geo.owner == _PALM_OWNER
    w[palm, 0] = 1.0
    for d, name in enumerate(_DIGITS):
        origin, dirs, lengths = geo.digits[d].origin, geo.digits[d].dirs, geo.digits[d].lengths
        joints = list(FINGER_JOINTS[name])
        if name == "thumb":  # the thenar blends into the palm around the opening
            centre, width = _THENAR_BLEND
            width *= lengths[0]
        else:
            centre, width = 0.0, lengths[0] / 3.0
        tube = geo.owner == d
        cw = _chain_weights(geo.tube_s[tube], lengths, centre, width)
        w[np.ix_(tube, [0, *joints])] = cw
        # palm vertices: by their projection on the digit's first bone
        rel = v[palm] - origin
        s = np.sum(rel * dirs[0], axis=1)
        cw = _chain_weights(s, lengths, centre, width)
        if name == "thumb":
            perp = np.sqrt(np.maximum(np.sum(rel * rel, axis=1) - s * s, 0.0))
            reach = 1.0 - _smoothstep((perp - _THENAR_REACH[0]) / _THENAR_REACH[1])
        else:
            reach = (geo.palm_column[palm] == d).astype(np.float64)
        share = cw[:, 1:] * reach[:, None]
        pw = w[palm]
        pw[:, joints] += share
        pw[:, 0] -= share.sum(axis=1)
        w[palm] = pw
    w = np.maximum(w, 0.0)
    return w / w.sum(axis=1, keepdims=True)


def _regressor(geo: _Geometry) -> scipy.sparse.csc_matrix:
    n = len(geo.verts)
    rows, cols, vals = [], [], []
    for j, ids in enumerate(geo.regressor_sets):
        for i in sorted(ids):
            rows.append(j)
            cols.append(i)
            vals.append(1.0 / len(ids))
    return scipy.sparse.csc_matrix(
        (np.array(vals), (np.array(rows), np.array(cols))), shape=(N_JOINTS, n)
    )


def _regress(reg: scipy.sparse.csc_matrix, v: np.ndarray) -> np.ndarray:
    """Exact-sum joints (16, 3) from vertices (V, 3)."""
    csr = reg.tocsr()
    out = np.zeros((N_JOINTS, 3))
    for j in range(N_JOINTS):
        lo, hi = csr.indptr[j], csr.indptr[j + 1]
        idx, val = csr.indices[lo:hi], csr.data[lo:hi]
        for k in range(3):
            out[j, k] = math.fsum((val * v[idx, k]).tolist())
    return out


# --------------------------------------------------------------------------------------------
# Hand-local millimetres -> MANO metres
# --------------------------------------------------------------------------------------------
def _to_world_vec(x: np.ndarray) -> np.ndarray:
    """(..., 3) (u distal, w radial, n dorsal) -> right-hand MANO axes (x, y, z) = (-u, n, w)."""
    return np.stack([-x[..., 0], x[..., 2], x[..., 1]], axis=-1)


@functools.lru_cache(maxsize=1)
def _mean_build() -> tuple[_Geometry, np.ndarray]:
    """The mean geometry and the translation (mm, world axes) that puts J0 on MANO's wrist."""
    geo = _build(HandDimensions())
    j0 = _mean_rows(_to_world_vec(geo.verts[list(geo.regressor_sets[0])]))
    shift = np.array(MANO_WRIST_RIGHT_M) * 1000.0 - j0
    return geo, shift


def _world_metres(local_mm: np.ndarray, shift: np.ndarray) -> np.ndarray:
    return (_to_world_vec(local_mm) + shift) / 1000.0


# --------------------------------------------------------------------------------------------
# Joint axes, limits and natural poses
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FingerPoseLimits:
    """Per-joint rotation axes and limits for the 15 finger joints (MANO joints 1..15).

    axes: (15, 3, 3) float64, for each joint the unit axes (flexion, abduction, twist) in the
        model's rest frame (rows); MANO's per-joint axis-angle of a pose is the sum of
        angle * axis, and angle = dot(axis_angle, axis).
    lower, upper: (15, 3) float64 radians, limits of the angle about each axis.
    Positive flexion curls a digit towards the palm (the thumb towards its pad, which faces the
    fingers); positive abduction turns a long finger towards the thumb side; twist is about
    the bone, and the thumb opposes (pronates) with a negative CMC twist. The left hand's axes
    are the right's mirrored as axial vectors, (x, y, z) -> (x, -y, -z), so that the same angles
    give the mirror-image pose.
    """

    side: str
    axes: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


# Degrees, per bone (MCP, PIP, DIP): (flexion lo, hi), (abduction lo, hi), (twist lo, hi);
# hand_anatomy.md, with a few degrees of play where the table says "none".
_FINGER_LIMITS_DEG = (
    ((-20, 90), None, (-8, 8)),  # abduction per finger below
    ((0, 105), (-4, 4), (-4, 4)),
    ((-5, 80), (-4, 4), (-4, 4)),
)
_MCP_ABDUCTION_DEG = {"index": 25, "middle": 15, "ring": 20, "pinky": 25}
_THUMB_LIMITS_DEG = (  # CMC, MCP, IP; opposition turns the CMC by a negative twist
    ((-20, 35), (-25, 30), (-35, 10)),
    ((-5, 50), (-8, 8), (-6, 6)),
    ((-10, 80), (-4, 4), (-4, 4)),
)


def _rest_axes_right() -> np.ndarray:
    """(15, 3, 3) right-hand (flexion, abduction, twist) axes of MANO joints 1..15."""
    geo, _ = _mean_build()
    axes = np.zeros((15, 3, 3))
    for d, name in enumerate(_DIGITS):
        dirs = geo.digits[d].dirs
        for b, j in enumerate(FINGER_JOINTS[name]):
            along = _to_world_vec(dirs[b])
            nail = np.array([0.0, 1.0, 0.0])
            if name == "thumb":
                nail = _to_world_vec(geo.thumb_nails[b])
            nail = _unit(nail - _dot(nail, along) * along)
            flex = _cross(nail, along)  # rotates `along` towards the palm / pad side
            axes[j - 1] = np.stack([flex, nail, along])
    return axes


def _mirror_axis_angle(aa: np.ndarray) -> np.ndarray:
    """Axis-angle vectors (..., 3) of the mirror image x -> -x: (x, y, z) -> (x, -y, -z)."""
    return aa * np.array([1.0, -1.0, -1.0])


@functools.lru_cache(maxsize=2)
def _limits_cached(side: str) -> FingerPoseLimits:
    axes = _rest_axes_right()
    if side == "left":
        axes = _mirror_axis_angle(axes)
    lower = np.zeros((15, 3))
    upper = np.zeros((15, 3))
    for name, joints in FINGER_JOINTS.items():
        for b, j in enumerate(joints):
            table = _THUMB_LIMITS_DEG if name == "thumb" else _FINGER_LIMITS_DEG
            for k, pair in enumerate(table[b]):
                lo, hi = pair or (-_MCP_ABDUCTION_DEG[name], _MCP_ABDUCTION_DEG[name])
                lower[j - 1, k] = math.radians(lo)
                upper[j - 1, k] = math.radians(hi)
    return FingerPoseLimits(side, axes, lower, upper)


def finger_pose_limits(side: str = "right") -> FingerPoseLimits:
    """Rotation axes and limits of the 15 finger joints of the synthetic model ('right'/'left')."""
    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    lim = _limits_cached(side)
    return replace(lim, axes=lim.axes.copy(), lower=lim.lower.copy(), upper=lim.upper.copy())


def pose_from_angles(angles: np.ndarray, side: str = "right") -> np.ndarray:
    """(n, 15, 3) radians about (flexion, abduction, twist) -> (n, 45) MANO finger pose."""
    axes = _limits_cached(side).axes
    aa = angles[..., 0:1] * axes[:, 0] + angles[..., 1:2] * axes[:, 1]
    aa = aa + angles[..., 2:3] * axes[:, 2]
    return aa.reshape(angles.shape[0], 45)


def angles_from_pose(pose: np.ndarray, side: str = "right") -> np.ndarray:
    """(n, 45) MANO finger pose -> (n, 15, 3) radians about (flexion, abduction, twist)."""
    axes = _limits_cached(side).axes
    aa = np.asarray(pose, dtype=np.float64).reshape(-1, 15, 1, 3)
    return np.sum(aa * axes[None], axis=-1)


def _relaxed_angles() -> np.ndarray:
    """(15, 3) radians of the relaxed hand (the model's hands_mean)."""
    deg = np.zeros((15, 3))
    for c, name in enumerate(_LONG_FINGERS):
        j1, j2, j3 = FINGER_JOINTS[name]
        cascade = 1.0 + 0.25 * c  # the relaxed hand curls more towards the little finger
        deg[j1 - 1, 0] = 10.0 * cascade
        deg[j2 - 1, 0] = 16.0 * cascade
        deg[j3 - 1, 0] = 10.0 * cascade
    deg[12] = (6.0, 3.0, -5.0)
    deg[13, 0] = 10.0
    deg[14, 0] = 12.0
    return np.radians(deg)


def _normal(rng, shape) -> np.ndarray:
    """Approximately standard normal samples from four uniforms (Irwin-Hall), no libm."""
    u = rng.random((4, *shape))
    return (u.sum(axis=0) - 2.0) * math.sqrt(3.0)


# Independent noise (degrees, one sigma) on (flexion, abduction, twist): MCP, PIP, DIP per
# long finger, then the thumb's CMC, MCP, IP.
_NOISE_DEG = np.array(
    [[5.0, 3.0, 2.0], [0.0, 1.0, 1.0], [4.0, 1.0, 1.0]] * 4
    + [[5.0, 5.0, 4.0], [6.0, 3.0, 2.0], [0.0, 1.0, 1.0]]
)
_FAN = {"index": 1.0, "middle": 0.2, "ring": -0.8, "pinky": -1.4}  # MCP abduction per spread


def _sample_angles(rng, n: int) -> np.ndarray:
    """(n, 15, 3) radians of natural right-hand finger poses; rng needs only .random(shape).

    A shared grasp amplitude curls all fingers (each with its own deviation), a shared spread
    fans them, an opposition amplitude drives the thumb; DIP follows two thirds of PIP.
    """
    deg = _normal(rng, (n, 15, 3)) * _NOISE_DEG
    u = rng.random((n,))
    grasp = u * (0.4 + 0.6 * u)  # in [0, 1], biased towards open hands
    spread = rng.random((n,)) * 1.4 - 0.4  # negative: fingers pressed together
    hyper = rng.random((n,)) < 0.15  # some open hands hyperextend at the knuckles
    for c, name in enumerate(_LONG_FINGERS):
        mcp, pip, dip = (j - 1 for j in FINGER_JOINTS[name])
        curl = np.clip(grasp + 0.18 * _normal(rng, (n,)) + 0.05 * c, 0.0, 1.0)
        bent = np.where(hyper & (curl < 0.2), -15.0 * rng.random((n,)), -8.0 + 88.0 * curl)
        deg[:, mcp, 0] += bent
        deg[:, mcp, 1] += 12.0 * spread * _FAN[name] * (1.0 - 0.6 * curl)
        deg[:, pip, 0] += 105.0 * np.clip(curl + 0.1 * _normal(rng, (n,)), 0.0, 1.0)
        deg[:, dip, 0] += deg[:, pip, 0] * (2.0 / 3.0)
    opp = np.clip(0.7 * grasp + 0.4 * rng.random((n,)) - 0.1, 0.0, 1.0)
    deg[:, 12, 0] += -10.0 + 40.0 * opp
    deg[:, 12, 1] += -10.0 + 30.0 * rng.random((n,))
    deg[:, 12, 2] -= 30.0 * opp  # pronation: the pad turns towards the fingers
    deg[:, 13, 0] += 45.0 * opp
    deg[:, 14, 0] += -5.0 + 75.0 * np.clip(opp + 0.2 * _normal(rng, (n,)), 0.0, 1.0)
    lim = _limits_cached("right")
    return np.clip(np.radians(deg), lim.lower, lim.upper)


def sample_natural_hand_pose(rng: np.random.Generator, n: int, side: str = "right") -> np.ndarray:
    """(n, 45) float64 natural full finger poses (MANO axis-angle, NOT minus hands_mean).

    Shared grasp / spread / opposition amplitudes plus small independent noise; PIP and DIP flex
    together (DIP about two thirds of PIP); every angle lies within finger_pose_limits(side).
    rng: anything with numpy's ``random(shape)`` (a numpy Generator).
    """
    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    return pose_from_angles(_sample_angles(rng, int(n)), side)


class _SplitMix64:
    """A tiny, version-proof uniform generator (SplitMix64) for the model build."""

    def __init__(self, seed: int) -> None:
        self.state = seed & 0xFFFFFFFFFFFFFFFF

    def _next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        return z ^ (z >> 31)

    def random(self, shape) -> np.ndarray:
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        count = int(np.prod(shape)) if shape else 1
        vals = [(self._next() >> 11) * (1.0 / 9007199254740992.0) for _ in range(count)]
        return np.array(vals).reshape(shape)


def _jacobi_eigh(a: np.ndarray, sweeps: int = 30) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues and eigenvectors (columns) of a symmetric matrix, cyclic Jacobi.

    Only element-wise operations, so the result is the same on every machine (unlike LAPACK).
    """
    a = a.copy()
    n = a.shape[0]
    vec = np.eye(n)
    for _ in range(sweeps):
        off = math.fsum((a[np.triu_indices(n, 1)] ** 2).tolist())
        if off < 1e-30:
            break
        for p in range(n - 1):
            for q in range(p + 1, n):
                apq = a[p, q]
                if apq == 0.0:
                    continue
                theta = (a[q, q] - a[p, p]) / (2.0 * apq)
                t = (1.0 if theta >= 0 else -1.0) / (abs(theta) + math.sqrt(theta * theta + 1.0))
                c = 1.0 / math.sqrt(t * t + 1.0)
                s = t * c
                ap, aq = a[:, p].copy(), a[:, q].copy()
                a[:, p] = c * ap - s * aq
                a[:, q] = s * ap + c * aq
                ap, aq = a[p, :].copy(), a[q, :].copy()
                a[p, :] = c * ap - s * aq
                a[q, :] = s * ap + c * aq
                vp, vq = vec[:, p].copy(), vec[:, q].copy()
                vec[:, p] = c * vp - s * vq
                vec[:, q] = s * vp + c * vq
    return np.diag(a).copy(), vec


def _pose_pca() -> np.ndarray:
    """(45, 45) orthonormal rows: principal directions of sampled natural right-hand poses."""
    poses = pose_from_angles(_sample_angles(_SplitMix64(20210101), 4000), "right")
    x = poses - _mean_rows(poses)
    cov = np.zeros((45, 45))
    for i in range(45):
        for j in range(i, 45):
            cov[i, j] = cov[j, i] = math.fsum((x[:, i] * x[:, j]).tolist()) / len(x)
    vals, vecs = _jacobi_eigh(cov)
    order = sorted(range(45), key=lambda k: (-vals[k], k))
    comps = vecs[:, order].T.copy()
    for r in range(45):  # sign: the largest entry positive
        k = int(np.argmax(np.abs(comps[r])))
        if comps[r, k] < 0:
            comps[r] = -comps[r]
    return comps


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------
def _shape_dirs(shift: np.ndarray) -> np.ndarray:
    """(V, 3, 10) metres per unit beta: central differences of the construction."""
    base = HandDimensions()
    out = []
    for _, field, step in SHAPE_DIRECTIONS:
        plus = _build(replace(base, **{field: getattr(base, field) + step})).verts
        minus = _build(replace(base, **{field: getattr(base, field) - step})).verts
        out.append((_to_world_vec(plus) - _to_world_vec(minus)) / 2000.0)
    return np.stack(out, axis=2)


@functools.lru_cache(maxsize=1)
def _right_arrays() -> dict:
    geo, shift = _mean_build()
    v = np.round(_world_metres(geo.verts, shift), _ROUND_M)
    faces = _triangulate(geo)
    reg = _regressor(geo)
    reg.data = np.round(reg.data, _ROUND_UNIT)
    weights = np.round(_skinning_weights(geo), _ROUND_UNIT)
    joints = np.round(_regress(reg, v), _ROUND_M)
    mean = np.round(pose_from_angles(_relaxed_angles()[None], "right")[0], _ROUND_UNIT)
    return {
        "v_template": v,
        "f": faces.astype(np.uint32),
        "weights": weights,
        "J_regressor": reg,
        "kintree_table": _kintree(),
        "shapedirs": np.round(_shape_dirs(shift), _ROUND_M),
        "posedirs": np.zeros((len(v), 3, 135)),
        "hands_components": np.round(_pose_pca(), _ROUND_UNIT),
        "hands_mean": mean,
        "J": joints,
        "bs_style": "lbs",
        "bs_type": "lrotmin",
        "tip_vertex_ids": np.array(geo.tips, dtype=np.int64),
        "synthetic_model_version": SYNTHETIC_MODEL_VERSION,
    }


def _kintree() -> np.ndarray:
    parents = [ROOT_PARENT_UINT32 if p < 0 else p for p in MANO_PARENTS]
    return np.array([parents, list(range(N_JOINTS))], dtype=np.uint32)


def build_synthetic_mano(side: str = "right") -> dict:
    """The synthetic model's pickle contents for 'right' or 'left' (fresh copies).

    Keys as in MANO (reference/mano.md): v_template (V, 3) metres, f (F, 3) uint32, weights
    (V, 16), J_regressor csc (16, V), kintree_table (2, 16) uint32, shapedirs (V, 3, 10),
    posedirs (V, 3, 135) zeros, hands_components (45, 45), hands_mean (45,), J (16, 3),
    bs_style, bs_type, plus tip_vertex_ids (5,) int64 (thumb, index, middle, ring, little) and
    synthetic_model_version. The left model mirrors the right (x -> -x, reversed winding,
    mirrored poses) but stores shapedirs[:, 0, :] equal to the right's, as real MANO_LEFT does.
    """
    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    right = _right_arrays()
    out = {
        k: (v.copy() if isinstance(v, np.ndarray | scipy.sparse.csc_matrix) else v)
        for k, v in right.items()
    }
    if side == "left":
        mirror = np.array([-1.0, 1.0, 1.0])
        out["v_template"] = out["v_template"] * mirror
        out["J"] = out["J"] * mirror
        out["f"] = out["f"][:, ::-1].copy()
        # real MANO_LEFT quirk: shapedirs[:, 0, :] is not negated (smplx issue #48)
        out["hands_mean"] = _mirror_axis_angle(out["hands_mean"].reshape(15, 3)).reshape(45)
        out["hands_components"] = _mirror_axis_angle(
            out["hands_components"].reshape(45, 15, 3)
        ).reshape(45, 45)
    for key in ("v_template", "J", "hands_mean", "hands_components"):
        out[key] = out[key] + 0.0  # -0.0 -> 0.0, so the bytes never carry a sign of zero
    return out


# --------------------------------------------------------------------------------------------
# A version-proof pickle writer (protocol 2, the layout of the real MANO files)
# --------------------------------------------------------------------------------------------
def _p_int(x: int) -> bytes:
    if 0 <= x < 256:
        return b"K" + bytes([x])
    if 0 <= x < 65536:
        return b"M" + struct.pack("<H", x)
    return b"J" + struct.pack("<i", x)


def _p_str(s: str) -> bytes:
    raw = s.encode("utf-8")
    return b"X" + struct.pack("<I", len(raw)) + raw


def _p_bytes(raw: bytes) -> bytes:
    # Python 2 style string, read back with encoding="latin1" (as every MANO loader does)
    if len(raw) < 256:
        return b"U" + bytes([len(raw)]) + raw
    return b"T" + struct.pack("<i", len(raw)) + raw


def _p_tuple(items: list[bytes]) -> bytes:
    if not items:
        return b")"
    if len(items) <= 3:
        return b"".join(items) + bytes([0x84 + len(items)])
    return b"(" + b"".join(items) + b"t"


def _p_array(a: np.ndarray) -> bytes:
    a = np.ascontiguousarray(a)
    code = {np.float64: "f8", np.uint32: "u4", np.int64: "i8", np.int32: "i4"}[a.dtype.type]
    le = a.astype(a.dtype.newbyteorder("<"), copy=False)
    minus_one = b"J" + struct.pack("<i", -1)
    dtype_state = [_p_int(3), _p_str("<"), b"N", b"N", b"N", minus_one, minus_one, _p_int(0)]
    dtype = b"cnumpy\ndtype\n" + _p_tuple([_p_str(code), b"\x89", b"\x88"]) + b"R"
    dtype += _p_tuple(dtype_state) + b"b"
    head = b"cnumpy.core.multiarray\n_reconstruct\n" + _p_tuple(
        [b"cnumpy\nndarray\n", _p_tuple([_p_int(0)]), _p_bytes(b"b")]
    )
    shape = _p_tuple([_p_int(int(d)) for d in a.shape])
    state = _p_tuple([_p_int(1), shape, dtype, b"\x89", _p_bytes(le.tobytes())])
    return head + b"R" + state + b"b"


def _p_value(x) -> bytes:
    if isinstance(x, scipy.sparse.spmatrix):
        m = scipy.sparse.csc_matrix(x)
        m.sort_indices()
        items = [
            (_p_str("_shape"), _p_tuple([_p_int(int(d)) for d in m.shape])),
            (_p_str("maxprint"), _p_int(50)),
            (_p_str("indptr"), _p_array(m.indptr.astype(np.int32))),
            (_p_str("indices"), _p_array(m.indices.astype(np.int32))),
            (_p_str("data"), _p_array(m.data.astype(np.float64))),
        ]
        body = b"}(" + b"".join(k + v for k, v in items) + b"u"
        return b"cscipy.sparse.csc\ncsc_matrix\n)\x81" + body + b"b"
    if isinstance(x, np.ndarray):
        return _p_array(x)
    if isinstance(x, bool):
        return b"\x88" if x else b"\x89"
    if isinstance(x, int):
        return _p_int(x)
    if isinstance(x, str):
        return _p_str(x)
    raise TypeError(f"cannot pickle {type(x)}")


def synthetic_mano_bytes(side: str = "right") -> bytes:
    """The exact bytes of MANO_RIGHT.pkl / MANO_LEFT.pkl (protocol 2, load with latin1)."""
    model = build_synthetic_mano(side)
    body = b"".join(_p_str(k) + _p_value(v) for k, v in model.items())
    return b"\x80\x02}(" + body + b"u."


def write_synthetic_mano(out_dir: Path) -> list[Path]:
    """Write MANO_RIGHT.pkl and MANO_LEFT.pkl into out_dir; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for side, name in (("right", "MANO_RIGHT.pkl"), ("left", "MANO_LEFT.pkl")):
        path = out_dir / name
        atomic_write_bytes(path, synthetic_mano_bytes(side))
        paths.append(path)
    return paths
