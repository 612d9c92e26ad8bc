"""Public entry points: pick a backend, check inputs, return arrays of the caller's kind."""

from __future__ import annotations

from typing import Any

import numba
import numpy as np
import torch

from core.errors import DigitError
from render.raster.conventions import BACKGROUND_BARY, BACKGROUND_DEPTH, BACKGROUND_FACE
from render.raster.inputs import Scene, prepare_scene
from render.raster.settings import Fragments, RasterSettings


def _requested_device(settings: RasterSettings, verts: Any) -> torch.device | None:
    """The torch device asked for (settings.device, else a tensor's own device), or None."""
    if settings.device is not None:
        try:
            dev = torch.device(settings.device)
        except (RuntimeError, TypeError) as err:
            raise DigitError(f"device: unknown device {settings.device!r}") from err
    elif isinstance(verts, torch.Tensor):
        dev = verts.device
    else:
        return None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DigitError(f"device: {settings.device or dev}: CUDA is not available on this machine")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise DigitError(f"device: {dev}: no such CUDA device ({torch.cuda.device_count()} found)")
    if dev.type not in ("cpu", "cuda"):
        raise DigitError(f"device: {dev}: only cpu and cuda are supported")
    return dev


def resolve_backend(settings: RasterSettings, verts: Any = None) -> str:
    """The backend that will run: "numba", "torch" or "reference" ("auto" resolved).

    "auto" gives torch when ``verts`` is a CUDA tensor or ``settings.device`` is CUDA, numba
    otherwise. DigitError if CUDA is asked for but unavailable, or asked of a CPU-only backend.
    """
    dev = _requested_device(settings, verts)
    on_cuda = dev is not None and dev.type == "cuda"
    if settings.backend == "auto":
        return "torch" if on_cuda else "numba"
    if on_cuda and settings.backend != "torch":
        raise DigitError(
            f"backend: {settings.backend!r} runs on the CPU only; use backend 'torch' "
            f"(or 'auto') for device {dev}"
        )
    return settings.backend


def _compute_device(backend: str, settings: RasterSettings, verts: Any) -> torch.device | None:
    if backend != "torch":
        return None
    return _requested_device(settings, verts) or torch.device("cpu")


def _output(x: np.ndarray | torch.Tensor, like: Any) -> Any:
    """numpy for numpy ``verts``, torch for tensor ``verts`` (on the compute device)."""
    if isinstance(like, torch.Tensor):
        if isinstance(x, torch.Tensor):
            return x
        return torch.from_numpy(x).to(like.device)
    if isinstance(x, torch.Tensor):
        return x.cpu().numpy()
    return x


def _numba_inputs(scene: Scene):
    return scene.verts, scene.faces, scene.kparams, scene.hw


# The numba kernels hand images to their threads a few at a time (dynamic scheduling) rather
# than in one block per thread: an image's cost varies with the hands' size, and a thread
# slowed by other work (the build's MANO and compression stages) would leave the rest waiting.
IMAGES_PER_CHUNK = 4


# ---- backends: (scene, settings, output, with_bary) -> raw arrays of the backend's kind -------


def _numba(scene: Scene, settings: RasterSettings, output: str, with_bary: bool):
    with numba.parallel_chunksize(IMAGES_PER_CHUNK):
        return _numba_dispatch(scene, settings, output, with_bary)


def _numba_dispatch(scene: Scene, settings: RasterSettings, output: str, with_bary: bool):
    from render.raster import numba_kernel

    shape = (scene.verts.shape[0], scene.height, scene.width)
    near = float(settings.near)
    if output == "labels":
        out = np.zeros(shape, dtype=np.uint8)
        v, f, kp, hw = _numba_inputs(scene)
        numba_kernel.raster_labels(v, f, scene.face_labels, kp, hw, near, out)
        return out
    if output == "silhouette":
        out = np.zeros(shape, dtype=np.bool_)
        numba_kernel.raster_silhouette(*_numba_inputs(scene), near, out)
        return out
    p2f = np.full(shape, BACKGROUND_FACE, dtype=np.int32)
    depth = np.full(shape, BACKGROUND_DEPTH, dtype=np.float64)
    bary = np.full((*shape, 3) if with_bary else (1, 1, 1, 3), BACKGROUND_BARY, np.float32)
    numba_kernel.raster_faces(*_numba_inputs(scene), near, p2f, depth, bary, with_bary)
    return p2f, depth, bary if with_bary else None


