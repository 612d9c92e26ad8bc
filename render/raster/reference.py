"""Slow, simple float64 reference rasterizer (numpy), written independently of the fast ones.

Its own formulas: homogeneous projection ``p = K @ X``, ``u = p0 / p2``; in absolute pixel
coordinates the sub-triangle areas ``c_k = area(p, next, next2)`` (Cramer's rule), taken with
the sign of ``area(a, b, c)``; a pixel is covered when all three are >= 0; depth
``|area| / sum(c_k / z_k)`` (the barycentrics are ``c_k / |area|``). Faces with a vertex at
``z <= near`` or with zero projected area are skipped. Faces are visited in index order and a
later face wins a pixel only if strictly nearer, so exact ties go to the lower index. Results
agree with the fast backends except at pixels whose centre lies within rounding error of an
edge or where two faces' depths agree to rounding error (tests bound those).
"""

from __future__ import annotations

import numpy as np

from render.raster.inputs import Scene


def _cross(ax, ay, bx, by):
    return ax * by - ay * bx


def rasterize_reference(scene: Scene, near: float):
    """Rasterize a canonical numpy scene.

    Returns (pix_to_face (B,H,W) int32, depth (B,H,W) float64, bary (B,H,W,3) float64
    perspective-correct), background -1.
    """
    verts, faces, kp = scene.verts, scene.faces, scene.kparams
    batch = verts.shape[0]
    H, W = scene.height, scene.width
    p2f = np.full((batch, H, W), -1, dtype=np.int32)
    depth = np.full((batch, H, W), -1.0)
    bary = np.full((batch, H, W, 3), -1.0)
    for b in range(batch):
        h, w = scene.hw_list[b]
        fx, fy, cx, cy = kp[b]
        K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
        hom = verts[b] @ K.T
        z = verts[b, :, 2]
        with np.errstate(divide="ignore", invalid="ignore"):
            u = hom[:, 0] / hom[:, 2]
            v = hom[:, 1] / hom[:, 2]
        zbuf = np.full((h, w), np.inf)
        for f, (ia, ib, ic) in enumerate(faces):
            idx = [ia, ib, ic]
            if np.any(z[idx] <= near):
                continue
            pu, pv, pz = u[idx], v[idx], z[idx]
            area = _cross(pu[1] - pu[0], pv[1] - pv[0], pu[2] - pu[0], pv[2] - pv[0])
            if area == 0.0:
                continue
            j_lo, j_hi = max(int(np.ceil(pu.min())), 0), min(int(np.floor(pu.max())), w - 1)
            i_lo, i_hi = max(int(np.ceil(pv.min())), 0), min(int(np.floor(pv.max())), h - 1)
            if j_lo > j_hi or i_lo > i_hi:
                continue
            ii, jj = np.mgrid[i_lo : i_hi + 1, j_lo : j_hi + 1]
            x, y = jj.astype(np.float64), ii.astype(np.float64)
            sign = 1.0 if area > 0 else -1.0
            sub = np.stack(
                [
                    sign
                    * _cross(
                        pu[(k + 1) % 3] - x,
                        pv[(k + 1) % 3] - y,
                        pu[(k + 2) % 3] - x,
                        pv[(k + 2) % 3] - y,
                    )
                    for k in range(3)
                ]
            )
            inside = np.all(sub >= 0.0, axis=0)
            inv = sub[0] / pz[0] + sub[1] / pz[1] + sub[2] / pz[2]
            with np.errstate(divide="ignore", invalid="ignore"):
                zz = abs(area) / inv
            win = inside & (zz < zbuf[ii, jj])
            wi, wj = ii[win], jj[win]
            zbuf[wi, wj] = zz[win]
            p2f[b, wi, wj] = f
            depth[b, wi, wj] = zz[win]
            pc = sub[:, win] / pz[:, None]
            bary[b, wi, wj] = (pc / pc.sum(axis=0)).T
    return p2f, depth, bary
