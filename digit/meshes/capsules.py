"""Bone capsules of a hand and how deep another hand's vertices sit inside them.

A hand is approximated by one capsule per bone of InterHand2.6M's skeleton (20 per hand: the
segment from a joint to its parent, `core.joints.HAND_PARENTS`) with a fixed radius per bone.
The radius is measured once on the model's own rest mesh: the `RADIUS_QUANTILE` quantile of the
distances from each vertex to its nearest bone, over the vertices nearest to that bone. A low
quantile keeps capsules inside the skin, so hands that merely touch are not penalised; vertices of
the other hand deeper than that are. Cheap (V x 20 distances per hand) and differentiable.
"""

from __future__ import annotations

import numpy as np
import torch

from core.joints import HAND_PARENTS

RADIUS_QUANTILE = 0.25
BONE_CHILD = tuple(k for k, p in enumerate(HAND_PARENTS) if p >= 0)
BONE_PARENT = tuple(p for p in HAND_PARENTS if p >= 0)


def segment_distances(points: torch.Tensor, start: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
    """Distance from each point to each segment.

    points (..., P, 3); start, end (..., S, 3) segment ends (same leading dims). Returns
    (..., P, S), in the points' unit. A zero-length segment is its start point.
    """
    axis = end - start  # (..., S, 3)
    rel = points[..., :, None, :] - start[..., None, :, :]  # (..., P, S, 3)
    length2 = (axis * axis).sum(-1).clamp_min(1e-12)  # (..., S)
    t = ((rel * axis[..., None, :, :]).sum(-1) / length2[..., None, :]).clamp(0.0, 1.0)
    closest = rel - t[..., None] * axis[..., None, :, :]
    return (closest * closest).sum(-1).clamp_min(1e-12).sqrt()


def bone_ends(joints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """joints (..., 21, 3) -> the 20 bones' (child, parent) ends, each (..., 20, 3)."""
    return joints[..., list(BONE_CHILD), :], joints[..., list(BONE_PARENT), :]


def capsule_radii(vertices: np.ndarray, joints: np.ndarray) -> np.ndarray:
    """Radius (20,) of each bone's capsule, in the unit of the inputs, measured on one mesh.

    vertices (V, 3) and its joints (21, 3) (InterHand2.6M order), e.g. the rest mesh. Each vertex
    belongs to its nearest bone; a bone's radius is the `RADIUS_QUANTILE` quantile of its
    vertices' distances (0 for a bone no vertex is nearest to).
    """
    v = torch.as_tensor(np.asarray(vertices, dtype=np.float64))
    start, end = bone_ends(torch.as_tensor(np.asarray(joints, dtype=np.float64)))
    dist = segment_distances(v, start, end).numpy()  # (V, 20)
    nearest = dist.argmin(1)
    radii = np.zeros(len(BONE_CHILD))
    for b in range(len(BONE_CHILD)):
        mine = dist[nearest == b, b]
        radii[b] = np.quantile(mine, RADIUS_QUANTILE) if mine.size else 0.0
    return radii


def penetration_depths(
    vertices: torch.Tensor, joints: torch.Tensor, radii: torch.Tensor
) -> torch.Tensor:
    """How deep each vertex of one hand lies inside the capsules of another (0 outside).

    vertices (M, V, 3) of hand A; joints (M, 21, 3) of hand B; radii (M, 20) or (20,) of B's
    capsules; one unit throughout. Returns (M, V): max over B's bones of radius - distance,
    clamped at 0.
    """
    start, end = bone_ends(joints)
    depth = radii[..., None, :] - segment_distances(vertices, start, end)
    return depth.amax(-1).clamp_min(0.0)
