"""Smooth random hand motion for synthetic sequences.

A sequence is a few random key poses joined smoothly: global orientations by spherical linear
interpolation, finger angles and wrist positions linearly. Wrist positions are world mm; the world
"up" is -y (see `rig.py`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.spatial.transform import Rotation, Slerp

from render.synthetic_data.rig import WORKSPACE_CENTRE_MM

# (rng, n, side) -> (n, 45) natural finger poses, full axis-angle (not minus the MANO mean).
PoseSampler = Callable[[np.random.Generator, int, str], np.ndarray]


@dataclass(frozen=True)
class HandTrack:
    """One hand over a sequence of F frames: `orient` (F, 3, 3) world rotation of the hand's
    canonical frame, `finger_pose` (F, 45) full axis-angle, `wrist_mm` (F, 3) world wrist
    position, `betas` (10,) shape, constant over the sequence."""

    orient: np.ndarray
    finger_pose: np.ndarray
    wrist_mm: np.ndarray
    betas: np.ndarray


def canonical_to_world(finger_dir: np.ndarray, lateral_dir: np.ndarray) -> np.ndarray:
    """Rotation (3, 3) taking the hand model's rest frame to a world pose with the fingers up
    (world -y) and the palm facing the world +z direction.

    finger_dir: (3,) wrist -> middle-finger base in the model's rest frame; lateral_dir: (3,)
    pinky base -> index base, made orthogonal to finger_dir here.
    """
    f = finger_dir / np.linalg.norm(finger_dir)
    lat = lateral_dir - (lateral_dir @ f) * f
    lat /= np.linalg.norm(lat)
    normal = np.cross(f, lat)
    model_axes = np.stack([f, lat, normal], axis=1)  # columns
    world_axes = np.stack([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]], axis=1)
    if np.linalg.det(world_axes) * np.linalg.det(model_axes) < 0:
        world_axes[:, 1] *= -1.0  # keep a proper rotation whatever the model's handedness
    return world_axes @ model_axes.T


def random_orientations(rng: np.random.Generator, n: int, base: np.ndarray) -> np.ndarray:
    """(n, 3, 3) natural global orientations: any turn about the world vertical, then a tilt of up
    to about 70 degrees, applied to `base` (3, 3) (fingers up). Hands never point straight down."""
    yaw = Rotation.from_euler("y", rng.uniform(0.0, 2 * np.pi, (n, 1)))
    axis = rng.normal(size=(n, 3))
    axis[:, 1] = 0.0  # tilt about a horizontal axis
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    tilt = Rotation.from_rotvec(axis * np.deg2rad(rng.uniform(0.0, 70.0, n))[:, None])
    return (tilt * yaw).as_matrix() @ base


def _interpolate_keys(keys: np.ndarray, n_frames: int) -> np.ndarray:
    """Linear interpolation of (K, D) key values spread evenly over n_frames -> (n_frames, D)."""
    t_keys = np.linspace(0.0, 1.0, len(keys))
    t = np.linspace(0.0, 1.0, n_frames)
    return np.stack([np.interp(t, t_keys, keys[:, d]) for d in range(keys.shape[1])], axis=1)


def _slerp_keys(keys: np.ndarray, n_frames: int) -> np.ndarray:
    """Spherical interpolation of (K, 3, 3) key rotations -> (n_frames, 3, 3)."""
    t_keys = np.linspace(0.0, 1.0, len(keys))
    return Slerp(t_keys, Rotation.from_matrix(keys))(np.linspace(0.0, 1.0, n_frames)).as_matrix()


def key_count(n_frames: int) -> int:
    """Key poses of an n_frames sequence: one about every two and a half frames, so that
    consecutive 5 fps frames differ as much as in the real data (and no two look alike)."""
    return max(2, (n_frames + 2) // 3 + 1)


def random_track(
    rng: np.random.Generator,
    n_frames: int,
    side: str,
    base: np.ndarray,
    sample_pose: PoseSampler,
    wrist_centre_mm: np.ndarray | None = None,
    betas: np.ndarray | None = None,
    n_keys: int | None = None,
) -> HandTrack:
    """A smooth random track of one hand. `base` (3, 3) is `canonical_to_world` for this hand."""
    n_keys = n_keys or key_count(n_frames)
    centre = WORKSPACE_CENTRE_MM if wrist_centre_mm is None else wrist_centre_mm
    wrist_keys = centre + rng.normal(0.0, [35.0, 25.0, 35.0], size=(n_keys, 3))
    return HandTrack(
        orient=_slerp_keys(random_orientations(rng, n_keys, base), n_frames),
        finger_pose=_interpolate_keys(sample_pose(rng, n_keys, side), n_frames),
        wrist_mm=_interpolate_keys(wrist_keys, n_frames),
        betas=rng.normal(0.0, 0.8, 10) if betas is None else betas,
    )


def partner_offsets(rng: np.random.Generator, n_frames: int, max_mm: float = 120.0) -> np.ndarray:
    """(n_frames, 3) smooth offsets, mm, from the right wrist to the left wrist in interacting
    sequences: key distances uniform in [0, max_mm], in random directions (with the default,
    from hands touching and overlapping to about 200 mm apart once the hands' size counts)."""
    n_keys = key_count(n_frames)
    direction = rng.normal(size=(n_keys, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    distance = rng.uniform(0.0, max_mm, n_keys)
    return _interpolate_keys(direction * distance[:, None], n_frames)


def facing_partner(
    rng: np.random.Generator,
    first: HandTrack,
    first_base: np.ndarray,
    partner_base: np.ndarray,
    finger_pose: np.ndarray,
) -> HandTrack:
    """The other hand held against `first`, palm to palm or back to back (a prayer or clasp):
    same world orientation of its rest frame, wrist 15-50 mm away along the palm normal.

    first_base, partner_base: (3, 3) `canonical_to_world` of the two hands; finger_pose:
    (F, 45) the partner's fingers. Because the hands are mirror images, equal orientations of
    their rest frames put their palms on opposite sides of the common palm plane.
    """
    n_frames = len(first.orient)
    world_turn = first.orient @ first_base.T  # (F, 3, 3): rest frame (fingers up) -> world
    normal = world_turn @ np.array([0.0, 0.0, -1.0])  # palm-plane normal, see canonical_to_world
    side = rng.choice([-1.0, 1.0])
    gap = _interpolate_keys(rng.uniform(15.0, 50.0, (3, 1)), n_frames)
    slide = _interpolate_keys(rng.normal(0.0, 12.0, (3, 3)), n_frames)
    return HandTrack(
        orient=world_turn @ partner_base,
        finger_pose=finger_pose,
        wrist_mm=first.wrist_mm + side * gap * normal + slide,
        betas=first.betas,
    )
