"""The one exact rasterization formula shared by every backend (numba, torch).

Both fast backends evaluate exactly these IEEE-754 float64 operations, in this order, with no
fused multiply-add and no reassociation, so their outputs are bit-identical. Each step is a
single correctly rounded operation (``+ - * /``, ``floor``, ``ceil``, ``min``, ``max``).

Inputs per image: camera-space vertices ``(X, Y, Z)`` in mm (OpenCV: +x right, +y down,
+z forward), intrinsics ``fx, fy, cx, cy`` (zero skew), image size ``(h, w)``.

1. Projection, per vertex::

       u = (fx * X) / Z + cx        v = (fy * Y) / Z + cy        iz = 1.0 / Z

2. Face skip rules: a face is skipped if any of its vertices has ``Z <= near`` (settings,
   default 1e-6 mm: no near-plane clipping, faces crossing it vanish whole), if its pixel
   bounding box is empty, or if its doubled signed area (step 4) is exactly 0.

3. Bounding box and corner, for a face with vertices ``a, b, c``::

       umin = min(min(ua, ub), uc)   (likewise umax, vmin, vmax)
       oj = floor(umin)              oi = floor(vmin)          <- the corner, NOT clipped
       j0 = max(ceil(umin), 0)       j1 = min(floor(umax), w - 1)
       i0 = max(ceil(vmin), 0)       i1 = min(floor(vmax), h - 1)

   The corner does not depend on the image size, so a pixel's result never depends on how
   large the image is (per-image sizes, crops).

4. Vertices relative to the corner and per-face edge coefficients::

       ax = ua - oj   ay = va - oi   (likewise b, c)
       dx0 = cx - bx  dy0 = cy - by    (edge b->c, opposite a)
       dx1 = ax - cx  dy1 = ay - cy    (edge c->a, opposite b)
       dx2 = bx - ax  dy2 = by - ay    (edge a->b, opposite c)
       area2 = dx2 * (cy - ay) - dy2 * (cx - ax)

5. Edge functions of pixel (row i, col j), evaluated directly (never incrementally), with
   ``py = float(i) - oi`` and ``px = float(j) - oj`` (exact small integers)::

       e0 = dx0 * (py - by) - dy0 * (px - bx)
       e1 = dx1 * (py - cy) - dy1 * (px - cx)
       e2 = dx2 * (py - ay) - dy2 * (px - ax)

   (the first product ``dxk * (py - .)`` may be hoisted per row: same value. An
   implementation may also evaluate the exact negation of all three, e.g. with u and v
   swapped; since ``fl(a - b) == -fl(b - a)``, every decision and value below is unchanged.)

6. Coverage (no back-face culling, no top-left rule, a centre on an edge is inside)::

       inside = (e0 >= 0 and e1 >= 0 and e2 >= 0) or (e0 <= 0 and e1 <= 0 and e2 <= 0)
       s = (e0 + e1) + e2 ;  inside = inside and s != 0

7. Depth, perspective-correct (screen-space barycentrics ``ek / s`` interpolate ``1/Z``)::

       d = (e0 * iza + e1 * izb) + e2 * izc
       z = s / d

8. Visibility: per pixel the smallest ``z`` wins; an exact tie goes to the LOWER face index
   (faces are visited in increasing index; a later face replaces only if ``z < zbest``).

9. Barycentrics (optional output) are perspective-correct, computed for the winning face::

       bary_k = float32((ek * izk) / d)      k = 0 (a), 1 (b), 2 (c)

Bumping :data:`CONVENTION_VERSION` signals that masks made under an older formula may differ.
"""

CONVENTION_VERSION = 1
"""Version of the formula above; record it next to any cache built with the rasterizer."""

DEFAULT_NEAR_MM = 1e-6
"""Faces with any vertex at camera ``Z <= near`` (mm) are skipped."""

BACKGROUND_FACE = -1
BACKGROUND_DEPTH = -1.0
BACKGROUND_BARY = -1.0
BACKGROUND_LABEL = 0

BACKENDS = ("auto", "numba", "torch", "reference")
