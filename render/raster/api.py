"""Public entry points: pick a backend, check inputs, return arrays of the caller's kind."""

from __future__ import annotations

from typing import Any

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


def rasterize(
    verts: Any,
    faces: Any,
    K: Any,
    image_hw: Any,
    *,
    settings: RasterSettings | None = None,
    with_bary: bool = False,
) -> Fragments:
    """Z-buffer a packed triangle scene into per-pixel face ids and depths.

    verts: (B, V, 3) float64 camera-space vertices in mm (OpenCV: +x right, +y down, +z fwd).
    faces: (F, 3) int indices into V (the packed scene, e.g. right sealed mesh then left).
    K: (3, 3) or (B, 3, 3) float64 pinhole intrinsics, zero skew.
    image_hw: (H, W) for every image, or (B, 2) per image; outputs are (B, max h, max w) and
        image b is background beyond its own (h_b, w_b).
    with_bary: also return perspective-correct barycentrics.
    Returns :class:`Fragments`; numpy arrays for numpy ``verts``, tensors for tensor ``verts``.
    Pixel (i, j) samples u = j, v = i; rules in :mod:`render.raster.conventions`.
    """
    settings = settings or RasterSettings()
    backend = resolve_backend(settings, verts)
    scene = prepare_scene(
        verts, faces, K, image_hw, None, _compute_device(backend, settings, verts)
    )
    shape = (scene.verts.shape[0], scene.height, scene.width)
    if backend == "torch":
        from render.raster.torch_backend import rasterize_scene

        p2f, depth, bary = rasterize_scene(
            scene, settings.near, "faces", settings.chunk_candidates, with_bary
        )
    elif backend == "numba":
        from render.raster.numba_kernel import raster_faces

        p2f = np.full(shape, BACKGROUND_FACE, dtype=np.int32)
        depth = np.full(shape, BACKGROUND_DEPTH, dtype=np.float64)
        bary = np.full((*shape, 3) if with_bary else (1, 1, 1, 3), BACKGROUND_BARY, np.float32)
        raster_faces(*_numba_inputs(scene), float(settings.near), p2f, depth, bary, with_bary)
        bary = bary if with_bary else None
    else:
        from render.raster.reference import rasterize_reference

        p2f, depth, bary64 = rasterize_reference(scene, settings.near)
        bary = bary64.astype(np.float32) if with_bary else None
    return Fragments(
        pix_to_face=_output(p2f, verts),
        depth=_output(depth, verts),
        bary=None if bary is None else _output(bary, verts),
    )


def rasterize_labels(
    verts: Any,
    faces: Any,
    face_labels: Any,
    K: Any,
    image_hw: Any,
    *,
    settings: RasterSettings | None = None,
) -> Any:
    """Class id of the visible face per pixel: (B, H, W) uint8, 0 for background.

    Same as ``face_labels[pix_to_face]`` (0 where -1) but the numba kernel writes labels
    straight from its z-buffer without storing face ids. face_labels: (F,) uint8. Other
    arguments and the output kind as in :func:`rasterize`.
    """
    settings = settings or RasterSettings()
    backend = resolve_backend(settings, verts)
    if face_labels is None:
        raise DigitError("face_labels: rasterize_labels needs a (F,) uint8 class id per face")
    dev = _compute_device(backend, settings, verts)
    scene = prepare_scene(verts, faces, K, image_hw, face_labels, dev)
    shape = (scene.verts.shape[0], scene.height, scene.width)
    if backend == "torch":
        from render.raster.torch_backend import rasterize_scene

        out = rasterize_scene(scene, settings.near, "labels", settings.chunk_candidates)
    elif backend == "numba":
        from render.raster.numba_kernel import raster_labels

        out = np.zeros(shape, dtype=np.uint8)
        v, f, kp, hw = _numba_inputs(scene)
        raster_labels(v, f, scene.face_labels, kp, hw, float(settings.near), out)
    else:
        from render.raster.reference import rasterize_reference

        p2f = rasterize_reference(scene, settings.near)[0]
        table = np.concatenate([scene.face_labels, np.zeros(1, np.uint8)])
        out = table[p2f]  # -1 picks the trailing background 0
    return _output(out, verts)


def rasterize_silhouette(
    verts: Any,
    faces: Any,
    K: Any,
    image_hw: Any,
    *,
    settings: RasterSettings | None = None,
) -> Any:
    """Coverage by any face: (B, H, W) bool (no depth test; equals ``pix_to_face >= 0``).

    Arguments and the output kind as in :func:`rasterize`; use one hand's mesh for a per-hand
    silhouette.
    """
    settings = settings or RasterSettings()
    backend = resolve_backend(settings, verts)
    scene = prepare_scene(
        verts, faces, K, image_hw, None, _compute_device(backend, settings, verts)
    )
    shape = (scene.verts.shape[0], scene.height, scene.width)
    if backend == "torch":
        from render.raster.torch_backend import rasterize_scene

        out = rasterize_scene(scene, settings.near, "silhouette", settings.chunk_candidates)
    elif backend == "numba":
        from render.raster.numba_kernel import raster_silhouette

        out = np.zeros(shape, dtype=np.bool_)
        raster_silhouette(*_numba_inputs(scene), float(settings.near), out)
    else:
        from render.raster.reference import rasterize_reference

        out = rasterize_reference(scene, settings.near)[0] >= 0
    return _output(out, verts)
