"""The synthetic hand's mesh for one set of dimensions, and its placement in MANO's rest frame.

Built in hand-local millimetres (u distal along the hand, w radial, n dorsal) as rings of
vertices joined by quads; `to_mano_axes` / `world_metres` turn it into MANO's metres.
"""

import functools
import math
from dataclasses import dataclass

import numpy as np

from render.synthetic_mano.exact import cross, dot, libm_pow, mean_rows, unit
from render.synthetic_mano.layout import FINGER_JOINTS, LONG_FINGERS, N_JOINTS, TIP_ORDER

# Real MANO's right-hand rest wrist joint (metres), a published fact; the left one has x negated.
MANO_WRIST_RIGHT_M = (0.09566994, 0.00638343, 0.0061863)

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


def _dir(angle_deg: float, tilt_deg: float) -> np.ndarray:
    """Unit vector (u, w, n): angle_deg towards +w in the palm plane, tilt_deg towards -n."""
    a, t = math.radians(angle_deg), math.radians(tilt_deg)
    return np.array([math.cos(t) * math.cos(a), math.cos(t) * math.sin(a), -math.sin(t)])


# --------------------------------------------------------------------------------------------
# Geometry (hand-local millimetres: u distal along the hand, w radial, n dorsal)
# --------------------------------------------------------------------------------------------
PALM_OWNER = -1


@dataclass(frozen=True)
class _Digit:
    """A digit's skeleton: first joint (3,) mm, unit direction per bone (3, 3), lengths (3,)."""

    origin: np.ndarray
    dirs: np.ndarray
    lengths: np.ndarray


@dataclass(frozen=True)
class Geometry:
    """One build of the hand; the topology is the same for every HandDimensions."""

    verts: np.ndarray  # (V, 3) mm, hand-local
    quads: tuple  # (a, b, c, d) vertex ids, in ring order (orientation fixed later)
    tris: tuple  # fingertip fans
    regressor_sets: tuple  # per joint, the vertex ids whose mean is the joint
    tips: tuple  # apex vertex id per TIP_ORDER digit
    owner: np.ndarray  # (V,) PALM_OWNER, or index into DIGITS for tube vertices
    tube_s: np.ndarray  # (V,) mm along the owning digit from its first joint; NaN on the palm
    palm_column: np.ndarray  # (V,) long-finger column (0..3) of palm vertices, -1 elsewhere
    digits: tuple  # _Digit per DIGITS entry
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
    for c, name in enumerate(LONG_FINGERS):
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
    round_w = np.sign(cos_t) * libm_pow(np.abs(cos_t), e)
    w = centre_w + half_w * ((1.0 - blend) * round_w + blend * col_norm)
    n = half_n * ((1.0 - blend) * libm_pow(sin_t, e) + blend)
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
    row_mcp_u = np.array([_MEAN_FINGERS[LONG_FINGERS[c]].mcp_u * pl for c in row_col])
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
                ids[r, i] = mesh.add(ring[i], PALM_OWNER, column=loop_col[i])[0]
    hole_quads = {(r, i) for r in _PATCH_RINGS[:-1] for i in _PATCH_LOOP[:-1]}
    for r in range(_N_PALM_RINGS - 1):
        for i in range(_LOOP):
            if (r, i) not in hole_quads:
                j = (i + 1) % _LOOP
                mesh.quads.append((ids[r, i], ids[r, j], ids[r + 1, j], ids[r + 1, i]))
    for c in range(len(LONG_FINGERS) - 1):  # one quad across each gap between fingers
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
    name = LONG_FINGERS[c]
    spec = _MEAN_FINGERS[name]
    loop = _column_loop(c)
    mcp_ids = [int(palm[_N_PALM_RINGS - 2, i]) for i in loop]
    j1, j2, j3 = FINGER_JOINTS[name]
    reg[j1] = tuple(mcp_ids)
    origin = mean_rows(mesh.xyz(mcp_ids))  # exactly the regressed MCP joint
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
    p0 = mean_rows(rim)
    middle_u = _MEAN_FINGERS["middle"].mcp_u * dims.palm_length
    on_axis = np.array([p0[0], _KNUCKLE_CENTRE_W * dims.palm_width * min(p0[0] / middle_u, 1), 0])
    (a0, t0), (a1, t1), (a2, t2) = _THUMB_DIRS
    extra = dims.thumb_abduction_deg
    d_meta, d_prox, d_dist = (
        _dir(a0 + extra, t0),
        _dir(a1 + extra / 2, t1),
        _dir(a2 + extra / 4, t2),
    )
    exit_dir = unit(0.6 * unit(p0 - on_axis) + d_meta)  # out of the palm and along the thumb
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
        nail = unit(dot(pad, axis) * axis - pad)
        return cross(nail, axis), nail

    # (centre, axis, s along the thumb from its first joint)
    rings = [
        (c1, exit_dir, dot(c1 - origin, d_meta)),
        ((c1 + j14) / 2, unit(exit_dir + d_meta), dot((c1 + j14) / 2 - origin, d_meta)),
        (j14, unit(d_meta + d_prox), l_meta),
        ((j14 + j15) / 2, d_prox, l_meta + l_prox / 2),
        (j15, unit(d_prox + d_dist), l_meta + l_prox),
        (j15 + 0.45 * l_dist * d_dist, d_dist, l_meta + l_prox + 0.45 * l_dist),
    ]
    # the first ring copies the opening's outline (so nothing twists); the next ones relax to
    # an ellipse whose angles follow the opening's sense of rotation
    side1, nail1 = frame(exit_dir)
    rel = rim - p0
    psi = [math.atan2(dot(r, nail1), dot(r, side1)) for r in rel]
    steps = [math.remainder(psi[(k + 1) % _RING] - psi[k], 2 * math.pi) for k in range(_RING)]
    turn = math.fsum(steps)
    sense = 1.0 if turn > 0 else -1.0
    offsets = [psi[k] - sense * (math.pi / _RING) * (2 * k + 1) for k in range(_RING)]
    start = math.atan2(math.fsum(map(math.sin, offsets)), math.fsum(map(math.cos, offsets)))
    uniform = _uniform_phis(start, sense)
    outline = rel - np.outer([dot(r, exit_dir) for r in rel], exit_dir)
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
        s = l_meta + l_prox + dot(centre - j15, d_dist)
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


