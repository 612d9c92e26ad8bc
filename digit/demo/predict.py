"""Batched prediction on ordinary images, mapped back to original image pixels.

For each image the crop box is the official square x1.25 box of its bbox (default: the whole
image, [-0.5, -0.5, W, H] with pixel centres at integers); the crop is warped to the
checkpoint's input size. Crops have one fixed size, so a batch of images of any sizes is one
stacked tensor and one network call. Predicted (u, v) go back to image pixels by the inverse
crop warp (`crop_to_image`, as in evaluation), and the argmax part segmentation is upsampled to
the crop (nearest) and warped back to the image (nearest).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from core.boxes import crop_box_from_bbox
from core.parts import LEFT_OFFSET, RIGHT_OFFSET
from digit.data.crop import (
    crop_to_image,
    crop_transform,
    invert_affine,
    supersample_factor,
    upsample_labels_nearest,
    warp_image,
    warp_labels,
)
from digit.demo.inputs import whole_image_bbox
from digit.model import DigitNet, DigitOutput
from digit.model.mirror import FlipAveraged, flip_averaged

HAND_THRESHOLD = 0.5  # a predicted hand counts as present when its probability exceeds this


@dataclass(frozen=True)
class ImagePrediction:
    """The network's prediction on one image, in original image coordinates.

    joints_uvd_img: (42, 3) float64: u, v original image pixels (crop warp undone), d = depth
        relative to the joint's hand root, mm. Right hand 0..20, left 21..41.
    handedness_prob: (2,) float64 sigmoid of the (right, left) logits.
    rel_root_depth_mm: left root depth minus right root depth, mm.
    bbox: (4,) [x, y, w, h] hands box used; crop_box: (4,) the square x1.25 box cropped.
    segmentation: (H, W) uint8 class ids (this project's 33 classes) at image resolution, 0
        outside the crop, or None for variants without segmentation.
    """

    joints_uvd_img: np.ndarray
    handedness_prob: np.ndarray
    rel_root_depth_mm: float
    bbox: np.ndarray
    crop_box: np.ndarray
    segmentation: np.ndarray | None


@dataclass(frozen=True)
class CropBatch:
    """Network inputs for B images.

    crops: (B, 3, S, S) float RGB in [0, 1]; affines: (B, 2, 3) float64 image -> crop pixels;
    bboxes, crop_boxes: (B, 4) [x, y, w, h]; hws: (height, width) of each image.
    """

    crops: torch.Tensor
    affines: np.ndarray
    bboxes: np.ndarray
    crop_boxes: np.ndarray
    hws: tuple[tuple[int, int], ...]


def hands_shown(handedness_prob: np.ndarray) -> np.ndarray:
    """(2,) bool (right, left): the hands predicted present (probability above HAND_THRESHOLD)."""
    return np.asarray(handedness_prob) > HAND_THRESHOLD


def segmentation_classes(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Display classes: the 3-class (background, right, left) variant is shown with the
    right and left palm colours."""
    if num_classes == 3:
        lut = torch.tensor([0, RIGHT_OFFSET, LEFT_OFFSET], dtype=torch.uint8)
        return lut.to(labels.device)[labels]
    return labels.to(torch.uint8)


def crop_batch(
    images: list[np.ndarray],
    bboxes: list[np.ndarray | None],
    size: int,
    device: str | torch.device = "cpu",
    antialias: bool = False,
) -> CropBatch:
    """Warp each RGB image (H, W, 3) uint8 to the S x S crop of its bbox (4,) [x, y, w, h]
    (None: the whole image) and stack them; antialias as `NetworkConfig.antialias`."""
    crops, affines, boxes, crop_boxes = [], [], [], []
    for image, bbox in zip(images, bboxes, strict=True):
        h, w = image.shape[:2]
        bbox = whole_image_bbox(h, w) if bbox is None else np.asarray(bbox, dtype=np.float64)
        crop_box = crop_box_from_bbox(bbox)
        A = crop_transform(crop_box, size)
        pixels = torch.from_numpy(image).to(device).permute(2, 0, 1)[None].float() / 255.0
        k = supersample_factor(A, antialias)
        crops.append(warp_image(pixels, A, size, supersample=k))
        affines.append(A)
        boxes.append(bbox)
        crop_boxes.append(crop_box)
    return CropBatch(
        crops=torch.cat(crops),
        affines=np.stack(affines),
        bboxes=np.stack(boxes),
        crop_boxes=np.stack(crop_boxes),
        hws=tuple(im.shape[:2] for im in images),
    )


@torch.no_grad()
def run_network(
    net: DigitNet, crops: torch.Tensor, flip_test: bool = False
) -> DigitOutput | FlipAveraged:
    """The network (eval mode) on crops (B, 3, S, S); waits for the device to finish, so the
    call's wall time is the network's. flip_test: each crop's answer averaged with its
    mirror's mapped back (`digit.model.mirror`, as `digit-eval --flip-test`)."""
    out = flip_averaged(net, crops) if flip_test else net(crops)
    if crops.is_cuda:
        torch.cuda.synchronize(crops.device)
    return out


def undo_crops(out: DigitOutput | FlipAveraged, batch: CropBatch) -> list[ImagePrediction]:
    """The network's outputs on `batch` in each original image's coordinates (its joints_uvd,
    handedness_logits, rel_root_depth_mm and segm_logits)."""
    joints = crop_to_image(out.joints_uvd.double().cpu().numpy(), batch.affines)
    prob = torch.sigmoid(out.handedness_logits.double()).cpu().numpy()
    rel_root = out.rel_root_depth_mm.double().cpu().numpy().reshape(-1)
    labels = None
    if out.segm_logits is not None:
        size = batch.crops.shape[-1]
        labels = out.segm_logits.argmax(1)  # (B, 128, 128)
        labels = upsample_labels_nearest(labels, size // labels.shape[-1])
        labels = segmentation_classes(labels, out.segm_logits.shape[1]).cpu()
    preds = []
    for i, hw in enumerate(batch.hws):
        segmentation = None
        if labels is not None:
            back = invert_affine(batch.affines[i])
            segmentation = warp_labels(labels[i : i + 1], back, hw)[0].numpy()
        preds.append(
            ImagePrediction(
                joints_uvd_img=joints[i],
                handedness_prob=prob[i],
                rel_root_depth_mm=float(rel_root[i]),
                bbox=batch.bboxes[i],
                crop_box=batch.crop_boxes[i],
                segmentation=segmentation,
            )
        )
    return preds


def predict_images(
    net: DigitNet,
    images: list[np.ndarray],
    bboxes: list[np.ndarray | None],
    flip_test: bool = False,
) -> list[ImagePrediction]:
    """Run `net` (eval mode) on RGB images (H, W, 3) uint8 as one batch; `bboxes`: each
    image's (4,) [x, y, w, h] hands box, None for the whole image; flip_test as `run_network`."""
    device = next(net.parameters()).device
    batch = crop_batch(images, bboxes, net.config.input_size, device, net.config.antialias)
    return undo_crops(run_network(net, batch.crops, flip_test), batch)


def predict_image(
    net: DigitNet, image: np.ndarray, bbox: np.ndarray | None = None, flip_test: bool = False
) -> ImagePrediction:
    """`predict_images` for one image."""
    return predict_images(net, [image], [bbox], flip_test)[0]
