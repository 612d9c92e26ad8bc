"""Pure decoding of the network's raw maps into coordinates (device- and dtype-agnostic).

Units: heatmap units put cell (row r, col c) at centre (c + 0.5, r + 0.5); a crop pixel is a
heatmap unit x 4 (the inverse of the targets' pixel / 4, as released).
Depth: heatmap depth z in 0..64 maps to (z / 64 x 2 - 1) x 200 mm; relative root depth bins
b in 0..64 map to (b / 64 x 2 - 1) x 200 mm.
"""

from __future__ import annotations

import torch

from digit.model.config import DEPTH_HALF_RANGE_MM, DEPTH_UNITS, FEATURE_STRIDE, ROOT_BINS


def normalise_heatmaps(logits: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """Softmax of beta x logits over each map's cells: (B, J, H, W) -> (B, J, H, W), sums to 1."""
    b, j, h, w = logits.shape
    return torch.softmax(beta * logits.reshape(b, j, h * w), dim=-1).reshape(b, j, h, w)


def soft_argmax_2d(probs: torch.Tensor) -> torch.Tensor:
    """Expected cell centre of normalised heatmaps: (B, J, H, W) -> (B, J, 2) as (x, y) in
    heatmap units (cell centres at index + 0.5)."""
    _, _, h, w = probs.shape
    xs = torch.arange(w, device=probs.device, dtype=probs.dtype) + 0.5
    ys = torch.arange(h, device=probs.device, dtype=probs.dtype) + 0.5
    x = (probs.sum(dim=-2) * xs).sum(dim=-1)  # marginal over rows, then expectation
    y = (probs.sum(dim=-1) * ys).sum(dim=-1)
    return torch.stack([x, y], dim=-1)


def expected_depth(probs: torch.Tensor, depth_maps: torch.Tensor) -> torch.Tensor:
    """Per-joint depth = sum over cells of probs x depth map: (B, J, H, W) x2 -> (B, J),
    in the depth maps' units (heatmap depth units)."""
    return (probs * depth_maps).flatten(2).sum(dim=-1)


def bin_expectation(logits: torch.Tensor) -> torch.Tensor:
    """Expected bin index under softmax(logits): (B, K) -> (B,), bins 0..K-1 (no + 0.5)."""
    bins = torch.arange(logits.shape[-1], device=logits.device, dtype=logits.dtype)
    return (torch.softmax(logits, dim=-1) * bins).sum(dim=-1)


def heatmap_to_pixels(xy: torch.Tensor, stride: int = FEATURE_STRIDE) -> torch.Tensor:
    """Heatmap units -> crop pixels (x stride). Any shape."""
    return xy * stride


def heatmap_depth_to_mm(z: torch.Tensor, units: int = DEPTH_UNITS) -> torch.Tensor:
    """Root-relative depth, heatmap units (0..64) -> mm (-200..200). Any shape."""
    return (z / units * 2.0 - 1.0) * DEPTH_HALF_RANGE_MM


def mm_to_heatmap_depth(mm: torch.Tensor, units: int = DEPTH_UNITS) -> torch.Tensor:
    """Inverse of `heatmap_depth_to_mm` (training targets). Any shape."""
    return (mm / DEPTH_HALF_RANGE_MM + 1.0) / 2.0 * units


def root_bins_to_mm(bins: torch.Tensor, num_bins: int = ROOT_BINS) -> torch.Tensor:
    """Relative root depth, bin coordinate (0..64) -> mm (-200..200). Any shape."""
    return (bins / num_bins * 2.0 - 1.0) * DEPTH_HALF_RANGE_MM


def mm_to_root_bins(mm: torch.Tensor, num_bins: int = ROOT_BINS) -> torch.Tensor:
    """Inverse of `root_bins_to_mm` (training targets). Any shape."""
    return (mm / DEPTH_HALF_RANGE_MM + 1.0) / 2.0 * num_bins
