"""Per-pixel loops of the synthetic pictures, compiled by numba: one pass over an image each.

The same maths as a few numpy expressions, but numpy would make a dozen full-image temporaries
per picture, which was most of the generator's time. Scalar code with no threads and no
fastmath, so a picture's bytes depend only on its inputs, never on the process or worker count.

Arrays are C-contiguous unless said otherwise; images are (H, W, 3) float32 in 0..255.
"""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
from numba import njit

# Standard normal quantiles at the centres of 256 equal-probability bins: one random byte per
# value gives sensor noise close to Gaussian (sigma 0.98, tails cut at 2.9) at a fraction of
# the cost of a normal draw.
NOISE_LUT = np.array(
    [NormalDist().inv_cdf((k + 0.5) / 256.0) for k in range(256)], dtype=np.float32
)


@njit(cache=True)
def smooth_background(u, v, grid, alpha, out):  # pragma: no cover - compiled
    """out[y, x, c] = clip(sum_r u[y, c, r] * v[r, x], 0, 255), then mixed with a texture.

    u: (H, 3, R) float32 row factors; v: (R, W) float32 column factors (gradients, Gaussian
    blobs and stripes are all sums of such products); grid: (GH, GW, 3) float32 coarse texture
    colours, stretched over the image with smooth (smoothstep) interpolation and used when
    alpha > 0 as out = (1 - alpha) * out + alpha * texture; out: (H, W, 3) float32, written.
    """
    h, w = out.shape[0], out.shape[1]
    gh, gw = grid.shape[0], grid.shape[1]
    n_terms = v.shape[0]
    keep = np.float32(1.0) - alpha
    # where each column falls in the texture grid: left cell and smoothstep weight
    gx0 = np.zeros(w, dtype=np.int64)
    gtx = np.zeros(w, dtype=np.float32)
    for x in range(w):
        gx = x * (gw - 1) / max(w - 1, 1)
        x0 = min(int(gx), max(gw - 2, 0))
        t = gx - x0
        gx0[x] = x0
        gtx[x] = t * t * (3.0 - 2.0 * t)
    plane = np.empty((3, w), dtype=np.float32)
    for y in range(h):
        plane[:] = 0.0
        for c in range(3):
            dst = plane[c]
            for r in range(n_terms):
                coef = u[y, c, r]
                src = v[r]
                for x in range(w):  # contiguous: vectorised
                    dst[x] += coef * src[x]
        gy = y * (gh - 1) / max(h - 1, 1)
        y0 = min(int(gy), max(gh - 2, 0))
        y1 = min(y0 + 1, gh - 1)
        ty = gy - y0
        ty = np.float32(ty * ty * (3.0 - 2.0 * ty))
        for x in range(w):
            x0 = gx0[x]
            x1 = min(x0 + 1, gw - 1)
            tx = gtx[x]
            for c in range(3):
                acc = min(max(plane[c, x], np.float32(0.0)), np.float32(255.0))
                if alpha > 0:
                    top = grid[y0, x0, c] + tx * (grid[y0, x1, c] - grid[y0, x0, c])
                    bottom = grid[y1, x0, c] + tx * (grid[y1, x1, c] - grid[y1, x0, c])
                    acc = keep * acc + alpha * (top + ty * (bottom - top))
                out[y, x, c] = acc


@njit(cache=True)
def paint_shape(img, box, centre, radii, ellipse, colour, opacity):  # pragma: no cover
    """Paint a box or an ellipse over `img` (H, W, 3) float32, in place.

    box: (4,) int64 rows i0:i1, columns j0:j1 (inside the image); centre (cy, cx) and radii
    (ry, rx): (2,) float64 pixels; ellipse: else a box; colour: (3,) float64; opacity: 0..1.
    """
    for i in range(box[0], box[1]):
        dy = (i - centre[0]) / radii[0]
        for j in range(box[2], box[3]):
            dx = (j - centre[1]) / radii[1]
            inside = dy * dy + dx * dx <= 1.0 if ellipse else abs(dy) <= 1.0 and abs(dx) <= 1.0
            if inside:
                for c in range(3):
                    img[i, j, c] = np.float32((1.0 - opacity) * img[i, j, c] + opacity * colour[c])


