"""Predictions on ordinary images, as pictures and JSON (what `digit-demo` does).

For each image: the crop box is the official square x1.25 box of a given bbox (default: the
whole image, [-0.5, -0.5, W, H] with pixel centres at integers); the crop is warped to 256 x 256
and run through the network; predicted (u, v) are mapped back to original image pixels with the
inverse crop warp, and the argmax part segmentation (128 x 128) is upsampled to the crop (nearest)
and warped back to the image (nearest). Outputs per image: `<stem>_pred.png`, a panel of the
image with the predicted hands, the segmentation overlay (variants with segmentation) and the
class legend; and one `predictions.json` for the whole run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from core.boxes import crop_box_from_bbox, overlaps_image
from core.drawing import draw_skeleton, legend_image, overlay_mask
from core.errors import DigitError
from core.files import atomic_path, atomic_write_bytes
from core.image_io import load_rgb
from core.parts import LEFT_OFFSET, RIGHT_OFFSET
from core.progress import progress
from digit.checkpoint import load_network
from digit.data.crop import (
    crop_to_image,
    crop_transform,
    invert_affine,
    upsample_labels_nearest,
    warp_image,
    warp_labels,
)
from digit.model import DigitNet

HAND_THRESHOLD = 0.5  # a hand is drawn when its handedness probability exceeds this
PANEL_GAP = 8
TITLE_H = 22


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


# ---- inputs -----------------------------------------------------------------------------------


def parse_bbox(text: str) -> np.ndarray:
    """`--bbox x,y,w,h` (pixels) -> (4,) float64; DigitError for anything else."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        values = []
    if len(values) != 4 or not np.all(np.isfinite(values)) or min(values[2:]) <= 0:
        raise DigitError(f"--bbox: expected x,y,w,h with w, h > 0 (pixels), got {text!r}")
    return np.asarray(values, dtype=np.float64)


def check_box_on_image(path: Path, bbox: np.ndarray | None, hw: tuple[int, int]) -> None:
    """DigitError unless `bbox` (4,) [x, y, w, h] (None: the whole image) shares an area with
    the image `path` of `hw` = (height, width) pixels; a box partly outside is fine."""
    if bbox is not None and not overlaps_image(bbox, *hw):
        x, y, w, h = (float(v) for v in bbox)
        raise DigitError(
            f"{path}: --bbox {x:g},{y:g},{w:g},{h:g} lies outside the {hw[1]}x{hw[0]}-pixel image"
        )


def whole_image_bbox(height: int, width: int) -> np.ndarray:
    """The whole image as a bbox: pixel centres at integers, so it spans -0.5 .. W - 0.5."""
    return np.array([-0.5, -0.5, width, height], dtype=np.float64)


# ---- prediction -------------------------------------------------------------------------------