def build_geometry(dims: HandDimensions) -> Geometry:
    """The whole hand for one set of dimensions (topology independent of them)."""
    mesh = _Mesh()
    reg: list = [()] * N_JOINTS
    palm = _palm(mesh, dims)
    reg[0] = tuple(int(i) for i in palm[1])  # the wrist: the palm ring through it
    digits, tips = [], {}
    for c, name in enumerate(LONG_FINGERS):
        digit, tips[name] = _long_finger(mesh, dims, c, palm, reg)
        digits.append(digit)
    digit, tips["thumb"], nails = _thumb(mesh, dims, palm, reg)
    digits.append(digit)
    size = dims.size  # uniform scale about the wrist (hand-local origin)
    return Geometry(
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
# Hand-local millimetres -> MANO metres
# --------------------------------------------------------------------------------------------
def to_mano_axes(x: np.ndarray) -> np.ndarray:
    """(..., 3) (u distal, w radial, n dorsal) -> right-hand MANO axes (x, y, z) = (-u, n, w)."""
    return np.stack([-x[..., 0], x[..., 2], x[..., 1]], axis=-1)


@functools.lru_cache(maxsize=1)
def mean_build() -> tuple[Geometry, np.ndarray]:
    """The mean geometry and the translation (mm, world axes) that puts J0 on MANO's wrist."""
    geo = build_geometry(HandDimensions())
    j0 = mean_rows(to_mano_axes(geo.verts[list(geo.regressor_sets[0])]))
    shift = np.array(MANO_WRIST_RIGHT_M) * 1000.0 - j0
    return geo, shift


def world_metres(local_mm: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """(..., 3) hand-local mm -> MANO rest-frame metres, shifted by `shift` (mm, MANO axes)."""
    return (to_mano_axes(local_mm) + shift) / 1000.0
