"""A hand's MANO fit reflected through a plane: the other hand, its mirror image.

Why: a right hand and its reflection through a plane facing the camera have the same outline in
the picture and show opposite sides (palm for back), so data that holds both gives the outline
no say in which hand it is (BENCHMARKS.md, "The cue alone"). For a dataset the reflection must
be a MANO fit of the left hand, because `build-masks` and the annotations pose hands from fits.

The maths, for a left model that is the exact mirror of the right (x -> -x, as the synthetic
model is and as real MANO is up to its fitting noise, with the left shapedirs fixed as
`render.hand_model` does): with S = diag(-1, 1, 1),

- mirroring every axis-angle (x, y, z) -> (x, -y, -z), the same shape and the translation
  S t poses the left model at S (right mesh): the mirror through the world plane x = 0;
- the reflection through the plane {p : n . p = d} is p -> H p + 2 d n with H = I - 2 n n^T,
  and H = Q S with Q = H S a rotation; so the wanted mesh is the rigid motion (Q, 2 d n) of the
  x = 0 mirror. MANO rotates a hand about its root joint J0 (rest, shape-dependent) and then
  adds the translation, so the motion gives global rotation Q R and translation
  Q (J0 + S t) + 2 d n - J0.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from render.hand_model import HandModel
from render.synthetic_mano.pose_prior import mirror_axis_angle

MIRROR_X = np.diag([-1.0, 1.0, 1.0])


def reflection(normal: np.ndarray, offset: float) -> tuple[np.ndarray, np.ndarray]:
    """(H (3, 3), c (3,)) of p -> H p + c, the reflection through {p : n . p = offset} (n made
    unit length; offset in the unit of the points)."""
    n = np.asarray(normal, dtype=np.float64)
    n = n / np.linalg.norm(n)
    return np.eye(3) - 2.0 * np.outer(n, n), 2.0 * offset * n


def rest_root_joint(model: HandModel, side: str, shape: np.ndarray) -> np.ndarray:
    """MANO's root joint J0 (3,) metres, before any pose, of one hand with betas `shape` (10,)."""
    layer = model.layers[side]
    template = layer.v_template.double().cpu().numpy()
    shapedirs = layer.shapedirs.double().cpu().numpy()
    regressor = layer.J_regressor.double().cpu().numpy()
    shaped = template + np.einsum("vcb,b->vc", shapedirs, np.asarray(shape, dtype=np.float64))
    return regressor[0] @ shaped


def reflect_fit(
    model: HandModel,
    side: str,
    pose: np.ndarray,
    shape: np.ndarray,
    trans: np.ndarray,
    normal: np.ndarray,
    offset_mm: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The other hand's fit (pose (48,), shape (10,), trans (3,) metres; NeuralAnnot convention,
    pose stored minus the model's mean) whose mesh is the `side` ("right" or "left") fit's mesh
    reflected through the world plane {p : normal . p = offset_mm} (p in mm)."""
    if side not in ("right", "left"):
        raise ValueError(f"side must be 'right' or 'left', got {side!r}")
    other = "left" if side == "right" else "right"
    pose = np.asarray(pose, dtype=np.float64)
    h, c_mm = reflection(normal, offset_mm)
    q = h @ MIRROR_X
    fingers = pose[3:] + model.hands_mean(side).reshape(-1)
    other_fingers = mirror_axis_angle(fingers.reshape(15, 3)).reshape(-1)
    other_fingers = other_fingers - model.hands_mean(other).reshape(-1)
    r_side = Rotation.from_rotvec(pose[:3]).as_matrix()
    r_other = q @ (MIRROR_X @ r_side @ MIRROR_X)
    j0 = rest_root_joint(model, other, shape)
    trans_other = q @ (j0 + MIRROR_X @ np.asarray(trans, dtype=np.float64)) + c_mm / 1000.0 - j0
    pose_other = np.concatenate([Rotation.from_matrix(r_other).as_rotvec(), other_fingers])
    return pose_other, np.array(shape, dtype=np.float64), trans_other
