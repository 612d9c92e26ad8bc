"""Ground truth for demo images taken from a dataset split (`digit-demo --split`), and the
per-image error of a prediction against it (the official formulas of `digit.metrics`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.camera import intrinsics, project
from core.interhand.reader import ImageRecord, ManoFit
from core.joints import HAND_JOINTS, ROOT_JOINTS, with_root_validity
from digit.metrics import mpjpe_per_image, per_joint_errors, root_relative

GT_ROOT_DEPTH = "ground truth"


@dataclass(frozen=True)
class ImageTruth:
    """One image's annotation.

    joints_cam (42, 3) camera mm; joint_valid (42,) bool (own-root validity folded in);
    focal (2,), princpt (2,) of the image's camera, pixels; mano: the (right, left) MANO fits
    (None where absent) with the camera's R (3, 3) and t (3,) mm (world -> camera), for the
    ground-truth meshes of `digit-demo --meshes`.
    """

    joints_cam: np.ndarray
    joint_valid: np.ndarray
    focal: np.ndarray
    princpt: np.ndarray
    mano: tuple[ManoFit | None, ManoFit | None] = (None, None)
    R: np.ndarray | None = None
    t: np.ndarray | None = None

    @classmethod
    def from_record(cls, record: ImageRecord) -> ImageTruth:
        K = record.camera.K
        return cls(
            joints_cam=np.asarray(record.joints_cam, dtype=np.float64),
            joint_valid=with_root_validity(np.asarray(record.joint_valid, dtype=bool)),
            focal=np.array([K[0, 0], K[1, 1]]),
            princpt=np.array([K[0, 2], K[1, 2]]),
            mano=record.mano,
            R=np.asarray(record.camera.R),
            t=np.asarray(record.camera.t),
        )

    @property
    def root_valid(self) -> np.ndarray:
        """(2,) bool (right, left)."""
        return self.joint_valid[list(ROOT_JOINTS)]

    @property
    def root_depth(self) -> np.ndarray:
        """(2,) mm (right, left) camera depth of the roots (meaningless where not valid)."""
        return self.joints_cam[list(ROOT_JOINTS), 2]

    def joints_uv(self) -> np.ndarray:
        """(42, 2) the joints projected into the image, pixels."""
        return project(self.joints_cam, intrinsics(self.focal, self.princpt))

    def joints_rel(self) -> np.ndarray:
        """(42, 3) mm, each hand relative to its own root."""
        return root_relative(self.joints_cam[None])[0]


def image_mpjpe(pred_cam: np.ndarray, truth: ImageTruth) -> tuple[float, np.ndarray]:
    """Root-relative MPJPE (mm) of predicted camera-frame joints pred_cam (42, 3) over the
    image's valid joints, and per hand (2,) (right, left); NaN where no joint counts."""
    errors = per_joint_errors(pred_cam[None], truth.joints_cam[None], truth.joint_valid[None])
    hand_of_joint = np.arange(2 * HAND_JOINTS) // HAND_JOINTS
    per_hand = mpjpe_per_image(np.where(hand_of_joint == np.arange(2)[:, None], errors, np.nan))
    return float(mpjpe_per_image(errors)[0]), per_hand
