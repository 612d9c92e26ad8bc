"""Shaded RGB images of the synthetic hands: skin, forearms, backgrounds, sensor noise.

Both hands share one skin tone per subject and the lighting is soft, so that, as in the real data,
left and right must be told apart by shape and context rather than colour.
"""

from __future__ import annotations

import numpy as np


def vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals. verts: (V, 3); faces: (F, 3). Returns (V, 3)."""
    tri = verts[faces]
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals = np.zeros_like(verts)
    for k in range(3):
        np.add.at(normals, faces[:, k], face_n)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def forearm_mesh(
    wrist: np.ndarray,
    axis: np.ndarray,
    lateral: np.ndarray,
    length: float = 260.0,
    wrist_radii: tuple[float, float] = (27.0, 19.0),
    elbow_radii: tuple[float, float] = (40.0, 32.0),
    sides: int = 20,
    rings: int = 6,
) -> tuple[np.ndarray, np.ndarray]:
    """An open elliptical tube from just inside the wrist along `axis` (away from the fingers).

    wrist, axis, lateral: (3,) mm / directions (lateral: across the palm). Returns vertices
    (rings * sides, 3) and faces (2 * (rings - 1) * sides, 3).
    """
    axis = axis / np.linalg.norm(axis)
    lat = lateral - (lateral @ axis) * axis
    lat /= np.linalg.norm(lat)
    thick = np.cross(axis, lat)
    t = np.linspace(-12.0, length, rings)  # start inside the palm so no gap shows at the wrist
    s = np.clip(t / length, 0.0, 1.0)[:, None]
    rw = wrist_radii[0] + s * (elbow_radii[0] - wrist_radii[0])
    rt = wrist_radii[1] + s * (elbow_radii[1] - wrist_radii[1])
    phi = np.linspace(0.0, 2 * np.pi, sides, endpoint=False)[None, :]
    verts = (
        wrist[None, None, :]
        + t[:, None, None] * axis
        + (rw * np.cos(phi))[..., None] * lat
        + (rt * np.sin(phi))[..., None] * thick
    ).reshape(-1, 3)
    faces = []
    for r in range(rings - 1):
        for k in range(sides):
            a, b = r * sides + k, r * sides + (k + 1) % sides
            faces += [(a, b, a + sides), (b, b + sides, a + sides)]
    return verts, np.asarray(faces, dtype=np.int64)


def background(rng: np.random.Generator, hw: tuple[int, int]) -> np.ndarray:
    """A varied studio-like background (H, W, 3) float in 0..255: a colour gradient, soft blobs
    and a few muted shapes."""
    h, w = hw
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    c0, c1 = rng.uniform(10, 200, 3), rng.uniform(10, 200, 3)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx / w + np.sin(angle) * yy / h + 1.0) / 2.0
    img = c0 + (c1 - c0) * ramp[..., None]
    for _ in range(rng.integers(2, 6)):
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        sigma = rng.uniform(20, 120)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2))
        img += blob[..., None] * rng.uniform(-60, 60, 3)
    for _ in range(rng.integers(0, 4)):
        x0, y0 = rng.uniform(-50, w), rng.uniform(-50, h)
        bw, bh = rng.uniform(20, 200), rng.uniform(20, 200)
        inside = (xx >= x0) & (xx < x0 + bw) & (yy >= y0) & (yy < y0 + bh)
        img[inside] = img[inside] * 0.4 + rng.uniform(20, 180, 3) * 0.6
    return np.clip(img, 0, 255)


def shade(
    pix_to_face: np.ndarray,
    bary: np.ndarray,
    faces: np.ndarray,
    normals: np.ndarray,
    face_albedo: np.ndarray,
    light_dir: np.ndarray,
    ambient: float = 0.35,
) -> tuple[np.ndarray, np.ndarray]:
    """Smooth two-sided Lambert shading of one rendered scene.

    pix_to_face: (H, W) int (-1 background); bary: (H, W, 3) barycentrics of that face;
    faces: (F, 3); normals: (V, 3) camera-frame vertex normals; face_albedo: (F, 3) in 0..1;
    light_dir: (3,) camera-frame unit vector towards the light. Returns the shaded colour
    (H, W, 3) float in 0..255 and the foreground mask (H, W) bool.
    """
    fg = pix_to_face >= 0
    f = pix_to_face[fg]
    n = (bary[fg][..., None] * normals[faces[f]]).sum(axis=1)
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)
    lambert = np.abs(n @ light_dir)  # two-sided: no culling anywhere in this project
    intensity = ambient + (1.0 - ambient) * lambert
    colour = np.zeros((*pix_to_face.shape, 3))
    colour[fg] = 255.0 * face_albedo[f] * intensity[:, None]
    return colour, fg


def skin_albedo(rng: np.random.Generator) -> np.ndarray:
    """One subject's skin colour (3,) in 0..1, from pale to dark."""
    tone = rng.uniform(0.0, 1.0)
    light, dark = np.array([0.93, 0.78, 0.68]), np.array([0.42, 0.28, 0.20])
    return light + tone * (dark - light)


def finish(
    rng: np.random.Generator, image: np.ndarray, grey: bool, dark: bool = False
) -> np.ndarray:
    """Colour jitter, sensor noise, optional near-black exposure; grey cameras give three equal
    channels. image: (H, W, 3) float 0..255. Returns uint8 (H, W, 3)."""
    out = image * rng.uniform(0.85, 1.15, 3) + rng.uniform(-12, 12)
    if dark:
        out *= rng.uniform(0.02, 0.06)
    out += rng.normal(0.0, 3.0, out.shape)
    if grey:
        out = np.repeat(out @ np.array([0.299, 0.587, 0.114]), 3).reshape(out.shape)
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)
