"""Slow, plain references the tests compare the package's geometry against (test-only code).

They restate conventions the package implements in other forms: the official horizontal flip
(x -> W - 1 - x, hands swapped), composing affine maps, DIGIT's nearest 2x label downsampling,
and the inverse rigid transform.
"""

from __future__ import annotations

import numpy as np
import torch

from core.errors import DigitError
from digit.data.crop import swap_joint_hands

Array = np.ndarray | torch.Tensor


def _is_torch(a: object) -> bool:
    return isinstance(a, torch.Tensor)


def flip_matrix(width: int) -> np.ndarray:
    """The horizontal mirror of an image `width` pixels wide, x -> W - 1 - x, as (2, 3)."""
    return np.array([[-1.0, 0.0, width - 1.0], [0.0, 1.0, 0.0]])


def compose_affine(A: Array, B: Array) -> Array:
    """A after B: the (..., 2, 3) map p -> A(B(p)) (numpy float64, or torch as given)."""
    if not (_is_torch(A) or _is_torch(B)):
        A, B = np.asarray(A, dtype=np.float64), np.asarray(B, dtype=np.float64)
    lin = A[..., :2] @ B[..., :2]
    t = A[..., :2] @ B[..., 2:] + A[..., 2:]
    if _is_torch(lin):
        return torch.cat([lin, t], dim=-1)
    return np.concatenate([lin, t], axis=-1)


def downsample_labels_nearest(labels: Array) -> Array:
    """DIGIT's segmentation target: (..., 256, 256) -> (..., 128, 128) by nearest
    (`F.interpolate(mode="nearest")`, source index floor(2 i) = 2 i), i.e. output pixel (i, j)
    takes input pixel (2 i, 2 j), the top-left of its 2 x 2 block. Any even size halves."""
    h, w = labels.shape[-2:]
    if h % 2 or w % 2:
        raise DigitError(f"labels: expected an even height and width, got {(h, w)}")
    out = labels[..., ::2, ::2]
    return out.contiguous() if _is_torch(out) else np.ascontiguousarray(out)


def flip_joints(joints: np.ndarray, valid: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Official horizontal flip of annotated joints: x -> W - 1 - x in original image pixels
    (other columns, e.g. depth, unchanged), then the right/left blocks and validity swapped.

    joints (..., 42, C >= 1) pixels; valid (..., 42); width W of the image. Returns new arrays
    (float64 joints). Applying it twice with the same width gives the input back.
    """
    joints = np.array(joints, dtype=np.float64)
    joints[..., 0] = width - 1 - joints[..., 0]
    return swap_joint_hands(joints, np.asarray(valid))


def camera_to_world(X_cam: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Inverse of `world_to_camera`: X (..., 3) = R^T @ (X_cam - t), mm, float64."""
    X_cam = np.asarray(X_cam, dtype=np.float64)
    R = np.asarray(R, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    return np.matmul(np.swapaxes(R, -1, -2), (X_cam - t)[..., None])[..., 0]


def joints_in_image(uv: np.ndarray, hw: np.ndarray) -> np.ndarray:
    """data.json's in-image test with integer pixel centres: 0 <= u <= w-1, 0 <= v <= h-1.

    uv (..., J, 2) pixels; hw (..., 2) (height, width). Returns (..., J) bool (NaN -> False).
    """
    uv = np.asarray(uv, dtype=np.float64)
    hw = np.asarray(hw, dtype=np.float64)[..., None, :]
    with np.errstate(invalid="ignore"):
        return (
            (uv[..., 0] >= 0)
            & (uv[..., 0] <= hw[..., 1] - 1)
            & (uv[..., 1] >= 0)
            & (uv[..., 1] <= hw[..., 0] - 1)
        )
