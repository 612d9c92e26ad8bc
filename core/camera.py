"""OpenCV pinhole cameras in InterHand2.6M's convention (float64, millimetres, pixels).

+x right, +y down, +z forward; pixel centres sit at integer coordinates (no 0.5 offset).
A world point X (mm) maps to the camera frame as ``X_cam = R @ X + t`` with ``t = -R @ campos``,
and to pixels as ``u = fx * X/Z + s * Y/Z + cx``, ``v = fy * Y/Z + cy`` (InterHand2.6M has s = 0).

Every function broadcasts: leading dimensions of the points and of the camera arrays must
broadcast against each other, e.g. points (B, J, 3) with per-image R (B, 1, 3, 3), t (B, 1, 3),
K (B, 1, 3, 3).
"""

from dataclasses import dataclass

import numpy as np


def world_to_camera(X: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Rigid world -> camera transform.

    X (..., 3) world points in mm; R (..., 3, 3) world->camera rotation; t (..., 3) translation
    in mm. Returns X_cam (..., 3) = R @ X + t, float64.
    """
    X = np.asarray(X, dtype=np.float64)
    R = np.asarray(R, dtype=np.float64)
    t = np.asarray(t, dtype=np.float64)
    return np.matmul(R, X[..., None])[..., 0] + t


def world_to_camera_exact(points: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    """`world_to_camera` written out element by element, for outputs that must be bit-identical.

    No BLAS: a matmul's rounding depends on the BLAS build, the CPU and even the batch size, so
    the mask cache (whose bytes are checked across machines) uses this form. points (B, P, 3)
    world mm; R (B, 3, 3); t (B, 3) mm. Returns (B, P, 3) float64 camera mm.
    """
    x, y, z = (points[..., k] for k in range(3))
    rows = [
        ((R[:, k, 0, None] * x + R[:, k, 1, None] * y) + R[:, k, 2, None] * z) + t[:, k, None]
        for k in range(3)
    ]
    return np.stack(rows, axis=-1)


def world_to_camera_centred(X: np.ndarray, campos: np.ndarray, R: np.ndarray) -> np.ndarray:
    """camera.json's own form, X_cam = R @ (X - campos), for one camera.

    The same transform as `world_to_camera` with t = -R @ campos, rounded differently
    (the centre is subtracted first); the synthetic generator's files, and so every
    dataset made with it, are pinned to this rounding. X (..., 3) world mm; campos (3,) camera
    centre in world mm; R (3, 3) world->camera. Returns (..., 3) float64 camera mm.
    """
    X = np.asarray(X, dtype=np.float64)
    return (X - campos) @ np.asarray(R, dtype=np.float64).T


def project(X_cam: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pinhole projection of camera-frame points to pixels.

    X_cam (..., 3) mm (Z > 0 in front of the camera); K (..., 3, 3) intrinsics with last row
    [0, 0, 1]. Returns uv (..., 2) float64: u = fx X/Z + s Y/Z + cx, v = fy Y/Z + cy.
    Points with Z = 0 give inf/nan (numpy's division rules), never an exception.
    """
    X_cam = np.asarray(X_cam, dtype=np.float64)
    K = np.asarray(K, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        x = X_cam[..., 0] / X_cam[..., 2]
        y = X_cam[..., 1] / X_cam[..., 2]
    u = K[..., 0, 0] * x + K[..., 0, 1] * y + K[..., 0, 2]
    v = K[..., 1, 1] * y + K[..., 1, 2]
    return np.stack([u, v], axis=-1)


def backproject(uv: np.ndarray, z: np.ndarray, K: np.ndarray) -> np.ndarray:
    """Pixels plus camera depth back to camera-frame points (inverse of `project`).

    uv (..., 2) pixels; z (...,) camera depth Z in mm; K (..., 3, 3). Returns (..., 3) mm:
    Y = (v - cy) / fy * Z, X = (u - cx - s Y/Z) / fx * Z.
    """
    uv = np.asarray(uv, dtype=np.float64)
    z = np.asarray(z, dtype=np.float64)
    K = np.asarray(K, dtype=np.float64)
    y = (uv[..., 1] - K[..., 1, 2]) / K[..., 1, 1]
    x = (uv[..., 0] - K[..., 0, 2] - K[..., 0, 1] * y) / K[..., 0, 0]
    return np.stack([x * z, y * z, z * np.ones_like(x)], axis=-1)


def intrinsics(focal: np.ndarray, princpt: np.ndarray) -> np.ndarray:
    """K (..., 3, 3) from focal (..., 2) = (fx, fy) and princpt (..., 2) = (cx, cy), pixels."""
    focal = np.asarray(focal, dtype=np.float64)
    princpt = np.asarray(princpt, dtype=np.float64)
    K = np.zeros((*np.broadcast_shapes(focal.shape[:-1], princpt.shape[:-1]), 3, 3))
    K[..., 0, 0] = focal[..., 0]
    K[..., 1, 1] = focal[..., 1]
    K[..., 0, 2] = princpt[..., 0]
    K[..., 1, 2] = princpt[..., 1]
    K[..., 2, 2] = 1.0
    return K


@dataclass(frozen=True, eq=False)
class Camera:
    """One calibrated pinhole camera (float64, read-only arrays).

    K (3, 3) intrinsics in pixels (last row [0, 0, 1], K[1, 0] = 0); R (3, 3) world->camera
    rotation; t (3,) mm, with X_cam = R @ X_world + t.
    """

    K: np.ndarray
    R: np.ndarray
    t: np.ndarray

    def __post_init__(self) -> None:
        for name, shape in (("K", (3, 3)), ("R", (3, 3)), ("t", (3,))):
            value = np.array(getattr(self, name), dtype=np.float64)
            if value.shape != shape:
                raise ValueError(f"Camera.{name} has shape {value.shape}, expected {shape}")
            value.setflags(write=False)
            object.__setattr__(self, name, value)
        if not (self.K[2] == (0.0, 0.0, 1.0)).all() or self.K[1, 0] != 0.0:
            raise ValueError("Camera.K must be upper triangular with last row [0, 0, 1]")

    @classmethod
    def from_interhand(
        cls,
        campos: np.ndarray,
        camrot: np.ndarray,
        focal: np.ndarray,
        princpt: np.ndarray,
    ) -> "Camera":
        """From camera.json's values: campos (3,) camera centre in world mm, camrot (3, 3)
        world->camera rotation, focal (2,) (fx, fy) and princpt (2,) (cx, cy) in pixels."""
        R = np.asarray(camrot, dtype=np.float64)
        campos = np.asarray(campos, dtype=np.float64)
        return cls(K=intrinsics(focal, princpt), R=R, t=-(R @ campos))

    @property
    def campos(self) -> np.ndarray:
        """Camera centre (3,) in world mm: -R^T t."""
        return -(self.R.T @ self.t)
