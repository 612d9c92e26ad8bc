"""Check rasterizer inputs and bring them to one canonical form (numpy or torch)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from core.errors import DigitError


@dataclass(frozen=True)
class Scene:
    """Canonical rasterizer inputs, all numpy or all torch (on one device).

    verts: (B, V, 3) float64 camera-space mm. faces: (F, 3) int64. kparams: (B, 4) float64
    (fx, fy, cx, cy). hw: (B, 2) int64 per-image (height, width). face_labels: (F,) uint8 or
    None. height, width: output size (the largest h, w). hw_list: hw as Python ints.
    """

    verts: Any
    faces: Any
    kparams: Any
    hw: Any
    face_labels: Any | None
    height: int
    width: int
    hw_list: tuple[tuple[int, int], ...]


def _shape(x: Any) -> tuple[int, ...]:
    return tuple(int(s) for s in x.shape)


def _to_numpy(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def _to_torch(x: Any, device: torch.device) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach().to(device)
    return torch.as_tensor(np.asarray(x), device=device)


def _is_float(x: Any) -> bool:
    if isinstance(x, torch.Tensor):
        return x.dtype.is_floating_point
    return np.issubdtype(x.dtype, np.floating)


def _is_int(x: Any) -> bool:
    if isinstance(x, torch.Tensor):
        return not x.dtype.is_floating_point and not x.dtype.is_complex and x.dtype != torch.bool
    return np.issubdtype(x.dtype, np.integer)


def _all(cond: Any) -> bool:
    return bool(cond.all())


def _finite(x: Any) -> bool:
    """No NaN or inf in a numpy array or torch tensor (one pass, no temporaries kept)."""
    if isinstance(x, torch.Tensor):
        return bool(torch.isfinite(x).all())
    return bool(np.isfinite(x).all())


def _parse_hw(image_hw: Any, batch: int) -> tuple[np.ndarray, int, int]:
    """(H, W) shared by all images, or (B, 2) per image -> ((B, 2) int64, max h, max w)."""
    arr = _to_numpy(image_hw)
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        raise DigitError(f"image_hw: expected (H, W) or (B, 2) integers, got {image_hw!r}")
    shared = arr.shape == (2,)
    if shared:
        arr = np.broadcast_to(arr, (batch, 2))
    if arr.shape != (batch, 2):
        raise DigitError(f"image_hw: expected shape (2,) or ({batch}, 2), got {arr.shape}")
    if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)) or not np.all(arr >= 1):
        raise DigitError("image_hw: heights and widths must be positive integers")
    if shared and batch == 0:
        height, width = (int(x) for x in _to_numpy(image_hw).reshape(2))
    else:
        height = int(arr[:, 0].max()) if batch else 0
        width = int(arr[:, 1].max()) if batch else 0
    return np.array(arr, dtype=np.int64, order="C"), height, width


def prepare_scene(
    verts: Any,
    faces: Any,
    K: Any,
    image_hw: Any,
    face_labels: Any | None,
    device: torch.device | None,
) -> Scene:
    """Validate inputs (DigitError on bad ones); convert to numpy (device None) or torch.

    verts (B, V, 3) float camera mm; faces (F, 3) int in [0, V); K (3, 3) or (B, 3, 3) pinhole
    with zero skew; image_hw (2,) or (B, 2); face_labels (F,) ints in 0..255 or None.
    """
    vshape = _shape(verts)
    if len(vshape) != 3 or vshape[2] != 3:
        raise DigitError(f"verts: expected shape (B, V, 3), got {vshape}")
    if not _is_float(verts):
        raise DigitError(f"verts: expected floating point coordinates, got dtype {verts.dtype}")
    batch, nverts = vshape[0], vshape[1]
    fshape = _shape(faces)
    if len(fshape) != 2 or fshape[1] != 3:
        raise DigitError(f"faces: expected shape (F, 3), got {fshape}")
    if fshape[0] > 0 and not _is_int(faces):
        raise DigitError(f"faces: expected integer vertex indices, got dtype {faces.dtype}")
    kshape = _shape(K) if hasattr(K, "shape") else np.shape(K)
    if tuple(kshape) not in ((3, 3), (batch, 3, 3)):
        raise DigitError(f"K: expected shape (3, 3) or ({batch}, 3, 3), got {tuple(kshape)}")
    hw, height, width = _parse_hw(image_hw, batch)
    if face_labels is not None:
        lshape = _shape(face_labels) if hasattr(face_labels, "shape") else np.shape(face_labels)
        if tuple(lshape) != (fshape[0],):
            raise DigitError(f"face_labels: expected shape ({fshape[0]},), got {tuple(lshape)}")

    if device is None:
        conv = _to_numpy
        v = np.ascontiguousarray(conv(verts), dtype=np.float64)
        f = np.ascontiguousarray(conv(faces), dtype=np.int64).reshape(-1, 3)
        k = np.ascontiguousarray(conv(K), dtype=np.float64)
        lab = None if face_labels is None else conv(face_labels)
    else:
        v = _to_torch(verts, device).to(torch.float64).contiguous()
        f = _to_torch(faces, device).to(torch.int64).reshape(-1, 3).contiguous()
        k = _to_torch(K, device).to(torch.float64)
        lab = None if face_labels is None else _to_torch(face_labels, device)
    if k.ndim == 2:
        k = k[None].expand(batch, 3, 3) if device is not None else np.broadcast_to(k, (batch, 3, 3))

    if not _finite(v):
        raise DigitError("verts: coordinates must be finite (no NaN or inf)")
    if fshape[0] > 0 and not (_all(f >= 0) and _all(f < nverts)):
        raise DigitError(f"faces: vertex indices must lie in [0, {nverts})")
    if not _finite(k):
        raise DigitError("K: intrinsics must be finite")
    pinhole = (
        _all(k[:, 0, 1] == 0)
        and _all(k[:, 1, 0] == 0)
        and _all(k[:, 2, 0] == 0)
        and _all(k[:, 2, 1] == 0)
        and _all(k[:, 2, 2] == 1)
    )
    if not pinhole:
        raise DigitError(
            "K: expected zero-skew pinhole intrinsics [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]"
        )
    if not (_all(k[:, 0, 0] != 0) and _all(k[:, 1, 1] != 0)):
        raise DigitError("K: focal lengths fx and fy must be non-zero")
    if device is None:
        kparams = np.ascontiguousarray(
            np.stack([k[:, 0, 0], k[:, 1, 1], k[:, 0, 2], k[:, 1, 2]], 1)
        )
    else:
        kparams = torch.stack([k[:, 0, 0], k[:, 1, 1], k[:, 0, 2], k[:, 1, 2]], 1).contiguous()

    if lab is not None:
        if lab.shape[0] > 0 and not _is_int(lab):
            raise DigitError(f"face_labels: expected integer class ids, got dtype {lab.dtype}")
        if lab.shape[0] > 0 and not (_all(lab >= 0) and _all(lab <= 255)):
            raise DigitError("face_labels: class ids must lie in 0..255 (uint8)")
        lab = np.ascontiguousarray(lab, dtype=np.uint8) if device is None else lab.to(torch.uint8)

    hw_out: Any = hw if device is None else torch.as_tensor(hw, device=device)
    hw_list = tuple((int(h), int(w)) for h, w in hw)
    return Scene(
        verts=v,
        faces=f,
        kparams=kparams,
        hw=hw_out,
        face_labels=lab,
        height=height,
        width=width,
        hw_list=hw_list,
    )
