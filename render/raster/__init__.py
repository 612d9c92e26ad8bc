"""The project's exact z-buffer rasterizer (pytorch3d-compatible conventions).

Backends numba (CPU), torch (CPU or CUDA) and reference (slow numpy) give identical pixels;
the shared formula is written down in :mod:`render.raster.conventions`.
"""

from render.raster.api import (
    rasterize,
    rasterize_labels,
    rasterize_labels_counts,
    rasterize_silhouette,
    resolve_backend,
)
from render.raster.conventions import CONVENTION_VERSION, DEFAULT_NEAR_MM
from render.raster.settings import Fragments, RasterSettings

__all__ = [
    "CONVENTION_VERSION",
    "DEFAULT_NEAR_MM",
    "Fragments",
    "RasterSettings",
    "rasterize",
    "rasterize_labels",
    "rasterize_labels_counts",
    "rasterize_silhouette",
    "resolve_backend",
]