def _torch(scene: Scene, settings: RasterSettings, output: str, with_bary: bool):
    from render.raster.torch_backend import rasterize_scene

    kind = "faces" if output == "fragments" else output
    return rasterize_scene(scene, settings.near, kind, settings.chunk_candidates, with_bary)


def _reference(scene: Scene, settings: RasterSettings, output: str, with_bary: bool):
    from render.raster.reference import rasterize_reference

    p2f, depth, bary64 = rasterize_reference(scene, settings.near)
    if output == "labels":
        table = np.concatenate([scene.face_labels, np.zeros(1, np.uint8)])
        return table[p2f]  # -1 picks the trailing background 0
    if output == "silhouette":
        return p2f >= 0
    return p2f, depth, bary64.astype(np.float32) if with_bary else None


BACKENDS = {"numba": _numba, "torch": _torch, "reference": _reference}
OUTPUTS: tuple[str, ...] = ("fragments", "labels", "silhouette")


def rasterize(
    verts: Any,
    faces: Any,
    K: Any,
    image_hw: Any,
    *,
    output: str = "fragments",
    face_labels: Any = None,
    settings: RasterSettings | None = None,
    with_bary: bool = False,
) -> Any:
    """Z-buffer a packed triangle scene; what comes back is chosen by `output`.

    verts: (B, V, 3) float64 camera-space vertices in mm (OpenCV: +x right, +y down, +z fwd).
    faces: (F, 3) int indices into V (the packed scene, e.g. right sealed mesh then left).
    K: (3, 3) or (B, 3, 3) float64 pinhole intrinsics, zero skew.
    image_hw: (H, W) for every image, or (B, 2) per image; outputs are (B, max h, max w) and
        image b is background beyond its own (h_b, w_b).
    output: "fragments" -> :class:`Fragments` (face ids, depths, and with `with_bary`
        perspective-correct barycentrics); "labels" -> (B, H, W) uint8 class of the visible face,
        0 for background, from `face_labels` (F,) uint8 (the numba kernel writes labels straight
        from its z-buffer); "silhouette" -> (B, H, W) bool coverage by any face (no depth test;
        use one hand's mesh for a per-hand silhouette).
    Arrays are numpy for numpy ``verts``, tensors (on the compute device) for tensor ``verts``.
    Pixel (i, j) samples u = j, v = i; rules in :mod:`render.raster.conventions`.
    """
    if output not in OUTPUTS:
        raise DigitError(f"output: unknown kind {output!r} (one of {', '.join(OUTPUTS)})")
    if output == "labels" and face_labels is None:
        raise DigitError("face_labels: rasterize_labels needs a (F,) uint8 class id per face")
    settings = settings or RasterSettings()
    backend = resolve_backend(settings, verts)
    labels = face_labels if output == "labels" else None
    dev = _compute_device(backend, settings, verts)
    scene = prepare_scene(verts, faces, K, image_hw, labels, dev)
    raw = BACKENDS[backend](scene, settings, output, with_bary and output == "fragments")
    if output != "fragments":
        return _output(raw, verts)
    p2f, depth, bary = raw
    return Fragments(
        pix_to_face=_output(p2f, verts),
        depth=_output(depth, verts),
        bary=None if bary is None else _output(bary, verts),
    )


