"""Part-segmentation scores from one dataset-level confusion matrix (paper Table 3).

The evaluator adds each batch's pixel counts into one (33, 33) int64 matrix on the device
(`confusion_counts`, rows = ground-truth class, columns = predicted class), over the images
whose masks are `valid`; nothing per pixel is kept. IoU of class c = TP / (TP + FP + FN) =
M[c, c] / (row sum + column sum - M[c, c]). A class absent from both the ground truth and the
prediction has no IoU (NaN) and is excluded from every mean. mIoU is the mean over the 32 part
classes (background excluded; it is reported on its own), per hand over right 1..16 and left
17..32 (`core.parts`). A second matrix counts the interacting images alone, so that right vs
left can be read on single-hand and on two-hand images apart (single = all - interacting).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.errors import DigitError
from core.parts import LEFT_OFFSET, NUM_CLASSES, NUM_PARTS, RIGHT_OFFSET

RIGHT_CLASSES = slice(RIGHT_OFFSET, RIGHT_OFFSET + NUM_PARTS)
LEFT_CLASSES = slice(LEFT_OFFSET, LEFT_OFFSET + NUM_PARTS)
PART_CLASSES = slice(RIGHT_OFFSET, NUM_CLASSES)

# Why there is no mIoU (`SegmConfusion.missing`).
NO_SEGM_OUTPUT = "no segmentation predicted (a variant without segmentation head, or a reference)"
NO_VALID_MASK = "no evaluated image has a valid ground-truth part mask (no mask cache?)"


def confusion_counts(
    logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, num_classes: int = NUM_CLASSES
) -> torch.Tensor:
    """Pixel counts of one batch, on the inputs' device.

    logits (B, C, H, W) segmentation logits (prediction = argmax over C; ties go to the lower
    class); target (B, H, W) integer class ids 0..C-1 (ids >= C are not counted); valid (B,)
    bool images to count.
    Returns (C, C) int64: [true class, predicted class].
    """
    if logits.shape[1] != num_classes:
        raise ValueError(f"logits: {logits.shape[1]} classes, expected {num_classes}")
    if logits.shape[0:1] + logits.shape[2:] != target.shape:
        raise ValueError(f"logits {tuple(logits.shape)} and target {tuple(target.shape)} differ")
    pred = logits.argmax(dim=1)[valid]
    true = target[valid].to(pred.dtype)
    pairs = (true * num_classes + pred).reshape(-1)
    counts = torch.bincount(pairs, minlength=num_classes * num_classes)
    return counts[: num_classes * num_classes].reshape(num_classes, num_classes)


@dataclass(frozen=True, eq=False)
class SegmConfusion:
    """What the evaluator accumulated: matrix (33, 33) int64 pixel counts [true, predicted] over
    `images` images with valid masks, or None with `missing` saying why there is none;
    interacting (33, 33) the part of `matrix` from interacting images (None: not told which
    images are interacting)."""

    matrix: np.ndarray | None
    images: int = 0
    missing: str | None = None
    interacting: np.ndarray | None = None


class ConfusionAccumulator:
    """The dataset-level confusion matrix, added up batch by batch on the network's device (no
    label map is kept); `result` gives the `SegmConfusion` of everything seen."""

    def __init__(self) -> None:
        self.matrix: torch.Tensor | None = None
        self.interacting: torch.Tensor | None = None
        self.images: torch.Tensor | int = 0
        self.missing: str | None = None

    def add(self, logits: torch.Tensor | None, target, valid, interacting=None) -> None:
        """logits (B, C, H, W) or None (no segmentation output); target (B, H, W) class ids and
        valid (B,) bool, or None for a loader without masks (nothing is counted); interacting
        (B,) bool, the images also counted in the interacting matrix (None: not kept)."""
        if logits is None:
            self.missing = NO_SEGM_OUTPUT
            return
        if logits.shape[1] != NUM_CLASSES:
            self.missing = (
                f"the network predicts {logits.shape[1]} segmentation classes, not the "
                f"{NUM_CLASSES} part classes"
            )
            return
        if self.matrix is None:
            self.matrix = torch.zeros(NUM_CLASSES, NUM_CLASSES, dtype=torch.int64)
            self.matrix = self.matrix.to(logits.device)
        if target is None or valid is None:
            return
        if tuple(target.shape[1:]) != tuple(logits.shape[2:]):
            raise DigitError(
                f"evaluation: segmentation is {tuple(logits.shape[2:])} pixels but the mask "
                f"labels are {tuple(target.shape[1:])}"
            )
        target = target.to(logits.device, non_blocking=True)
        valid = valid.to(logits.device, torch.bool, non_blocking=True)
        self.matrix += confusion_counts(logits, target, valid)
        self.images = self.images + valid.sum()
        if interacting is not None:
            both = valid & interacting.to(logits.device, torch.bool, non_blocking=True)
            counts = confusion_counts(logits, target, both)
            self.interacting = counts if self.interacting is None else self.interacting + counts

    def result(self) -> SegmConfusion:
        """The `SegmConfusion` of the batches added so far (matrix None, with the reason, if the
        predictions had no 33-class segmentation)."""
        if self.missing is not None or self.matrix is None:
            return SegmConfusion(None, 0, self.missing or NO_SEGM_OUTPUT)
        inter = self.interacting
        return SegmConfusion(
            self.matrix.cpu().numpy().astype(np.int64),
            int(self.images),
            interacting=None if inter is None else inter.cpu().numpy().astype(np.int64),
        )


def class_iou(matrix) -> np.ndarray:
    """matrix (C, C) counts [true, predicted] -> (C,) float64 IoU, NaN for a class absent from
    both the ground truth and the prediction."""
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise ValueError(f"confusion matrix: shape {m.shape}, expected (C, C)")
    tp = np.diag(m)
    union = m.sum(axis=0) + m.sum(axis=1) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def mean_iou(iou) -> float:
    """(K,) IoU with NaN for absent classes -> the mean over the classes that have one (NaN if
    none does)."""
    a = np.asarray(iou, dtype=np.float64)
    ok = np.isfinite(a)
    return float(a[ok].mean()) if ok.any() else float("nan")


@dataclass(frozen=True, eq=False)
class SegmScores:
    """Segmentation scores (fractions in [0, 1], NaN where undefined).

    miou: mean IoU over the 32 part classes present in the ground truth or the prediction;
    miou_right / miou_left: the same over classes 1..16 / 17..32; background_iou: class 0 alone;
    side_accuracy: right vs left on hand pixels (`side_accuracy`), side_accuracy_single /
    side_accuracy_interacting the same on single-hand / interacting images alone (NaN when the
    evaluator was not told which images are interacting); per_class (33,) IoU by class id (NaN:
    absent from both); images: how many images were counted; missing: why there are no scores
    (None when there are).
    """

    miou: float
    miou_right: float
    miou_left: float
    background_iou: float
    side_accuracy: float
    per_class: np.ndarray
    images: int
    missing: str | None
    side_accuracy_single: float = float("nan")
    side_accuracy_interacting: float = float("nan")


def side_accuracy(matrix) -> float:
    """Right vs left on hand pixels: of the pixels of either hand (true classes 1..32) predicted
    as a part of either hand, the share predicted as a part of the true one (the part itself
    may be wrong; hand vs background is the IoUs' business). matrix: (33, 33) confusion counts,
    rows true, columns predicted. NaN when no hand pixel is predicted as a hand."""
    m = np.asarray(matrix, dtype=np.float64)
    same = m[RIGHT_CLASSES, RIGHT_CLASSES].sum() + m[LEFT_CLASSES, LEFT_CLASSES].sum()
    swapped = m[RIGHT_CLASSES, LEFT_CLASSES].sum() + m[LEFT_CLASSES, RIGHT_CLASSES].sum()
    total = same + swapped
    return float(same / total) if total > 0 else float("nan")


def segm_scores(confusion: SegmConfusion) -> SegmScores:
    """`SegmScores` of an accumulated confusion matrix; all NaN (with the reason) when there is
    no matrix or no image was counted."""
    if confusion.matrix is None or confusion.images == 0:
        nan = float("nan")
        missing = confusion.missing if confusion.matrix is None else NO_VALID_MASK
        per_class = np.full(NUM_CLASSES, np.nan)
        return SegmScores(
            nan, nan, nan, nan, nan, per_class, confusion.images, missing or NO_VALID_MASK
        )
    iou = class_iou(confusion.matrix)
    inter = confusion.interacting
    sides = (float("nan"), float("nan"))
    if inter is not None:
        sides = (side_accuracy(confusion.matrix - inter), side_accuracy(inter))
    if iou.shape != (NUM_CLASSES,):
        raise ValueError(f"confusion matrix: {iou.shape[0]} classes, expected {NUM_CLASSES}")
    return SegmScores(
        miou=mean_iou(iou[PART_CLASSES]),
        miou_right=mean_iou(iou[RIGHT_CLASSES]),
        miou_left=mean_iou(iou[LEFT_CLASSES]),
        background_iou=float(iou[0]),
        side_accuracy=side_accuracy(confusion.matrix),
        per_class=iou,
        images=confusion.images,
        missing=None,
        side_accuracy_single=sides[0],
        side_accuracy_interacting=sides[1],
    )