def segmentation_classes(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Display classes: the 3-class (background, right, left) variant is shown with the
    right and left palm colours."""
    if num_classes == 3:
        lut = torch.tensor([0, RIGHT_OFFSET, LEFT_OFFSET], dtype=torch.uint8)
        return lut.to(labels.device)[labels]
    return labels.to(torch.uint8)


@torch.no_grad()
def predict_image(
    net: DigitNet, image: np.ndarray, bbox: np.ndarray | None = None
) -> ImagePrediction:
    """Run `net` (eval mode) on one RGB image (H, W, 3) uint8; `bbox` (4,) [x, y, w, h] of the
    hands (None: the whole image). Returns the prediction in original image coordinates."""
    h, w = image.shape[:2]
    bbox = whole_image_bbox(h, w) if bbox is None else np.asarray(bbox, dtype=np.float64)
    crop_box = crop_box_from_bbox(bbox)
    size = net.config.input_size  # the crop the checkpoint was trained on
    A = crop_transform(crop_box, size)
    device = next(net.parameters()).device
    pixels = torch.from_numpy(image).to(device).permute(2, 0, 1)[None].float() / 255.0
    crop = warp_image(pixels, A, size)
    out = net(crop)
    joints = crop_to_image(out.joints_uvd.double().cpu().numpy(), A[None])[0]
    segmentation = None
    if out.segm_logits is not None:
        labels = out.segm_logits[0].argmax(0)  # (128, 128)
        labels = upsample_labels_nearest(labels, size // labels.shape[-1])
        labels = segmentation_classes(labels, out.segm_logits.shape[1])
        segmentation = warp_labels(labels[None].cpu(), invert_affine(A), (h, w))[0].numpy()
    return ImagePrediction(
        joints_uvd_img=joints,
        handedness_prob=torch.sigmoid(out.handedness_logits[0]).double().cpu().numpy(),
        rel_root_depth_mm=float(out.rel_root_depth_mm[0]),
        bbox=bbox,
        crop_box=crop_box,
        segmentation=segmentation,
    )


# ---- pictures ---------------------------------------------------------------------------------


def _titled(img: Image.Image, title: str) -> Image.Image:
    out = Image.new("RGB", (img.width, img.height + TITLE_H), (255, 255, 255))
    out.paste(img, (0, TITLE_H))
    ImageDraw.Draw(out).text((4, 4), title, fill=(0, 0, 0))
    return out


def prediction_panel(image: np.ndarray, pred: ImagePrediction) -> Image.Image:
    """Side by side: (a) the image with the crop box and the predicted hands whose handedness
    probability exceeds 0.5, (b) the predicted part segmentation over the image (if any),
    (c) the class legend."""
    base = Image.fromarray(image)
    valid = np.repeat(pred.handedness_prob > HAND_THRESHOLD, 21)
    hands = draw_skeleton(base, pred.joints_uvd_img[:, :2], valid)
    x, y, s, t = pred.crop_box
    ImageDraw.Draw(hands).rectangle([x, y, x + s, y + t], outline=(255, 255, 0))
    r, l = pred.handedness_prob
    tiles = [_titled(hands, f"joints (right {r:.2f}, left {l:.2f})")]
    if pred.segmentation is not None:
        tiles.append(_titled(Image.fromarray(overlay_mask(image, pred.segmentation)), "parts"))
    tiles.append(_titled(legend_image(), "classes"))
    width = sum(t.width for t in tiles) + PANEL_GAP * (len(tiles) - 1)
    panel = Image.new("RGB", (width, max(t.height for t in tiles)), (255, 255, 255))
    left = 0
    for tile in tiles:
        panel.paste(tile, (left, 0))
        left += tile.width + PANEL_GAP
    return panel


# ---- the demo run -----------------------------------------------------------------------------


def _panel_names(images: list[Path]) -> list[str]:
    """`<stem>_pred.png`, with `-2`, `-3`, ... added to repeated stems."""
    names, seen = [], {}
    for path in images:
        n = seen[path.stem] = seen.get(path.stem, 0) + 1
        names.append(f"{path.stem}_pred.png" if n == 1 else f"{path.stem}-{n}_pred.png")
    return names


def prediction_record(image: Path, panel: str, pred: ImagePrediction) -> dict:
    """The JSON entry of one image."""
    return {
        "image": str(image),
        "panel": panel,
        "bbox": pred.bbox.tolist(),
        "crop_box": pred.crop_box.tolist(),
        "joints_uvd_img": pred.joints_uvd_img.tolist(),
        "handedness_prob": pred.handedness_prob.tolist(),
        "rel_root_depth_mm": pred.rel_root_depth_mm,
    }


def run_demo(
    images: list[Path],
    checkpoint: Path,
    out: Path,
    bbox: np.ndarray | list[np.ndarray] | None = None,
    device: str | torch.device = "cpu",
    extra: list[dict] | None = None,
) -> list[dict]:
    """Predict on every image and write `out/<stem>_pred.png` and `out/predictions.json`.

    bbox: one (4,) box [x, y, w, h] for all images, a list with one box per image, or None
    (each whole image). extra: per image, more fields for its JSON record (e.g. detections).
    The output path, the checkpoint, every image and its box (it must overlap the image) are
    checked before anything is written, so a bad input ends the run with one DigitError line
    and no output. Returns the JSON records.
    """
    images = [Path(p) for p in images]
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DigitError(f"--out {out}: is a file, not a folder")
    net, info = load_network(checkpoint, device)
    boxes = bbox if isinstance(bbox, list) else [bbox] * len(images)
    for path, box in zip(images, boxes, strict=True):  # fail before writing anything
        check_box_on_image(path, box, load_rgb(path).shape[:2])
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DigitError(f"--out {out}: cannot create the folder ({exc.strerror})") from None
    records = []
    with progress(len(images), "digit-demo") as bar:
        for path, name, box in zip(images, _panel_names(images), boxes, strict=True):
            image = load_rgb(path)
            pred = predict_image(net, image, box)
            panel = prediction_panel(image, pred)
            with atomic_path(out / name) as tmp:
                panel.save(tmp, format="PNG")
            records.append(
                prediction_record(path, name, pred) | (extra[len(records)] if extra else {})
            )
            bar.advance(1)
    doc = {
        "checkpoint": str(checkpoint),
        "checkpoint_format": info.get("format"),
        "network_config": info.get("network_config"),
        "images": records,
    }
    text = json.dumps(doc, indent=1).encode()
    atomic_write_bytes(out / "predictions.json", text)
    return records