def rasterize_labels(
    verts: Any, faces: Any, face_labels: Any, K: Any, image_hw: Any, *, settings=None
) -> Any:
    """`rasterize(..., output="labels")`: (B, H, W) uint8 class ids, 0 for background."""
    return rasterize(
        verts, faces, K, image_hw, output="labels", face_labels=face_labels, settings=settings
    )


def rasterize_silhouette(verts: Any, faces: Any, K: Any, image_hw: Any, *, settings=None) -> Any:
    """`rasterize(..., output="silhouette")`: (B, H, W) bool coverage by any face."""
    return rasterize(verts, faces, K, image_hw, output="silhouette", settings=settings)


def rasterize_labels_counts(
    verts: Any,
    faces: Any,
    face_labels: Any,
    K: Any,
    image_hw: Any,
    split: int,
    *,
    canvas_hw: tuple[int, int] | None = None,
    settings: RasterSettings | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Labels of a scene of two face groups (faces [0, split) and [split, F), e.g. the right
    hand then the left) and, per image, how many pixels each group shows and covers.

    verts, faces, face_labels, K, image_hw: as `rasterize_labels`. canvas_hw: output size
    (H, W), at least every image's (default: the largest h, w).
    Returns labels (B, H, W) uint8 numpy (0 beyond each image) and counts (B, 4) int64 numpy:
    pixels whose visible face is in group 0, in group 1; pixels covered by both groups, by
    either (coverage as `rasterize_silhouette` of each group's faces alone). The numba backend
    gets all of it from one pass (no silhouette passes, no full-image counting afterwards);
    the others from `rasterize` and `rasterize_silhouette`, with the same result.
    """
    settings = settings or RasterSettings()
    backend = resolve_backend(settings, verts)
    dev = _compute_device(backend, settings, verts)
    scene = prepare_scene(verts, faces, K, image_hw, face_labels, dev)
    nfaces = int(scene.faces.shape[0])
    if not 0 <= split <= nfaces:
        raise DigitError(f"split: must lie in [0, {nfaces}], got {split}")
    height, width = canvas_hw or (scene.height, scene.width)
    if height < scene.height or width < scene.width:
        raise DigitError(
            f"canvas_hw: {height}x{width} is smaller than an image ({scene.height}x{scene.width})"
        )
    batch = int(scene.verts.shape[0])
    labels = np.zeros((batch, height, width), dtype=np.uint8)
    counts = np.zeros((batch, 4), dtype=np.int64)
    if backend == "numba":
        from render.raster import numba_kernel

        v, f, kp, hw = _numba_inputs(scene)
        near = float(settings.near)
        with numba.parallel_chunksize(IMAGES_PER_CHUNK):
            numba_kernel.raster_labels_counts(
                v, f, scene.face_labels, split, kp, hw, near, labels, counts
            )
        return labels, counts
    # other backends: the same numbers from the faces and one silhouette per group
    as_t = torch.as_tensor
    tv = as_t(scene.verts) if dev is None else scene.verts
    tf = as_t(scene.faces) if dev is None else scene.faces
    tk, hw_t = as_t(K).to(tv.device), as_t(image_hw).to(tv.device)
    p2f = rasterize(tv, tf, tk, hw_t, settings=settings).pix_to_face
    hit, late = p2f >= 0, p2f >= split
    table = torch.cat([as_t(scene.face_labels).to(tv.device), tv.new_zeros(1, dtype=torch.uint8)])
    lab = table[p2f.long()]  # -1 (background) picks the trailing 0
    cover = [
        rasterize_silhouette(tv, part, tk, hw_t, settings=settings)
        for part in (tf[:split], tf[split:])
    ]
    stats = torch.stack(
        [hit & ~late, hit & late, cover[0] & cover[1], cover[0] | cover[1]], dim=1
    ).sum(dim=(2, 3))
    labels[:, : scene.height, : scene.width] = lab.cpu().numpy()
    counts[:] = stats.cpu().numpy()
    return labels, counts
