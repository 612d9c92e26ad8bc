"""CPU backend: scalar z-buffer kernels compiled by numba, parallel over images (prange).

Implements the formula in :mod:`render.raster.conventions` operation by operation. Compiled
without fastmath (LLVM then neither contracts ``a * b - c`` into a fused multiply-add nor
reassociates; ``tests/test_raster.py`` checks the machine code), so results equal the torch
backend's bit for bit. Three speed-ups leave every result unchanged:

- Transposition: a face taller than wide is scanned column by column, i.e. the formula is run
  with u and v (and rows and columns) swapped. Every edge value is then the exact negation of
  the original (``fl(a - b) == -fl(b - a)``), so the inside test, ``s != 0``, ``z = s / d`` and
  the barycentrics ``(e * iz) / d`` come out bit-identical.
- Row spans: a face row is narrowed to the columns that can pass the exact test, and only
  those are tested (with the full exact test). Only columns farther than a safety margin from
  an edge's estimated crossing, on its failing side, are cut; see :func:`_narrow` for why the
  margin is safe. Needs a certain orientation (``|area2| > 1e-9 * extent**2``, far above the
  rounding error of an edge value, about ``1e-15 * extent**2``) so that one sign test applies;
  slivers and faces narrower than 4 pixels are scanned over their whole bounding box.
- Functions are inlined at numba-IR level (``inline="always"``): numba does not inline across
  compiled functions by itself, and calls per row cost more than the row.

The four kernels (faces, labels, labels with group counts, silhouettes) repeat the same pixel
loop on purpose: each writes only what it needs, and a shared loop with a per-pixel callback or
mode switch costs more than the loop itself in numba.

Array arguments (C-contiguous): verts (B, V, 3) float64 mm, faces (F, 3) int64, kparams
(B, 4) float64 (fx, fy, cx, cy), hw (B, 2) int64; outputs (B, H, W[, 3]) are written in place
within ``[:h_b, :w_b]`` and must come prefilled with the background values.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, prange

_SPAN_MIN_WIDTH = 4  # faces narrower than this (pixels) are scanned without spans
_ORIENTATION_TOL = 1e-9  # |area2| > tol * extent**2: the sign of area2 is certain
_MARGIN = 1e-9  # relative safety margin of row spans, see _narrow

_INLINE = "always"


@njit(cache=True)
def _project(verts_b, kp, near):
    """Per vertex (u, v, 1/z, z > near) for one image; step 1 of the formula."""
    n = verts_b.shape[0]
    fx, fy, cx, cy = kp[0], kp[1], kp[2], kp[3]
    us = np.zeros(n)
    vs = np.zeros(n)
    izs = np.zeros(n)
    ok = np.zeros(n, dtype=np.bool_)
    for k in range(n):
        x = verts_b[k, 0]
        y = verts_b[k, 1]
        z = verts_b[k, 2]
        if z > near:
            ok[k] = True
            us[k] = (fx * x) / z + cx
            vs[k] = (fy * y) / z + cy
            izs[k] = 1.0 / z
    return us, vs, izs, ok


@njit(cache=True, inline=_INLINE)
def _edge(ep, k, dx, dy, sx, sy, sigma, oj, extent):
    """Span data of edge k: ep[k] = (dx, dy, sx, sy, slope, kind, margin), see _narrow."""
    ep[k, 0] = dx
    ep[k, 1] = dy
    ep[k, 2] = sx
    ep[k, 3] = sy
    ep[k, 4] = 0.0
    ep[k, 5] = 0.0
    ep[k, 6] = 0.0
    if dy != 0.0:
        slope = dx / dy
        ep[k, 4] = slope
        # sigma * e grows with the column where sigma * dy < 0: passing pixels form a right ray.
        ep[k, 5] = -1.0 if sigma * dy < 0.0 else 1.0
        ep[k, 6] = _MARGIN * (abs(sx) + abs(slope) * extent + abs(oj) + extent + 1.0)


@njit(cache=True, inline=_INLINE)
def _setup(us, vs, ok, ia, ib, ic, h, w, ep):
    """Steps 2-4 for one face (in the possibly transposed frame), plus span data in ep.

    Returns (skip, i0, i1, j0, j1, oi, oj, sigma, ymid, kmid, ktop, kbot,
    (ax, ay, bx, by, cx, cy), (dx0, dy0, dx1, dy1, dx2, dy2)). sigma is +1/-1 (certain
    orientation, spans on) or 0 (whole bounding box). Edge k is the one opposite vertex k;
    ktop, kmid, kbot order the vertices by relative y, ymid is the middle one's y.
    """
    rel = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    edges = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    if not (ok[ia] and ok[ib] and ok[ic]):
        return True, 0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0, 0, 0, rel, edges
    ua, ub, uc = us[ia], us[ib], us[ic]
    va, vb, vc = vs[ia], vs[ib], vs[ic]
    umin = min(min(ua, ub), uc)
    umax = max(max(ua, ub), uc)
    vmin = min(min(va, vb), vc)
    vmax = max(max(va, vb), vc)
    fj0 = max(np.ceil(umin), 0.0)
    fj1 = min(np.floor(umax), w - 1.0)
    fi0 = max(np.ceil(vmin), 0.0)
    fi1 = min(np.floor(vmax), h - 1.0)
    if not (fj0 <= fj1 and fi0 <= fi1):
        return True, 0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0, 0, 0, rel, edges
    oj = np.floor(umin)
    oi = np.floor(vmin)
    ax = ua - oj
    ay = va - oi
    bx = ub - oj
    by = vb - oi
    cx = uc - oj
    cy = vc - oi
    dx0 = cx - bx
    dy0 = cy - by
    dx1 = ax - cx
    dy1 = ay - cy
    dx2 = bx - ax
    dy2 = by - ay
    area2 = dx2 * (cy - ay) - dy2 * (cx - ax)
    if area2 == 0.0:
        return True, 0, 0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0, 0, 0, rel, edges
    rel = (ax, ay, bx, by, cx, cy)
    edges = (dx0, dy0, dx1, dy1, dx2, dy2)
    extent = max(umax - oj, vmax - oi) + 1.0
    sigma = 0.0
    ymid = 0.0
    ktop, kmid, kbot = 0, 1, 2
    if fj1 - fj0 + 1.0 >= _SPAN_MIN_WIDTH and abs(area2) > _ORIENTATION_TOL * extent * extent:
        sigma = 1.0 if area2 > 0.0 else -1.0
        _edge(ep, 0, dx0, dy0, bx, by, sigma, oj, extent)
        _edge(ep, 1, dx1, dy1, cx, cy, sigma, oj, extent)
        _edge(ep, 2, dx2, dy2, ax, ay, sigma, oj, extent)
        ys = (ay, by, cy)
        if ys[kmid] < ys[ktop]:
            ktop, kmid = kmid, ktop
        if ys[kbot] < ys[kmid]:
            kmid, kbot = kbot, kmid
            if ys[kmid] < ys[ktop]:
                ktop, kmid = kmid, ktop
        ymid = ys[kmid]
    return (
        False,
        int(fi0),
        int(fi1),
        int(fj0),
        int(fj1),
        oi,
        oj,
        sigma,
        ymid,
        kmid,
        ktop,
        kbot,
        rel,
        edges,
    )


@njit(cache=True, inline=_INLINE)
def _prepare(us, vs, ok, ia, ib, ic, h, w, stride, ep):
    """_setup in the frame with fewer rows; adds (row_step, col_step) of the flat address.

    A face taller than wide is set up transposed (u <-> v, h <-> w): its "rows" are image
    columns, and pixel (row r, col c) of that frame lives at ``r * row_step + c * col_step``
    of the flat (H * W) image buffer.
    """
    ua, ub, uc = us[ia], us[ib], us[ic]
    va, vb, vc = vs[ia], vs[ib], vs[ic]
    nrows = min(np.floor(max(max(va, vb), vc)), h - 1.0) - max(np.ceil(min(min(va, vb), vc)), 0.0)
    ncols = min(np.floor(max(max(ua, ub), uc)), w - 1.0) - max(np.ceil(min(min(ua, ub), uc)), 0.0)
    if nrows > ncols:
        return _setup(vs, us, ok, ia, ib, ic, w, h, ep), 1, stride
    return _setup(us, vs, ok, ia, ib, ic, h, w, ep), stride, 1


@njit(cache=True, inline=_INLINE)
def _narrow(lo, hi, py, oj, ep, k):
    """Shrink the column range [lo, hi] of the row at py with edge k.

    Along a row, the exact edge value is the computed ``t - dy * ((j - oj) - sx)``. Where the
    real-valued line crosses zero at column ``X*``, the computed sign is already right for
    columns farther than ``2.1 eps extent`` from ``X*`` (the rounding of ``(j - oj) - sx`` and
    of the product, relative to ``|dy| |X - X*|``); the estimate ``sx + slope * (py - sy) + oj``
    is within ``6 eps (|sx| + |slope| extent + |oj| + 1)`` of ``X*``. Columns are cut only
    beyond ``margin`` (1e-9 times that sum plus extent: about a million times the two errors)
    on the failing side, so no pixel that the exact test would pass is ever skipped.
    """
    kind = ep[k, 5]
    if kind == 0.0:
        return lo, hi
    x = (ep[k, 2] + ep[k, 4] * (py - ep[k, 3])) + oj
    if kind < 0.0:  # passing pixels form a right ray
        c = np.ceil(x - ep[k, 6])
        if c > lo:  # False for NaN
            lo = hi + 1 if c > hi + 1 else int(c)
    else:  # passing pixels form a left ray
        c = np.floor(x + ep[k, 6])
        if c < hi:
            hi = lo - 1 if c < lo - 1 else int(c)
    return lo, hi


@njit(cache=True, inline=_INLINE)
def _row_span(i, oi, oj, j0, j1, sigma, ymid, kmid, ktop, kbot, ep):
    """Columns [lo, hi] of row i that can hold pixels of the face (whole row if sigma is 0).

    Narrowed by the long edge (opposite the middle vertex) and the short edge on this row's
    side of the middle vertex; the pixel loop still runs the full exact test, so using any
    subset of edges is safe.
    """
    if sigma == 0.0:
        return j0, j1
    py = i - oi
    lo, hi = _narrow(j0, j1, py, oj, ep, kmid)
    return _narrow(lo, hi, py, oj, ep, kbot if py <= ymid else ktop)


@njit(cache=True, parallel=True, nogil=True)
def raster_faces(verts, faces, kparams, hw, near, pix_to_face, depth, bary, with_bary):
    """Fill pix_to_face (B,H,W) int32, depth (B,H,W) float64 and, if with_bary, bary
    (B,H,W,3) float32 (pass a dummy otherwise)."""
    nfaces = faces.shape[0]
    stride = pix_to_face.shape[2]
    for b in prange(verts.shape[0]):
        h = hw[b, 0]
        w = hw[b, 1]
        us, vs, izs, ok = _project(verts[b], kparams[b], near)
        ep = np.zeros((3, 7))
        zbuf = np.full(h * stride, np.inf)
        p2f = pix_to_face[b].reshape(-1)
        dep = depth[b].reshape(-1)
        bar = bary.reshape(-1)
        boff = b * (bary.shape[1] * bary.shape[2] * 3) if with_bary else 0
        for f in range(nfaces):
            ia, ib, ic = faces[f, 0], faces[f, 1], faces[f, 2]
            setup, rs, cs = _prepare(us, vs, ok, ia, ib, ic, h, w, stride, ep)
            skip, i0, i1, j0, j1, oi, oj, sigma, ymid, kmid, ktop, kbot, rel, edges = setup
            if skip:
                continue
            ax, ay, bx, by, cx, cy = rel
            dx0, dy0, dx1, dy1, dx2, dy2 = edges
            iza, izb, izc = izs[ia], izs[ib], izs[ic]
            for i in range(i0, i1 + 1):
                lo, hi = _row_span(i, oi, oj, j0, j1, sigma, ymid, kmid, ktop, kbot, ep)
                py = i - oi
                t0 = dx0 * (py - by)
                t1 = dx1 * (py - cy)
                t2 = dx2 * (py - ay)
                for j in range(lo, hi + 1):
                    px = j - oj
                    e0 = t0 - dy0 * (px - bx)
                    e1 = t1 - dy1 * (px - cx)
                    e2 = t2 - dy2 * (px - ax)
                    if not (
                        (e0 >= 0.0 and e1 >= 0.0 and e2 >= 0.0)
                        or (e0 <= 0.0 and e1 <= 0.0 and e2 <= 0.0)
                    ):
                        continue
                    s = (e0 + e1) + e2
                    if s == 0.0:
                        continue
                    d = (e0 * iza + e1 * izb) + e2 * izc
                    z = s / d
                    a = i * rs + j * cs
                    if z < zbuf[a]:
                        zbuf[a] = z
                        p2f[a] = f
                        dep[a] = z
                        if with_bary:
                            bar[boff + 3 * a] = np.float32((e0 * iza) / d)
                            bar[boff + 3 * a + 1] = np.float32((e1 * izb) / d)
                            bar[boff + 3 * a + 2] = np.float32((e2 * izc) / d)


@njit(cache=True, parallel=True, nogil=True)
def raster_labels(verts, faces, face_labels, kparams, hw, near, labels):
    """Fill labels (B,H,W) uint8 with face_labels of the visible face (prefilled with 0)."""
    nfaces = faces.shape[0]
    stride = labels.shape[2]
    for b in prange(verts.shape[0]):
        h = hw[b, 0]
        w = hw[b, 1]
        us, vs, izs, ok = _project(verts[b], kparams[b], near)
        ep = np.zeros((3, 7))
        zbuf = np.full(h * stride, np.inf)
        out = labels[b].reshape(-1)
        for f in range(nfaces):
            ia, ib, ic = faces[f, 0], faces[f, 1], faces[f, 2]
            setup, rs, cs = _prepare(us, vs, ok, ia, ib, ic, h, w, stride, ep)
            skip, i0, i1, j0, j1, oi, oj, sigma, ymid, kmid, ktop, kbot, rel, edges = setup
            if skip:
                continue
            ax, ay, bx, by, cx, cy = rel
            dx0, dy0, dx1, dy1, dx2, dy2 = edges
            iza, izb, izc = izs[ia], izs[ib], izs[ic]
            lab = face_labels[f]
            for i in range(i0, i1 + 1):
                lo, hi = _row_span(i, oi, oj, j0, j1, sigma, ymid, kmid, ktop, kbot, ep)
                py = i - oi
                t0 = dx0 * (py - by)
                t1 = dx1 * (py - cy)
                t2 = dx2 * (py - ay)
                for j in range(lo, hi + 1):
                    px = j - oj
                    e0 = t0 - dy0 * (px - bx)
                    e1 = t1 - dy1 * (px - cx)
                    e2 = t2 - dy2 * (px - ax)
                    if not (
                        (e0 >= 0.0 and e1 >= 0.0 and e2 >= 0.0)
                        or (e0 <= 0.0 and e1 <= 0.0 and e2 <= 0.0)
                    ):
                        continue
                    s = (e0 + e1) + e2
                    if s == 0.0:
                        continue
                    z = s / ((e0 * iza + e1 * izb) + e2 * izc)
                    a = i * rs + j * cs
                    if z < zbuf[a]:
                        zbuf[a] = z
                        out[a] = lab


@njit(cache=True, inline=_INLINE)
def _row_range(vs, ok, h):
    """Image rows [r_lo, r_hi] that the vertices in front of the near plane span, clipped to
    the image (r_lo > r_hi: none); a drawn face's pixels lie in its vertices' box. With the
    u coordinates and the width: the columns."""
    vmin, vmax = np.inf, -np.inf
    for k in range(vs.shape[0]):
        if ok[k]:
            vmin = min(vmin, vs[k])
            vmax = max(vmax, vs[k])
    if vmin > vmax:
        return 0, -1
    # clamped in float first: int() of a far-off coordinate would overflow
    lo = min(max(np.ceil(vmin), 0.0), float(h))
    hi = max(min(np.floor(vmax), h - 1.0), -1.0)
    return int(lo), int(hi)


@njit(cache=True, inline=_INLINE)
def _group_drawable(faces, ok, f0, f1):
    """Whether some face of [f0, f1) has its three vertices in front of the near plane (a
    face that has not is never drawn)."""
    for f in range(f0, f1):
        if ok[faces[f, 0]] and ok[faces[f, 1]] and ok[faces[f, 2]]:
            return True
    return False


# Bits of the per-pixel coverage byte of raster_labels_counts.
_COVERED = (1, 2)  # covered by a face of group 0 / group 1
_WON = 4  # some face won the depth test here
_WON_BY_1 = 8  # ... and it belongs to group 1


@njit(cache=True, parallel=True, nogil=True)
def raster_labels_counts(verts, faces, face_labels, split, kparams, hw, near, labels, counts):
    """raster_labels plus per-image pixel counts of two face groups (faces [0, split) and
    [split, F)), from the same pass: counts (B, 4) int64 = pixels whose visible face is in
    group 0, in group 1; pixels covered by faces of both groups, of either group (coverage:
    the inside test alone, no depth, as raster_silhouette of each group's faces)."""
    nfaces = faces.shape[0]
    stride = labels.shape[2]
    for b in prange(verts.shape[0]):
        h = hw[b, 0]
        w = hw[b, 1]
        us, vs, izs, ok = _project(verts[b], kparams[b], near)
        ep = np.zeros((3, 7))
        zbuf = np.full(h * stride, np.inf)
        # coverage only over the rows the drawable vertices span (every face lies inside)
        r_lo, r_hi = _row_range(vs, ok, h)
        c_lo, c_hi = _row_range(us, ok, w)  # the same box's columns: only they are counted
        base = r_lo * stride
        # Coverage bytes only where both groups can draw: with one group, its coverage is
        # the pixels it wins (counted from the z-buffer below), at no cost per fragment.
        both_groups = _group_drawable(faces, ok, 0, split) and _group_drawable(
            faces, ok, split, nfaces
        )
        rows = max(r_hi - r_lo + 1, 0) if both_groups else 0
        cover = np.zeros(rows * stride, dtype=np.uint8)
        out = labels[b].reshape(-1)
        for f in range(nfaces):
            ia, ib, ic = faces[f, 0], faces[f, 1], faces[f, 2]
            setup, rs, cs = _prepare(us, vs, ok, ia, ib, ic, h, w, stride, ep)
            skip, i0, i1, j0, j1, oi, oj, sigma, ymid, kmid, ktop, kbot, rel, edges = setup
            if skip:
                continue
            ax, ay, bx, by, cx, cy = rel
            dx0, dy0, dx1, dy1, dx2, dy2 = edges
            iza, izb, izc = izs[ia], izs[ib], izs[ic]
            lab = face_labels[f]
            group = 1 if f >= split else 0
            bit = _COVERED[group]
            won = _WON | (_WON_BY_1 if group else 0)
            for i in range(i0, i1 + 1):
                lo, hi = _row_span(i, oi, oj, j0, j1, sigma, ymid, kmid, ktop, kbot, ep)
                py = i - oi
                t0 = dx0 * (py - by)
                t1 = dx1 * (py - cy)
                t2 = dx2 * (py - ay)
                for j in range(lo, hi + 1):
                    px = j - oj
                    e0 = t0 - dy0 * (px - bx)
                    e1 = t1 - dy1 * (px - cx)
                    e2 = t2 - dy2 * (px - ax)
                    if not (
                        (e0 >= 0.0 and e1 >= 0.0 and e2 >= 0.0)
                        or (e0 <= 0.0 and e1 <= 0.0 and e2 <= 0.0)
                    ):
                        continue
                    s = (e0 + e1) + e2
                    if s == 0.0:
                        continue
                    a = i * rs + j * cs
                    z = s / ((e0 * iza + e1 * izb) + e2 * izc)
                    if z < zbuf[a]:
                        zbuf[a] = z
                        out[a] = lab
                        if both_groups:
                            cover[a - base] = (cover[a - base] & 3) | bit | won
                    elif both_groups:
                        cover[a - base] |= bit
        vis0 = vis1 = both = either = 0
        if not both_groups:  # one group (or none) drew: it covers exactly what it won
            for i in range(r_lo, r_hi + 1):
                for j in range(i * stride + c_lo, i * stride + c_hi + 1):
                    if zbuf[j] < np.inf:
                        either += 1
            if _group_drawable(faces, ok, split, nfaces):
                vis1 = either
            else:
                vis0 = either
        for i in range(rows):
            for j in range(i * stride + c_lo, i * stride + c_hi + 1):
                c = cover[j]
                if c == 0:
                    continue
                either += 1
                if c & 3 == 3:
                    both += 1
                if c & _WON_BY_1:
                    vis1 += 1
                elif c & _WON:
                    vis0 += 1
        counts[b, 0] = vis0
        counts[b, 1] = vis1
        counts[b, 2] = both
        counts[b, 3] = either


@njit(cache=True, parallel=True, nogil=True)
def raster_silhouette(verts, faces, kparams, hw, near, mask):
    """Fill mask (B,H,W) bool with coverage by any face (prefilled with False); no depth."""
    nfaces = faces.shape[0]
    stride = mask.shape[2]
    for b in prange(verts.shape[0]):
        h = hw[b, 0]
        w = hw[b, 1]
        us, vs, _, ok = _project(verts[b], kparams[b], near)
        ep = np.zeros((3, 7))
        out = mask[b].reshape(-1)
        for f in range(nfaces):
            ia, ib, ic = faces[f, 0], faces[f, 1], faces[f, 2]
            setup, rs, cs = _prepare(us, vs, ok, ia, ib, ic, h, w, stride, ep)
            skip, i0, i1, j0, j1, oi, oj, sigma, ymid, kmid, ktop, kbot, rel, edges = setup
            if skip:
                continue
            ax, ay, bx, by, cx, cy = rel
            dx0, dy0, dx1, dy1, dx2, dy2 = edges
            for i in range(i0, i1 + 1):
                lo, hi = _row_span(i, oi, oj, j0, j1, sigma, ymid, kmid, ktop, kbot, ep)
                py = i - oi
                t0 = dx0 * (py - by)
                t1 = dx1 * (py - cy)
                t2 = dx2 * (py - ay)
                for j in range(lo, hi + 1):
                    a = i * rs + j * cs
                    if out[a]:
                        continue  # already covered: coverage needs no depth test
                    px = j - oj
                    e0 = t0 - dy0 * (px - bx)
                    e1 = t1 - dy1 * (px - cx)
                    e2 = t2 - dy2 * (px - ax)
                    if (
                        (e0 >= 0.0 and e1 >= 0.0 and e2 >= 0.0)
                        or (e0 <= 0.0 and e1 <= 0.0 and e2 <= 0.0)
                    ) and (e0 + e1) + e2 != 0.0:
                        out[a] = True


@njit(cache=True, parallel=True)
def _first_launch(n):  # pragma: no cover - numba
    total = 0
    for i in prange(n):
        total += i
    return total


def start_threading_layer() -> str:
    """The threading layer numba's parallel kernels run on ("omp", "tbb" or "workqueue").
    numba picks it at the first parallel launch, so this launches a trivial kernel if none has
    run yet. Only "omp" and "tbb" take parallel kernels launched from several threads at once."""
    try:
        return numba.threading_layer()
    except ValueError:  # no parallel kernel has run in this process yet
        _first_launch(2)
        return numba.threading_layer()
