"""What the data pipeline hands to training and evaluation: one batch of cropped samples.

Shared contract between `digit.data.dataset` (which fills it), the trainer and the evaluator.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from digit.targets import PoseTargets


@dataclass(frozen=True)
class Batch:
    """B cropped samples. Crop space: the 256x256 network input, pixel centres at integers.

    image: (B, 3, 256, 256) float32 RGB in [0, 1] (no mean/std normalisation).
    targets: training targets in heatmap units (`digit.targets.PoseTargets`).
    segm_target: (B, 128, 128) int64 class ids 0..32 (this project's order; flipped samples have
        their hands swapped); segm_valid: (B,) bool, usable as ground truth (the cache's `valid`).
    index: (B,) int64 row of the sample in its split (data.json order); image_id: (B,) int64.
    crop_affine: (B, 2, 3) float64 map from original image pixels to crop pixels.
    joints_cam: (B, 42, 3) float64 ground-truth camera-frame joints, mm (NaN where unknown).
    joint_valid: (B, 42) bool official evaluation validity (data.json x own root), not limited
        to the crop. abs_depth: (B, 2) float64 ground-truth root depths (right, left), mm.
    focal, princpt: (B, 2) float64 camera intrinsics of the original image.
    hand_type_code: (B,) int64 0 right, 1 left, 2 interacting; hand_type_valid: (B,) bool.
    lr_iou: (B,) float32 interaction degree from the mask cache (NaN unless both hands).
    skipped: one line per training sample that could not be read (its image or mask) and was
        replaced by the next readable one (`digit.data.dataset`), naming the file and problem.
    """

    image: torch.Tensor
    targets: PoseTargets
    segm_target: torch.Tensor
    segm_valid: torch.Tensor
    index: torch.Tensor
    image_id: torch.Tensor
    crop_affine: torch.Tensor
    joints_cam: torch.Tensor
    joint_valid: torch.Tensor
    abs_depth: torch.Tensor
    focal: torch.Tensor
    princpt: torch.Tensor
    hand_type_code: torch.Tensor
    hand_type_valid: torch.Tensor
    lr_iou: torch.Tensor
    skipped: tuple[str, ...] = ()

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """The same batch with every tensor on `device`."""

        def move(x):
            if isinstance(x, torch.Tensor):
                return x.to(device, non_blocking=non_blocking)
            if isinstance(x, PoseTargets):
                return PoseTargets(**{f.name: move(getattr(x, f.name)) for f in fields(x)})
            return x

        return Batch(**{f.name: move(getattr(self, f.name)) for f in fields(self)})
