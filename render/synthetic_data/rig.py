"""Calibrated camera rigs for the synthetic captures, in InterHand2.6M's camera.json terms.

World frame: millimetres, the hands' workspace centred at `WORKSPACE_CENTRE_MM`, world "up" is -y.
Cameras follow OpenCV (+x right, +y down, +z forward); `camrot` maps world to camera and `campos`
is the camera centre in the world, so X_cam = camrot @ (X_world - campos), as in InterHand2.6M.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.camera import intrinsics

WORKSPACE_CENTRE_MM = np.array([0.0, -80.0, 1000.0])
PORTRAIT_HW = (512, 334)
LANDSCAPE_HW = (334, 512)


@dataclass(frozen=True)
class RigCamera:
    """One calibrated camera: `name` (e.g. "400026"; 400xxx colour, 41xxxx grey), `campos` (3,) mm,
    `camrot` (3, 3) world->camera, `focal` (2,) and `princpt` (2,) pixels, `hw` (height, width)."""

    name: str
    campos: np.ndarray
    camrot: np.ndarray
    focal: np.ndarray
    princpt: np.ndarray
    hw: tuple[int, int]

    @property
    def K(self) -> np.ndarray:
        """(3, 3) pinhole intrinsics."""
        return intrinsics(self.focal, self.princpt)

    @property
    def is_grey(self) -> bool:
        return self.name.startswith("41")


def look_at_rotation(campos: np.ndarray, target: np.ndarray, roll: float) -> np.ndarray:
    """World->camera rotation (3, 3) of a camera at `campos` looking at `target` (mm), with the
    image "up" as close to world up (-y) as possible, then rolled by `roll` radians."""
    z = target - campos
    z = z / np.linalg.norm(z)
    up = np.array([0.0, -1.0, 0.0])
    if abs(z @ up) > 0.99:  # looking straight up or down: any other reference direction works
        up = np.array([0.0, 0.0, 1.0])
    x = np.cross(z, up)  # OpenCV: x right, y down, z forward, so x = z cross up
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    rot = np.stack([x, y, z])  # rows: camera axes in world coordinates
    c, s = np.cos(roll), np.sin(roll)
    roll_rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return roll_rot @ rot


def make_rig(rng: np.random.Generator, n_cameras: int, capture: int) -> list[RigCamera]:
    """Cameras on a dome about the workspace, 0.75-1.35 m away and from 35 degrees below to 65
    above the hands, like InterHand2.6M's rig but more varied: focal lengths about 1150-1350 px,
    principal points near the image centre, mostly portrait 334x512 images with about one in
    five landscape, about one in three grey. Names are 40xxxx (colour) or 41xxxx (grey), unique
    within the capture for up to 100 cameras."""
    cameras = []
    for k in range(n_cameras):
        azimuth = 2 * np.pi * (k + rng.uniform(0.1, 0.9)) / n_cameras
        elevation = np.deg2rad(rng.uniform(-35.0, 65.0))
        radius = rng.uniform(750.0, 1350.0)
        direction = np.array(
            [
                np.cos(elevation) * np.sin(azimuth),
                -np.sin(elevation),
                -np.cos(elevation) * np.cos(azimuth),
            ]
        )
        campos = WORKSPACE_CENTRE_MM + radius * direction
        aim = WORKSPACE_CENTRE_MM + rng.normal(0.0, 35.0, 3)
        camrot = look_at_rotation(campos, aim, roll=np.deg2rad(rng.normal(0.0, 15.0)))
        hw = LANDSCAPE_HW if rng.uniform() < 0.2 else PORTRAIT_HW
        f = rng.uniform(1150.0, 1350.0)
        focal = np.array([f, f * (1.0 + rng.normal(0.0, 2e-4))])
        princpt = np.array([hw[1] / 2.0, hw[0] / 2.0]) + rng.uniform(-35.0, 35.0, 2)
        grey = rng.uniform() < 0.33
        number = (100 * capture + k) % 10000  # four digits, so the 40/41 prefix stays intact
        name = f"{(410000 if grey else 400000) + number}"
        cameras.append(RigCamera(name, campos, camrot, focal, princpt, hw))
    return cameras


def rig_to_camera_json(cameras: list[RigCamera]) -> dict[str, dict[str, list]]:
    """One capture's entry of camera.json: {"campos"|"camrot"|"focal"|"princpt": {name: value}}."""
    return {
        "campos": {c.name: c.campos.tolist() for c in cameras},
        "camrot": {c.name: c.camrot.tolist() for c in cameras},
        "focal": {c.name: c.focal.tolist() for c in cameras},
        "princpt": {c.name: c.princpt.tolist() for c in cameras},
    }
