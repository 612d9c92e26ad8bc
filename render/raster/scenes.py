"""Synthetic test scenes for the rasterizer: closed blobby meshes in front of a camera."""

from __future__ import annotations

import numpy as np


def uv_sphere(n_lat: int, n_lon: int) -> tuple[np.ndarray, np.ndarray]:
    """Closed unit sphere.

    Returns verts (2 + (n_lat - 1) * n_lon, 3) and faces (2 * n_lon * (n_lat - 1), 3).
    """
    theta = np.pi * np.arange(1, n_lat) / n_lat
    phi = 2.0 * np.pi * np.arange(n_lon) / n_lon
    st, ct = np.sin(theta)[:, None], np.cos(theta)[:, None]
    ring = np.stack(
        [st * np.cos(phi)[None], st * np.sin(phi)[None], np.broadcast_to(ct, (n_lat - 1, n_lon))],
        axis=-1,
    ).reshape(-1, 3)
    verts = np.concatenate([[[0.0, 0.0, 1.0]], ring, [[0.0, 0.0, -1.0]]])
    top, bottom = 0, len(verts) - 1
    faces = []
    for k in range(n_lon):
        k2 = (k + 1) % n_lon
        faces.append((top, 1 + k, 1 + k2))
        for r in range(n_lat - 2):
            a, b = 1 + r * n_lon + k, 1 + r * n_lon + k2
            c, d = a + n_lon, b + n_lon
            faces += [(a, c, b), (b, c, d)]
        base = 1 + (n_lat - 2) * n_lon
        faces.append((base + k, bottom, base + k2))
    return verts, np.asarray(faces, dtype=np.int64)


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def blob(
    rng: np.random.Generator, centre, axes=(45.0, 90.0, 20.0), n_lat: int = 25, n_lon: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """A bumpy, randomly rotated ellipsoid (hand-sized by default, mm): verts (V, 3), faces (F, 3).

    n_lat=25, n_lon=32 gives 1536 faces, about one MANO hand's sealed mesh (1554).
    """
    verts, faces = uv_sphere(n_lat, n_lon)
    bumps = 1.0 + 0.15 * np.sin(3.0 * verts @ rng.normal(size=(3, 4))).sum(axis=1) / 2.0
    verts = verts * bumps[:, None] * np.asarray(axes)
    return verts @ _rotation(rng).T + np.asarray(centre, dtype=np.float64), faces


def two_blob_scene(
    rng: np.random.Generator, batch: int, height: int = 512, width: int = 334, depth: float = 600.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """B two-hand-like scenes sharing one packed topology (blob 0 then blob 1).

    Returns verts (B, V, 3) mm, faces (F, 3) (~3072 faces), K (3, 3) with fx ~ fy ~ 1200 and
    the principal point near the centre of a (height, width) image. Blobs overlap in depth and
    on screen, filling a good part of the image.
    """
    out = []
    faces = None
    for _ in range(batch):
        parts = []
        for side in (-1.0, 1.0):
            centre = (side * 28.0 + rng.normal(0, 8), rng.normal(0, 15), depth + rng.normal(0, 30))
            v, f = blob(rng, centre)
            parts.append((v, f))
        (v0, f0), (v1, f1) = parts
        out.append(np.concatenate([v0, v1]))
        faces = np.concatenate([f0, f1 + len(v0)])
    K = np.array([[1210.0, 0.0, width / 2 - 0.3], [0.0, 1195.0, height / 2 + 0.7], [0.0, 0.0, 1.0]])
    return np.stack(out), faces, K
