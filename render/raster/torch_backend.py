"""Vectorised torch backend (float64), on CPU or CUDA: the device follows the inputs.

Implements :mod:`render.raster.conventions` with one elementwise op per formula step (eager
torch never fuses ``a * b - c`` into an FMA and never reassociates elementwise chains), so its
results equal the numba kernels' bit for bit. Work is a list of (image, face) pairs, each
expanded to the pixels of its clipped bounding box and processed in chunks of at most about
``chunk`` candidates; per-pixel winners are found with ``scatter_reduce`` (amin over depth,
then amin over face index among equal depths). No Python loop runs over pixels or faces.
"""

from __future__ import annotations

import torch

from render.raster.inputs import Scene

# Columns of the per-(image, face) parameter table.
_OI, _OJ, _AX, _AY, _BX, _BY, _CX, _CY = range(8)
_DX0, _DY0, _DX1, _DY1, _DX2, _DY2, _IZA, _IZB, _IZC = range(8, 17)


def _face_table(scene: Scene, near: float):
    """Steps 1-4 for every (image, face): params (B*F, 17), i0, j0, nh, nw (B*F,) int64."""
    verts, faces, kp, hw = scene.verts, scene.faces, scene.kparams, scene.hw
    x, y, z = verts.unbind(-1)
    fx, fy, cx, cy = (t[:, None] for t in kp.unbind(-1))
    vok = z > near
    # Projection; values at vertices behind the near plane are never used (faces skipped).
    zs = torch.where(vok, z, torch.ones_like(z))
    us = (fx * x) / zs + cx
    vs = (fy * y) / zs + cy
    izs = torch.ones_like(zs) / zs
    fa, fb, fc = faces[:, 0], faces[:, 1], faces[:, 2]
    ua, ub, uc = us[:, fa], us[:, fb], us[:, fc]
    va, vb, vc = vs[:, fa], vs[:, fb], vs[:, fc]
    ok = vok[:, fa] & vok[:, fb] & vok[:, fc]
    umin = torch.minimum(torch.minimum(ua, ub), uc)
    umax = torch.maximum(torch.maximum(ua, ub), uc)
    vmin = torch.minimum(torch.minimum(va, vb), vc)
    vmax = torch.maximum(torch.maximum(va, vb), vc)
    h = hw[:, 0:1].to(torch.float64)
    w = hw[:, 1:2].to(torch.float64)
    fj0 = torch.clamp(torch.ceil(umin), min=0.0)
    fj1 = torch.minimum(torch.floor(umax), w - 1.0)
    fi0 = torch.clamp(torch.ceil(vmin), min=0.0)
    fi1 = torch.minimum(torch.floor(vmax), h - 1.0)
    oj = torch.floor(umin)
    oi = torch.floor(vmin)
    ax, ay = ua - oj, va - oi
    bx, by = ub - oj, vb - oi
    cx_, cy_ = uc - oj, vc - oi
    dx0, dy0 = cx_ - bx, cy_ - by
    dx1, dy1 = ax - cx_, ay - cy_
    dx2, dy2 = bx - ax, by - ay
    area2 = dx2 * (cy_ - ay) - dy2 * (cx_ - ax)
    ok = ok & (fj0 <= fj1) & (fi0 <= fi1) & (area2 != 0.0)
    zero = torch.zeros_like(fj0)
    i0 = torch.where(ok, fi0, zero).to(torch.int64)
    j0 = torch.where(ok, fj0, zero).to(torch.int64)
    nh = torch.where(ok, fi1 - fi0 + 1.0, zero).to(torch.int64)
    nw = torch.where(ok, fj1 - fj0 + 1.0, zero).to(torch.int64)
    iza, izb, izc = izs[:, fa], izs[:, fb], izs[:, fc]
    cols = (oi, oj, ax, ay, bx, by, cx_, cy_, dx0, dy0, dx1, dy1, dx2, dy2, iza, izb, izc)
    params = torch.stack(cols, dim=-1).reshape(-1, len(cols))
    return params, i0.reshape(-1), j0.reshape(-1), nh.reshape(-1), nw.reshape(-1)


def _edges(prm: torch.Tensor, i: torch.Tensor, j: torch.Tensor):
    """Step 5 for candidates: edge values e0, e1, e2 (N,) at pixels (i, j) of faces prm (N, 17)."""
    py = i.to(torch.float64) - prm[:, _OI]
    px = j.to(torch.float64) - prm[:, _OJ]
    e0 = prm[:, _DX0] * (py - prm[:, _BY]) - prm[:, _DY0] * (px - prm[:, _BX])
    e1 = prm[:, _DX1] * (py - prm[:, _CY]) - prm[:, _DY1] * (px - prm[:, _CX])
    e2 = prm[:, _DX2] * (py - prm[:, _AY]) - prm[:, _DY2] * (px - prm[:, _AX])
    return e0, e1, e2


def _denominator(prm: torch.Tensor, e0, e1, e2) -> torch.Tensor:
    """Step 7: d = (e0 * iza + e1 * izb) + e2 * izc."""
    return (e0 * prm[:, _IZA] + e1 * prm[:, _IZB]) + e2 * prm[:, _IZC]