@njit(cache=True)
def blur(image, taps, out):  # pragma: no cover - compiled
    """Separable blur of `image` (H, W, 3) float32 by the odd 1-D kernel `taps` (K,) float32
    (along rows, then columns; edges repeat the border pixel) into `out` (H, W, 3) float32.

    Rows are padded first so that every inner loop runs over a contiguous slice with a
    non-negative index, which LLVM vectorises (indexing with a possibly negative index does not).
    """
    h, w = image.shape[0], image.shape[1]
    half = taps.shape[0] // 2
    n = w * 3
    flat = image.reshape(h, n)
    pad = np.empty((h, n + 6 * half), dtype=np.float32)
    for i in range(h):
        for m in range(3 * half):
            pad[i, m] = flat[i, m % 3]
            pad[i, n + 3 * half + m] = flat[i, n - 3 + m % 3]
        pad[i, 3 * half : 3 * half + n] = flat[i]
    rows = np.zeros((h, n), dtype=np.float32)
    for i in range(h):
        dst = rows[i]
        for k in range(taps.shape[0]):
            t = taps[k]
            src = pad[i, 3 * k : 3 * k + n]
            for m in range(n):
                dst[m] += t * src[m]
    res = out.reshape(h, n)
    res[:] = 0.0
    for i in range(h):
        dst = res[i]
        for k in range(taps.shape[0]):
            t = taps[k]
            src = rows[min(max(i + k - half, 0), h - 1)]
            for m in range(n):
                dst[m] += t * src[m]


@njit(cache=True)
def shade_into(pix_to_face, bary, faces, normals, albedo, gloss, light, out):  # pragma: no cover
    """Two-sided Blinn-Phong shading of the foreground pixels, written into `out`.

    pix_to_face: (H, W) int32, -1 background (any strides); bary: (H, W, 3) float32
    barycentrics (any strides); faces: (F, 3) int64; normals: (V, 3) float64 camera-frame unit
    vertex normals; albedo: (F, 3) float32 in 0..1; gloss: (F,) float32 highlight strength of
    each face relative to the light's (1: skin; nails shine more); light: (20,) float64: key
    direction, fill direction, half vector (unit, camera frame, towards the light), key, fill
    and ambient RGB, specular strength, shininess; out: (H, W, 3) float32, background pixels
    untouched.
    """
    h, w = pix_to_face.shape
    for i in range(h):
        for j in range(w):
            f = pix_to_face[i, j]
            if f < 0:
                continue
            nx = 0.0
            ny = 0.0
            nz = 0.0
            for k in range(3):
                vtx = faces[f, k]
                b = bary[i, j, k]
                nx += b * normals[vtx, 0]
                ny += b * normals[vtx, 1]
                nz += b * normals[vtx, 2]
            norm = max(math.sqrt(nx * nx + ny * ny + nz * nz), 1e-12)
            if nz > 0:  # two-sided: face the camera, which looks along +z
                norm = -norm
            nx, ny, nz = nx / norm, ny / norm, nz / norm
            key = max(nx * light[0] + ny * light[1] + nz * light[2], 0.0)
            fill = max(nx * light[3] + ny * light[4] + nz * light[5], 0.0)
            spec = 0.0
            if key > 0:
                # Schlick's rational stand-in for highlight ** shininess: no pow() per pixel
                hl = max(nx * light[6] + ny * light[7] + nz * light[8], 0.0)
                shine = light[19]
                spec = gloss[f] * light[18] * hl / (shine - shine * hl + hl)
            for c in range(3):
                lit = light[15 + c] + key * light[9 + c] + fill * light[12 + c]
                out[i, j, c] = 255.0 * (albedo[f, c] * lit + spec * light[9 + c])


@njit(cache=True)
def develop(image, gain, offset, grey, sigma, noise, lut, out):  # pragma: no cover
    """Exposure, grey conversion, sensor noise and 8-bit quantisation in one pass.

    image: (H, W, 3) float32; gain: (3,) float32 per channel; offset, sigma: floats (0..255
    units); grey: one luma value in all three channels; noise: uint8 random bytes, H * W (grey)
    or H * W * 3; lut: (256,) float32 byte -> standard normal; out: (H, W, 3) uint8, written.
    """
    h, w = out.shape[0], out.shape[1]
    n = 0
    for i in range(h):
        for j in range(w):
            if grey:
                val = (
                    np.float32(0.299) * (image[i, j, 0] * gain[0] + offset)
                    + np.float32(0.587) * (image[i, j, 1] * gain[1] + offset)
                    + np.float32(0.114) * (image[i, j, 2] * gain[2] + offset)
                )
                val += sigma * lut[noise[n]]
                n += 1
                q = np.uint8(min(max(val + np.float32(0.5), np.float32(0.0)), np.float32(255.0)))
                out[i, j, 0] = q
                out[i, j, 1] = q
                out[i, j, 2] = q
            else:
                for c in range(3):
                    val = image[i, j, c] * gain[c] + offset + sigma * lut[noise[n]]
                    n += 1
                    val = min(max(val + np.float32(0.5), np.float32(0.0)), np.float32(255.0))
                    out[i, j, c] = np.uint8(val)
