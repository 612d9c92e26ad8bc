"""Shaded RGB images of the synthetic hands: skin, forearms, lighting, backgrounds, sensor noise.

Both hands share one skin tone per subject, so that, as in the real data, left and right must be
told apart by shape and context rather than colour. Every random draw comes from the `rng` passed
in and the per-pixel arithmetic is elementwise float32 numpy, so a picture's bytes depend only on
its seed and geometry.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from render.synthetic_data import kernels


def vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals. verts: (V, 3); faces: (F, 3). Returns (V, 3)."""
    tri = verts[faces]
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    # bincount sums in a fixed order and is much faster than np.add.at
    idx = faces.reshape(-1)
    normals = np.stack(
        [np.bincount(idx, np.repeat(face_n[:, c], 3), minlength=len(verts)) for c in range(3)],
        axis=1,
    )
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


@functools.lru_cache(maxsize=8)
def _tube_faces(rings: int, sides: int) -> np.ndarray:
    r = np.arange(rings - 1)[:, None]
    k = np.arange(sides)[None, :]
    a, b = r * sides + k, r * sides + (k + 1) % sides
    quads = np.stack([a, b, a + sides, b, b + sides, a + sides], axis=-1)
    return quads.reshape(-1, 3).astype(np.int64)


def forearm_mesh(
    wrist: np.ndarray,
    axis: np.ndarray,
    lateral: np.ndarray,
    length: float = 260.0,
    wrist_radii: tuple[float, float] = (27.0, 19.0),
    elbow_radii: tuple[float, float] = (40.0, 32.0),
    sides: int = 20,
    rings: int = 6,
    span: tuple[float, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """An open elliptical tube along `axis` (away from the fingers), radii growing from the wrist
    to the elbow.

    wrist, axis, lateral: (3,) mm / directions (lateral: across the palm). span: (start, stop)
    mm along the axis (default: from just inside the palm, so no gap shows at the wrist, to
    `length`). Returns vertices (rings * sides, 3) and faces (2 * (rings - 1) * sides, 3).
    """
    axis = axis / np.linalg.norm(axis)
    lat = lateral - (lateral @ axis) * axis
    lat /= np.linalg.norm(lat)
    thick = np.cross(axis, lat)
    start, stop = span if span is not None else (-12.0, length)
    t = np.linspace(start, stop, rings)
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
    return verts, _tube_faces(rings, sides)


# --------------------------------------------------------------------------- subjects
@dataclass(frozen=True)
class Subject:
    """One capture's person: `skin` (3,) albedo in 0..1 (both hands), `sleeve` (3,) albedo,
    `cuff_mm` where the sleeve starts along the forearm (0: at the wrist; >= 260: bare arm)."""

    skin: np.ndarray
    sleeve: np.ndarray
    cuff_mm: float


def skin_albedo(rng: np.random.Generator) -> np.ndarray:
    """One subject's skin colour (3,) in 0..1, from pale to dark, with a random undertone."""
    tone = rng.uniform(0.0, 1.0)
    # the light end is a little below white so that the palm (skin.PALM_TONE) stays lighter
    light, dark = np.array([0.82, 0.64, 0.54]), np.array([0.32, 0.21, 0.15])
    base = light + tone * (dark - light)
    # undertone: redder or more olive, a few percent either way
    under = np.array([1.0, 1.0, 1.0]) + rng.uniform(-0.05, 0.05) * np.array([1.0, -0.3, -0.8])
    under[1] += rng.uniform(-0.03, 0.03)
    return np.clip(base * under, 0.05, 1.0)


def random_subject(rng: np.random.Generator) -> Subject:
    """Skin, sleeve colour and sleeve length of one subject: a third bare-armed, a third with
    a sleeve at the wrist, a third with the sleeve pushed up the forearm."""
    skin = skin_albedo(rng)
    sleeve = rng.uniform(0.05, 0.9, 3) * rng.uniform(0.5, 1.0)
    kind = rng.integers(0, 3)
    cuff = (300.0, 0.0, rng.uniform(30.0, 150.0))[kind]
    return Subject(skin, sleeve, float(cuff))


def arm_parts(
    joints: np.ndarray, subject: Subject
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The forearm of one hand as (vertices, faces, albedo (3,)) pieces: bare skin up to the
    cuff, then the sleeve. joints: (21, 3) InterHand joints of that hand (world mm)."""
    wrist, axis, lateral = joints[20], joints[20] - joints[11], joints[7] - joints[19]
    length, cuff = 260.0, subject.cuff_mm
    parts = []
    if cuff > 0.0:
        stop = min(cuff, length)
        v, f = forearm_mesh(wrist, axis, lateral, length, rings=4, span=(-12.0, stop))
        parts.append((v, f, subject.skin))
    if cuff < length:
        # the sleeve is a little wider than the arm so that it covers the skin tube's end
        v, f = forearm_mesh(
            wrist,
            axis,
            lateral,
            length,
            wrist_radii=(31.0, 23.0),
            elbow_radii=(45.0, 37.0),
            span=(max(cuff, 0.0) - 12.0, length),
        )
        parts.append((v, f, subject.sleeve))
    return parts


# --------------------------------------------------------------------------- lighting
@dataclass(frozen=True)
class Lighting:
    """Lights of one image, camera frame: `key_dir`, `fill_dir` (3,) unit vectors towards the
    lights; `key_rgb`, `fill_rgb`, `ambient_rgb` (3,) intensities; `specular`, `shininess`:
    Blinn-Phong highlight strength and exponent."""

    key_dir: np.ndarray
    fill_dir: np.ndarray
    key_rgb: np.ndarray
    fill_rgb: np.ndarray
    ambient_rgb: np.ndarray
    specular: float
    shininess: float


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def random_lighting(rng: np.random.Generator) -> Lighting:
    """A key light from the camera's side of the hand (in front, above, beside, never behind, so
    the side the camera sees is lit and its colours show), a weaker fill light, a tinted ambient
    term and a soft skin highlight."""
    key = _unit(np.array([rng.normal(0.0, 0.7), rng.normal(-0.4, 0.6), -1.0 + rng.uniform(0, 0.8)]))
    fill = _unit(np.array([-key[0] + rng.normal(0, 0.4), rng.normal(0, 0.5), -1.0]))
    tint = 1.0 + rng.uniform(-0.05, 0.05, 3)  # warm or cool light
    ambient = rng.uniform(0.3, 0.5)
    key_i = rng.uniform(0.5, 0.8)
    return Lighting(
        key_dir=key.astype(np.float32),
        fill_dir=fill.astype(np.float32),
        key_rgb=(key_i * tint).astype(np.float32),
        fill_rgb=(rng.uniform(0.0, 0.3) * tint).astype(np.float32),
        ambient_rgb=(ambient * (1.0 + rng.uniform(-0.05, 0.05, 3))).astype(np.float32),
        specular=float(rng.uniform(0.0, 0.25)),
        shininess=float(rng.uniform(6.0, 30.0)),
    )


def light_vector(light: Lighting) -> np.ndarray:
    """The (20,) float64 parameter vector of `kernels.shade_into`."""
    half = _unit(light.key_dir.astype(np.float64) + np.array([0.0, 0.0, -1.0]))
    return np.concatenate(
        [
            light.key_dir,
            light.fill_dir,
            half,
            light.key_rgb,
            light.fill_rgb,
            light.ambient_rgb,
            [light.specular, light.shininess],
        ]
    ).astype(np.float64)


def shade(
    pix_to_face: np.ndarray,
    bary: np.ndarray,
    faces: np.ndarray,
    normals: np.ndarray,
    face_albedo: np.ndarray,
    light: Lighting,
    out: np.ndarray,
    face_gloss: np.ndarray | None = None,
) -> None:
    """Smooth two-sided Blinn-Phong shading (ambient, key and fill lights, a key highlight) of
    the foreground pixels of one rendered scene, painted into `out`.

    pix_to_face: (H, W) int32 (-1 background); bary: (H, W, 3) float32 barycentrics of that
    face; faces: (F, 3) int64; normals: (V, 3) camera-frame unit vertex normals; face_albedo:
    (F, 3) in 0..1; light: the image's lights (camera frame); out: (H, W, 3) float32 0..255,
    the background, overwritten where a face is visible; face_gloss: (F,) highlight strength
    per face relative to skin (default 1 everywhere).
    """
    if face_gloss is None:
        face_gloss = np.ones(len(faces))
    kernels.shade_into(
        pix_to_face,
        bary,
        np.ascontiguousarray(faces, dtype=np.int64),
        np.ascontiguousarray(normals, dtype=np.float64),
        np.ascontiguousarray(face_albedo, dtype=np.float32),
        np.ascontiguousarray(face_gloss, dtype=np.float32),
        light_vector(light),
        out,
    )


# --------------------------------------------------------------------------- backgrounds
def background(rng: np.random.Generator, hw: tuple[int, int]) -> np.ndarray:
    """A varied studio-like background (H, W, 3) float32 in 0..255: a colour gradient, soft
    blobs, sometimes stripes or a coarse colour texture, then muted boxes and ellipses (some
    skin-coloured, as distractors). Gradients, Gaussian blobs and stripes are sums of
    row x column products, so one compiled pass draws them all."""
    h, w = hw
    ys = np.arange(h, dtype=np.float64)
    xs = np.arange(w, dtype=np.float64)
    rows, cols = [], []  # rows: (H, 3) per term; cols: (W,) per term

    c0, c1 = rng.uniform(5, 210, 3), rng.uniform(5, 210, 3)
    angle = rng.uniform(0, 2 * np.pi)
    # c0 + (c1 - c0) * (cos(a) x / w + sin(a) y / h + 1) / 2, as two products
    dc = c1 - c0
    rows.append(c0 + dc / 2 + dc * (np.sin(angle) * ys / h / 2)[:, None])
    cols.append(np.ones(w))
    rows.append(np.broadcast_to(dc, (h, 3)))
    cols.append(np.cos(angle) * xs / w / 2)
    for _ in range(rng.integers(1, 6)):
        cx, cy, sigma = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(20, 140)
        colour = rng.uniform(-70, 70, 3)
        rows.append(np.exp(-((ys - cy) ** 2) / (2 * sigma**2))[:, None] * colour)
        cols.append(np.exp(-((xs - cx) ** 2) / (2 * sigma**2)))
    if rng.uniform() < 0.3:  # stripes: sin(a + b) = sin(b) cos(a) + cos(b) sin(a)
        theta, period = rng.uniform(0, np.pi), rng.uniform(6.0, 60.0)
        a = 2 * np.pi * np.cos(theta) * xs / period
        b = 2 * np.pi * np.sin(theta) * ys / period
        amplitude = rng.uniform(-40, 40, 3)
        rows += [np.sin(b)[:, None] * amplitude, np.cos(b)[:, None] * amplitude]
        cols += [np.cos(a), np.sin(a)]
    u = np.ascontiguousarray(np.stack(rows, axis=2), dtype=np.float32)  # (H, 3, R)
    v = np.ascontiguousarray(np.stack(cols, axis=0), dtype=np.float32)  # (R, W)
    grid, alpha = _NO_TEXTURE, 0.0
    if rng.uniform() < 0.4:  # a coarse colour texture: cloth, clutter, an out-of-focus room
        cells = (int(rng.integers(3, 16)), int(rng.integers(3, 16)), 3)
        grid, alpha = rng.uniform(0, 255, cells).astype(np.float32), rng.uniform(0.15, 0.6)
    img = np.empty((h, w, 3), dtype=np.float32)
    kernels.smooth_background(u, v, grid, np.float32(alpha), img)
    for _ in range(rng.integers(0, 5)):
        _paint_shape(rng, img)
    return img


_NO_TEXTURE = np.zeros((1, 1, 3), dtype=np.float32)


def _paint_shape(rng: np.random.Generator, img: np.ndarray) -> None:
    """A box or an ellipse, flat or skin-like (a distractor), painted in place."""
    h, w = img.shape[:2]
    bw, bh = rng.uniform(20, 220), rng.uniform(20, 220)
    x0, y0 = rng.uniform(-bw / 2, w - bw / 2), rng.uniform(-bh / 2, h - bh / 2)
    if rng.uniform() < 0.25:
        colour = skin_albedo(rng) * rng.uniform(120, 240)
    else:
        colour = rng.uniform(15, 200, 3)
    opacity = rng.uniform(0.4, 0.9)
    ellipse = bool(rng.uniform() < 0.5)
    box = np.array(
        [
            np.clip(np.floor(y0), 0, h),
            np.clip(np.ceil(y0 + bh), 0, h),
            np.clip(np.floor(x0), 0, w),
            np.clip(np.ceil(x0 + bw), 0, w),
        ],
        dtype=np.int64,
    )
    centre = np.array([y0 + bh / 2, x0 + bw / 2])
    radii = np.array([bh / 2, bw / 2])
    kernels.paint_shape(img, box, centre, radii, ellipse, colour, float(opacity))


# --------------------------------------------------------------------------- the camera
@dataclass(frozen=True)
class Sensor:
    """How one image leaves the camera: per-channel `gain` (3,) (white balance), `offset`,
    `noise` sigma (0..255 units), `blur` Gaussian sigma px (0: sharp), JPEG `quality`, `dark` (a
    nearly black exposure)."""

    gain: np.ndarray
    offset: float
    noise: float
    blur: float
    quality: int
    dark: float


def random_sensor(rng: np.random.Generator, dark: bool) -> Sensor:
    return Sensor(
        gain=rng.uniform(0.9, 1.1, 3).astype(np.float32),
        offset=float(rng.uniform(-12, 12)),
        noise=float(rng.uniform(1.0, 6.0)),
        blur=float(rng.uniform(0.4, 1.4)) if rng.uniform() < 0.3 else 0.0,
        quality=int(rng.integers(80, 96)),
        dark=float(rng.uniform(0.02, 0.06)) if dark else 1.0,
    )


def _defocus(image: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of (H, W, 3) float32 with standard deviation `sigma` px."""
    half = max(1, int(np.ceil(2.5 * sigma)))
    taps = np.exp(-(np.arange(-half, half + 1) ** 2) / (2 * sigma**2))
    out = np.empty_like(image)
    kernels.blur(np.ascontiguousarray(image), (taps / taps.sum()).astype(np.float32), out)
    return out


def finish(rng: np.random.Generator, image: np.ndarray, grey: bool, sensor: Sensor) -> np.ndarray:
    """Colour gain, exposure, optional defocus, sensor noise; grey cameras give three equal
    channels. image: (H, W, 3) float32 0..255. Returns uint8 (H, W, 3)."""
    if sensor.blur > 0:
        image = _defocus(image, sensor.blur)
    h, w = image.shape[:2]
    noise = np.frombuffer(rng.bytes(h * w * (1 if grey else 3)), dtype=np.uint8)
    out = np.empty((h, w, 3), dtype=np.uint8)
    kernels.develop(
        np.ascontiguousarray(image, dtype=np.float32),
        (sensor.gain * sensor.dark).astype(np.float32),
        np.float32(sensor.offset * sensor.dark),
        grey,
        np.float32(sensor.noise),
        noise,
        kernels.NOISE_LUT,
        out,
    )
    return out
