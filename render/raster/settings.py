"""Rasterizer settings and output dataclasses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.errors import DigitError
from render.raster.conventions import BACKENDS, DEFAULT_NEAR_MM


@dataclass(frozen=True)
class RasterSettings:
    """How to rasterize; every backend gives the same pixels (see ``conventions``).

    backend: ``"auto"`` (torch when the inputs are CUDA tensors or ``device`` is CUDA, numba
        otherwise), ``"numba"`` (CPU, parallel over images), ``"torch"`` (vectorised float64,
        CPU or CUDA), ``"reference"`` (slow float64 numpy, for tests).
    device: torch device for the torch backend (``"cpu"``, ``"cuda"``, ``"cuda:1"``); ``None``
        follows ``verts`` (CPU for numpy inputs).
    near: mm; faces with any vertex at camera ``z <= near`` are skipped whole.
    chunk_candidates: torch only, the most (face, pixel) candidates evaluated at once; bounds
        memory (about 300 bytes each) without changing results.
    """

    backend: str = "auto"
    device: str | None = None
    near: float = DEFAULT_NEAR_MM
    chunk_candidates: int = 1 << 19

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise DigitError(
                f"backend: unknown rasterizer backend {self.backend!r} "
                f"(choose one of {', '.join(BACKENDS)})"
            )
        if not (float(self.near) > 0.0) or float(self.near) == float("inf"):
            raise DigitError(f"near: must be a positive finite number of mm, got {self.near!r}")
        if int(self.chunk_candidates) < 1:
            raise DigitError(f"chunk_candidates: must be >= 1, got {self.chunk_candidates!r}")


@dataclass(frozen=True)
class Fragments:
    """Per-pixel result of :func:`render.raster.rasterize` (one face per pixel).

    Arrays are numpy when ``verts`` was numpy, torch tensors (on the compute device) when it
    was a tensor. Image b occupies ``[:h_b, :w_b]``; the rest is background.

    pix_to_face: (B, H, W) int32, index into the packed faces, -1 for background.
    depth: (B, H, W) float64, camera z of the visible surface in mm, -1 for background.
    bary: (B, H, W, 3) float32 perspective-correct barycentrics of the visible face's
        vertices (faces[f, 0], faces[f, 1], faces[f, 2]), -1 for background; None unless asked.
    """

    pix_to_face: Any
    depth: Any
    bary: Any | None = None
