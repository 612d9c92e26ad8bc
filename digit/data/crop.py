"""Crop geometry of InterHand2.6M / DIGIT: original image <-> 256 x 256 network input.

Conventions (`reference/interhand26m.md`, "Official training-time processing"):
- Pixel centres sit at integer coordinates in both images (OpenCV's, as `cv2.warpAffine` uses).
- A crop box [x, y, w, h] (already the square x1.25 box of `core.boxes.crop_box_from_bbox`)
  is mapped as the official `gen_trans_from_patch_cv` maps it: the box centre (x + w/2, y + h/2)
  goes to the crop centre (S/2, S/2) = (128, 128), and the box's half extents to S/2, so the
  corner (x, y) lands on (0, 0) and (x + w, y + h) on (S, S) (not S - 1: the official convention).
- Augmentation: `shift` moves the box centre by (tx * w, ty * h) first; `scale` multiplies the
  box extent (scale > 1 zooms out); `rot_deg` turns the box by that angle in image coordinates
  (+x right, +y down), so the content appears turned counter-clockwise on screen in the crop;
  `flip` mirrors the original image (x -> W - 1 - x) before cropping, as the official code does.
  After a flip, the caller swaps the right/left joint blocks (`swap_joint_hands`) and the part
  labels (`core.parts.swap_hands`).
- Affine matrices A are (2, 3) float64 and map points forward: [u, v] = A @ [x, y, 1].

Matrices and points are numpy (torch tensors are accepted by `apply_affine` and
`invert_affine`); warping runs in torch with the sampling grid computed in float64.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from core.errors import DigitError
from core.joints import HAND_JOINTS, NUM_JOINTS

CROP_SIZE = 256  # network input, pixels
LABEL_SIZE = 128  # segmentation target and logits, pixels
MAX_SUPERSAMPLE = 4  # an antialiased warp averages at most 4 x 4 samples per output pixel

Array = np.ndarray | torch.Tensor


# ---- affine matrices (pure, float64) ----------------------------------------------------------


def crop_transform(
    crop_box: Sequence[float] | np.ndarray,
    out_size: int = CROP_SIZE,
    rot_deg: float = 0.0,
    scale: float = 1.0,
    shift: Sequence[float] = (0.0, 0.0),
    flip: bool = False,
) -> np.ndarray:
    """Forward affine, original image pixels -> crop pixels (S = out_size), float64 (2, 3).

    crop_box: (4,) [x, y, w, h] in original pixels. rot_deg: degrees (content turns
    counter-clockwise on screen for rot_deg > 0). scale: box extent multiplier. shift: (tx, ty)
    centre shift as fractions of the box's (w, h). flip: mirror the original image first.

    With c = box centre + shift, R = rotation by rot_deg, D = diag(S / (w * scale), S / (h *
    scale)) and M = diag(-1, 1) if flip else I, a point p maps to S/2 + D R^T M (p - c). The flip
    is the official "mirror the image (x -> W - 1 - x), move the box centre to W - 1 - cx, crop"
    composed into one map, which does not depend on W: (W - 1 - px) - (W - 1 - cx) = cx - px.
    """
    box = np.asarray(crop_box, dtype=np.float64).reshape(4)
    x, y, w, h = box
    if not (w > 0 and h > 0) or not np.all(np.isfinite(box)):
        raise DigitError(
            f"crop box: expected finite [x, y, w, h] with w, h > 0, got {box.tolist()}"
        )
    if not scale > 0:
        raise DigitError(f"crop scale: must be > 0, got {scale}")
    tx, ty = (float(s) for s in shift)
    centre = np.array([x + 0.5 * w + tx * w, y + 0.5 * h + ty * h])
    theta = np.deg2rad(float(rot_deg))
    cos, sin = np.cos(theta), np.sin(theta)
    rot_t = np.array([[cos, sin], [-sin, cos]])  # R^T: box axes back to crop axes
    stretch = np.diag([out_size / (w * scale), out_size / (h * scale)])
    mirror = np.diag([-1.0 if flip else 1.0, 1.0])
    linear = stretch @ rot_t @ mirror
    offset = np.full(2, out_size / 2.0) - linear @ centre
    return np.concatenate([linear, offset[:, None]], axis=1)


def _is_torch(a: object) -> bool:
    return isinstance(a, torch.Tensor)


def invert_affine(A: Array) -> Array:
    """Inverse of affine maps: (..., 2, 3) -> (..., 2, 3) (numpy float64, or torch as given)."""
    if _is_torch(A):
        lin_inv = torch.linalg.inv(A[..., :2])
        t_inv = -(lin_inv @ A[..., 2:])
        return torch.cat([lin_inv, t_inv], dim=-1)
    A = np.asarray(A, dtype=np.float64)
    lin_inv = np.linalg.inv(A[..., :2])
    return np.concatenate([lin_inv, -(lin_inv @ A[..., 2:])], axis=-1)


def apply_affine(A: Array, points: Array) -> Array:
    """Map points (..., 2) by A.

    A (2, 3): applied to every point. A (B, 2, 3) with points (B, N, 2): one map per batch
    entry. numpy in -> float64 numpy out; torch in -> torch in the points' dtype.
    """
    if _is_torch(points) or _is_torch(A):
        points = torch.as_tensor(points)
        A = torch.as_tensor(A, dtype=points.dtype, device=points.device)
    else:
        points = np.asarray(points, dtype=np.float64)
        A = np.asarray(A, dtype=np.float64)
    if A.ndim > 2:
        A = A[..., None, :, :]  # broadcast over the points axis
    x, y = points[..., 0], points[..., 1]
    u = A[..., 0, 0] * x + A[..., 0, 1] * y + A[..., 0, 2]
    v = A[..., 1, 0] * x + A[..., 1, 1] * y + A[..., 1, 2]
    return torch.stack([u, v], -1) if _is_torch(points) else np.stack([u, v], -1)


def inside_crop(uv: Array, out_size: int = CROP_SIZE) -> Array:
    """The official post-warp validity test 0 <= u < S and 0 <= v < S. uv (..., 2) -> (...,)."""
    u, v = uv[..., 0], uv[..., 1]
    return (u >= 0) & (u < out_size) & (v >= 0) & (v < out_size)


# ---- warping (torch) ------------------------------------------------------------------------


def _size_hw(out_size: int | tuple[int, int]) -> tuple[int, int]:
    if isinstance(out_size, int):
        return out_size, out_size
    h, w = out_size
    return int(h), int(w)


def source_points(
    A: Array, batch: int, out_hw: tuple[int, int], device: torch.device | str = "cpu"
) -> torch.Tensor:
    """Original-image position (x, y) sampled by every output pixel: (B, Ho, Wo, 2) float64.
    Pass it as `src` to `warp_image` / `warp_labels` to warp several maps by one affine."""
    A = _batched_affine(A, batch, device)
    inv = invert_affine(A)
    ys = torch.arange(out_hw[0], dtype=torch.float64, device=device)
    xs = torch.arange(out_hw[1], dtype=torch.float64, device=device)
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1)  # (Ho, Wo, 2) as (x, y)
    return apply_affine(inv[:, None], grid.expand(batch, *grid.shape))


def _batched_affine(A: Array, batch: int, device: torch.device | str) -> torch.Tensor:
    A = torch.as_tensor(np.asarray(A) if not _is_torch(A) else A, dtype=torch.float64)
    A = A.to(device)
    if A.ndim == 2:
        A = A.expand(batch, 2, 3)
    if A.shape != (batch, 2, 3):
        raise DigitError(f"affine: expected (2, 3) or ({batch}, 2, 3), got {tuple(A.shape)}")
    return A


def _supersampled_grid(
    A: Array,
    batch: int,
    in_hw: tuple[int, int],
    out_hw: tuple[int, int],
    k: int,
    dtype: torch.dtype,
    device: torch.device | str,
) -> torch.Tensor:
    """`grid_sample` grid (B, Ho k, Wo k, 2) of the k x k cell centres of every output pixel's
    square: grid index i at output coordinate (i + 0.5) / k - 0.5, mapped by A^-1 and
    normalised for align_corners=True. One affine_grid call: `affine_grid(align_corners=False)`
    puts index i at x_n = (2 i + 1) / (Wo k) - 1, i.e. output coordinate q = (x_n + 1) Wo / 2
    - 0.5, so theta = E L D | E (L t_q + t) - 1 with A^-1 = [L | t], q = D x_n + t_q and the
    input normalisation g = E p - 1 (float64, cast once)."""
    inv = invert_affine(_batched_affine(A, batch, device))
    (h, w), (ho, wo) = in_hw, out_hw
    lin, t = inv[..., :2], inv[..., 2]
    d = torch.tensor([wo / 2.0, ho / 2.0], dtype=torch.float64, device=device)
    t_q = d - 0.5
    e = torch.tensor([2.0 / (w - 1), 2.0 / (h - 1)], dtype=torch.float64, device=device)
    theta_lin = e[:, None] * lin * d[None, :]
    theta_t = e * ((lin @ t_q[:, None])[..., 0] + t) - 1.0
    theta = torch.cat([theta_lin, theta_t[..., None]], dim=-1).to(dtype)
    return F.affine_grid(theta, [batch, 1, ho * k, wo * k], align_corners=False)


def supersample_factor(A: Array, antialias: bool = True) -> int:
    """Samples per axis that an antialiased warp by the forward affine A (2, 3) takes in each
    output pixel: the source pixels one output pixel spans, sqrt(|det| of A^-1's linear part),
    rounded up, clipped to 1..MAX_SUPERSAMPLE. 1 where the warp enlarges (no aliasing), and
    1 without `antialias` (`NetworkConfig.antialias`: the release's single sample)."""
    if not antialias:
        return 1
    linear = np.asarray(A, dtype=np.float64)[:2, :2]
    span = 1.0 / np.sqrt(abs(np.linalg.det(linear)))
    return int(np.clip(np.ceil(span - 1e-9), 1, MAX_SUPERSAMPLE))


def warp_image(
    image: torch.Tensor,
    A: Array,
    out_size: int | tuple[int, int] = CROP_SIZE,
    src: torch.Tensor | None = None,
    supersample: int = 1,
) -> torch.Tensor:
    """Bilinear warp of images (B, C, H, W) float by forward affines A (2, 3) or (B, 2, 3)
    (original -> output pixels) into (B, C, S, S) (or (B, C, Ho, Wo) for out_size (Ho, Wo)).
    Samples outside the image are 0 (cv2's BORDER_CONSTANT; edge samples blend with it).

    Each output pixel q samples p = A^-1 q. With `grid_sample(align_corners=True)`, the
    normalised coordinate -1 is the centre of pixel 0 and +1 the centre of pixel W - 1, so a
    pixel-centre-at-integer position p_x goes to g_x = 2 p_x / (W - 1) - 1 (likewise y with
    H - 1). The grid is computed in float64 and cast to the image's dtype (pass float64 images
    for sub-1e-5-pixel exactness). H, W >= 2. src: precomputed `source_points` (then A and
    out_size are not used).

    supersample k > 1 antialiases a warp that shrinks (`supersample_factor`): each output pixel
    is the mean of k x k bilinear samples at the centres of the k x k cells its square splits
    into (a box filter of the pixel's footprint), where k = 1 (the release, cv2.warpAffine)
    point-samples and aliases fine texture once a crop pixel spans several image pixels. Its
    grid comes from A in one `affine_grid` call in the image's dtype; src is not used.
    """
    if image.ndim != 4:
        raise DigitError(f"image: expected B x C x H x W, got {tuple(image.shape)}")
    b, _, h, w = image.shape
    k = int(supersample)
    if k < 1:
        raise DigitError(f"supersample: expected an integer >= 1, got {supersample!r}")
    if k > 1:
        grid = _supersampled_grid(A, b, (h, w), _size_hw(out_size), k, image.dtype, image.device)
        out = F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
        return F.avg_pool2d(out, k)
    if src is None:
        src = source_points(A, b, _size_hw(out_size), image.device)
    scale = torch.tensor([2.0 / (w - 1), 2.0 / (h - 1)], dtype=torch.float64, device=image.device)
    grid = (src * scale - 1.0).to(image.dtype)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def warp_labels(
    mask: Array,
    A: Array,
    out_size: int | tuple[int, int] = CROP_SIZE,
    src: torch.Tensor | None = None,
) -> Array:
    """Nearest-neighbour warp of class ids (B, H, W) (uint8 or integer; numpy or torch, returned
    as given) by forward affines A (2, 3) or (B, 2, 3) into (B, S, S) (or (B, Ho, Wo)).

    Each output pixel takes the label of the source pixel nearest to p = A^-1 q, rounding
    halves up (floor(p + 0.5), as cv2.warpAffine's INTER_NEAREST does); samples falling
    outside the image are background (0). Labels are copied, never blended. src: precomputed
    `source_points` (B, Ho, Wo, 2) (then A and out_size are not used).
    """
    as_numpy = not _is_torch(mask)
    labels = torch.as_tensor(mask)
    if labels.ndim != 3:
        raise DigitError(f"labels: expected B x H x W, got {tuple(labels.shape)}")
    b, h, w = labels.shape
    if src is None:
        src = source_points(A, b, _size_hw(out_size), labels.device)
    out_hw = tuple(src.shape[1:3])
    idx = torch.floor(src + 0.5).long()
    ix, iy = idx[..., 0], idx[..., 1]
    inside = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
    flat = (iy.clamp(0, h - 1) * w + ix.clamp(0, w - 1)).reshape(b, -1)
    out = labels.reshape(b, -1).gather(1, flat).reshape(b, *out_hw)
    out = torch.where(inside, out, torch.zeros((), dtype=out.dtype, device=out.device))
    return out.numpy() if as_numpy else out


def upsample_labels_nearest(labels: Array, factor: int = 2) -> Array:
    """Nearest upsampling (..., h, w) -> (..., h * f, w * f): pixel (i, j) takes (i // f, j // f)
    (the inverse of `downsample_labels_nearest` on blocks of equal labels)."""
    if _is_torch(labels):
        return labels.repeat_interleave(factor, -2).repeat_interleave(factor, -1)
    return np.repeat(np.repeat(labels, factor, axis=-2), factor, axis=-1)


# ---- horizontal flip of joints --------------------------------------------------------------


def _swap_blocks(a: np.ndarray, axis: int) -> np.ndarray:
    if a.shape[axis] != NUM_JOINTS:
        raise DigitError(f"joints: expected {NUM_JOINTS} along axis {axis}, got {a.shape}")
    right = np.take(a, np.arange(HAND_JOINTS), axis=axis)
    left = np.take(a, np.arange(HAND_JOINTS, NUM_JOINTS), axis=axis)
    return np.concatenate([left, right], axis=axis)


def swap_joint_hands(joints: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exchange the right (0..20) and left (21..41) joint blocks and their validity.

    joints (..., 42, C); valid (..., 42). Use after warping original joints with a
    `crop_transform(..., flip=True)`: the mirrored right hand is the network's left hand.
    """
    return _swap_blocks(np.asarray(joints), -2), _swap_blocks(np.asarray(valid), -1)


def crop_to_image(joints_uvd_crop: np.ndarray, crop_affine: np.ndarray) -> np.ndarray:
    """Undo the crop warp on predicted joints: joints_uvd_crop (B, 42, 3) u, v in crop pixels and
    d in mm; crop_affine (B, 2, 3) original -> crop. Returns (B, 42, 3) float64: u, v in original
    image pixels, d unchanged."""
    uvd = np.asarray(joints_uvd_crop, dtype=np.float64)
    inverse = invert_affine(np.asarray(crop_affine, dtype=np.float64))
    return np.concatenate([apply_affine(inverse, uvd[..., :2]), uvd[..., 2:]], axis=-1)