def _chunks(counts: torch.Tensor, chunk: int) -> list[tuple[int, int, int]]:
    """Split pairs into runs of about ``chunk`` candidates: [(start, stop, n_candidates)]."""
    if counts.numel() == 0:
        return []
    cum = torch.cumsum(counts, 0)
    total = int(cum[-1])
    starts = cum - counts
    marks = torch.arange(0, total, chunk, device=counts.device, dtype=torch.int64)
    bounds = torch.searchsorted(starts, marks, right=False)
    bounds = torch.unique(torch.cat([bounds, bounds.new_tensor([counts.numel()])]))
    edges = bounds.tolist()
    if edges[0] != 0:
        edges = [0, *edges]
    lo = torch.cat([starts, cum[-1:]])[torch.as_tensor(edges, device=counts.device)].tolist()
    return [(edges[k], edges[k + 1], lo[k + 1] - lo[k]) for k in range(len(edges) - 1)]


def _candidates(pairs, counts, i0, j0, nw, n: int):
    """Expand pairs (P,) with counts (P,) to n (pair position, i, j) candidates."""
    dev = pairs.device
    pos = torch.repeat_interleave(torch.arange(pairs.numel(), device=dev), counts, output_size=n)
    first = torch.cumsum(counts, 0) - counts
    k = torch.arange(n, device=dev, dtype=torch.int64) - first[pos]
    width = nw[pos]
    r = torch.div(k, width, rounding_mode="floor")
    i = i0[pos] + r
    j = j0[pos] + (k - r * width)
    return pos, i, j


def rasterize_scene(scene: Scene, near: float, mode: str, chunk: int, with_bary: bool = False):
    """Rasterize a canonical torch scene. mode: "faces" | "labels" | "silhouette".

    Returns (pix_to_face int32, depth float64, bary float32 or None) for "faces",
    labels (B,H,W) uint8 for "labels", mask (B,H,W) bool for "silhouette".
    """
    verts = scene.verts
    dev = verts.device
    batch, nfaces = verts.shape[0], scene.faces.shape[0]
    H, W = scene.height, scene.width
    npix = batch * H * W
    params, i0, j0, nh, nw = _face_table(scene, near)
    pairs = torch.nonzero(nh > 0).squeeze(1)
    counts = (nh * nw)[pairs]
    img = torch.div(pairs, nfaces, rounding_mode="floor") if nfaces else pairs
    face = pairs - img * nfaces

    if mode == "silhouette":
        mask = torch.zeros(npix, dtype=torch.bool, device=dev)
    else:
        zbuf = torch.full((npix,), float("inf"), dtype=torch.float64, device=dev)
        fbuf = torch.full((npix,), -1, dtype=torch.int64, device=dev)
    big = torch.iinfo(torch.int64).max

    for start, stop, n in _chunks(counts, chunk):
        sl = slice(start, stop)
        pos, i, j = _candidates(
            pairs[sl], counts[sl], i0[pairs[sl]], j0[pairs[sl]], nw[pairs[sl]], n
        )
        prm = params[pairs[sl][pos]]
        e0, e1, e2 = _edges(prm, i, j)
        inside = ((e0 >= 0.0) & (e1 >= 0.0) & (e2 >= 0.0)) | (
            (e0 <= 0.0) & (e1 <= 0.0) & (e2 <= 0.0)
        )
        s = (e0 + e1) + e2
        inside &= s != 0.0
        keep = torch.nonzero(inside).squeeze(1)
        lin = (img[sl][pos[keep]] * H + i[keep]) * W + j[keep]
        if mode == "silhouette":
            mask[lin] = True
            continue
        prm, e0, e1, e2, s = prm[keep], e0[keep], e1[keep], e2[keep], s[keep]
        z = s / _denominator(prm, e0, e1, e2)
        fid = face[sl][pos[keep]]
        before = zbuf[lin]
        zbuf.scatter_reduce_(0, lin, z, reduce="amin", include_self=True)
        # Faces of this chunk all have larger indices than earlier chunks': they win only by
        # being strictly nearer; among this chunk's equal nearest depths the lowest index wins.
        win = torch.nonzero((z == zbuf[lin]) & (z < before)).squeeze(1)
        lw = lin[win]
        fbuf[lw] = big
        fbuf.scatter_reduce_(0, lw, fid[win], reduce="amin", include_self=True)

    shape = (batch, H, W)
    if mode == "silhouette":
        return mask.reshape(shape)
    hit = fbuf >= 0
    if mode == "labels":
        labels = torch.zeros(npix, dtype=torch.uint8, device=dev)
        if scene.face_labels.numel():
            labels = torch.where(hit, scene.face_labels[fbuf.clamp(min=0)], labels)
        return labels.reshape(shape)
    depth = torch.where(hit, zbuf, torch.full_like(zbuf, -1.0))
    bary = None
    if with_bary:
        bary = torch.full((npix, 3), -1.0, dtype=torch.float32, device=dev)
        pix = torch.nonzero(hit).squeeze(1)
        f = fbuf[pix]
        b = torch.div(pix, H * W, rounding_mode="floor")
        rem = pix - b * (H * W)
        i = torch.div(rem, W, rounding_mode="floor")
        j = rem - i * W
        prm = params[b * nfaces + f]
        e0, e1, e2 = _edges(prm, i, j)
        d = _denominator(prm, e0, e1, e2)
        vals = torch.stack(
            [(e0 * prm[:, _IZA]) / d, (e1 * prm[:, _IZB]) / d, (e2 * prm[:, _IZC]) / d], dim=-1
        )
        bary[pix] = vals.to(torch.float32)
        bary = bary.reshape(*shape, 3)
    return fbuf.to(torch.int32).reshape(shape), depth.reshape(shape), bary
