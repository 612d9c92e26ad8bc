"""Pictures of a training run: the validation image grid (TensorBoard) and the learning curves.

Grid rows are samples; columns: input, ground-truth joints, predicted joints, ground-truth part
segmentation, predicted part segmentation (crop space; segmentation upsampled x2, nearest).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from core.drawing import draw_skeleton, overlay_mask
from digit.data.batch import Batch
from digit.data.crop import upsample_labels_nearest
from digit.demo.predict import segmentation_classes
from digit.model.config import FEATURE_STRIDE

GRID_COLUMNS = ("input", "GT joints", "predicted joints", "GT parts", "predicted parts")
_TITLE_H = 14


@torch.no_grad()
def validation_grid(
    net: torch.nn.Module, batch: Batch, device: torch.device, dtype: torch.dtype | None
) -> np.ndarray:
    """(H, W, 3) uint8 grid for the samples of `batch` (see the module doc); `net` is left in the
    mode it was found in."""
    was_training = net.training
    net.eval()
    try:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            out = net(batch.image.to(device))
    finally:
        net.train(was_training)
    images = (batch.image.permute(0, 2, 3, 1).clamp(0, 1) * 255 + 0.5).byte().cpu().numpy()
    gt_uv = (batch.targets.joints_hm[..., :2] * FEATURE_STRIDE).cpu().numpy()
    gt_valid = batch.targets.joint_valid.cpu().numpy()
    pred_uv = out.joints_uvd[..., :2].float().cpu().numpy()
    prob = torch.sigmoid(out.handedness_logits.float()).cpu().numpy()
    # a predicted hand is drawn where the network says it is present
    pred_valid = np.repeat(prob > 0.5, 21, axis=1)
    gt_labels = upsample_labels_nearest(batch.segm_target.cpu(), 2).numpy()
    pred_labels = None
    if out.segm_logits is not None:
        labels = out.segm_logits.float().argmax(1).cpu()
        labels = segmentation_classes(labels, out.segm_logits.shape[1])
        pred_labels = upsample_labels_nearest(labels, 2).numpy()
    rows = []
    for i in range(len(images)):
        base = Image.fromarray(images[i])
        tiles = [
            base,
            draw_skeleton(base, gt_uv[i], gt_valid[i]),
            draw_skeleton(base, pred_uv[i], pred_valid[i]),
            Image.fromarray(overlay_mask(images[i], gt_labels[i]))
            if bool(batch.segm_valid[i])
            else _blank(base, "no valid mask"),
            Image.fromarray(overlay_mask(images[i], pred_labels[i]))
            if pred_labels is not None
            else _blank(base, "no segmentation"),
        ]
        rows.append(np.concatenate([np.asarray(t) for t in tiles], axis=1))
    grid = np.concatenate(rows, axis=0)
    return _with_titles(grid, images.shape[2])


def _blank(like: Image.Image, text: str) -> Image.Image:
    out = Image.new("RGB", like.size, (40, 40, 40))
    ImageDraw.Draw(out).text((4, 4), text, fill=(220, 220, 220))
    return out


def _with_titles(grid: np.ndarray, tile_w: int) -> np.ndarray:
    canvas = Image.new("RGB", (grid.shape[1], grid.shape[0] + _TITLE_H), (255, 255, 255))
    canvas.paste(Image.fromarray(grid), (0, _TITLE_H))
    draw = ImageDraw.Draw(canvas)
    for k, title in enumerate(GRID_COLUMNS):
        draw.text((k * tile_w + 3, 1), title, fill=(0, 0, 0))
    return np.asarray(canvas)


# ---- learning curves -----------------------------------------------------------------------------


def read_metrics(path: str | Path) -> list[dict]:
    """The records of a run's metrics.jsonl."""
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def _side_curves(val: list[dict]) -> dict[str, list[float]]:
    """label -> one fraction per validation record (NaN where the record lacks it)."""

    def get(r: dict, *keys: str) -> float:
        for k in keys:
            r = r.get(k) if isinstance(r, dict) else None
        return math.nan if r is None else float(r)

    return {
        "handedness accuracy": [get(r, "handedness_acc") for r in val],
        "part sides, single-hand images": [
            get(r, "segmentation", "side_accuracy_single") for r in val
        ],
        "part sides, interacting images": [
            get(r, "segmentation", "side_accuracy_interacting") for r in val
        ],
        "hands not exchanged (interacting)": [
            1.0 - get(r, "hands_exchanged", "share") for r in val
        ],
    }


def _plot_sides(ax, val: list[dict]) -> None:
    """The "which hand is which" panel of `plot_learning_curves`."""
    steps = [r["step"] for r in val]
    drawn = False
    styles = ("o-", "s--", "^--", "d-")
    for (label, ys), style in zip(_side_curves(val).items(), styles, strict=True):
        if steps and not all(math.isnan(y) for y in ys):
            ax.plot(steps, ys, style, label=label, ms=4)
            drawn = True
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("fraction right")
    ax.set_title("which hand is which (validation)")
    if drawn:
        ax.axhline(0.5, ls=":", color="tab:gray", label="chance")
        ax.set_ylim(0.3, 1.0)
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "not logged in this run", ha="center", va="center",
                transform=ax.transAxes)  # fmt: skip
    ax.grid(alpha=0.3)


def plot_learning_curves(
    metrics_jsonl: str | Path,
    out_png: str | Path,
    references: dict[str, float] | None = None,
    title: str = "",
) -> Path:
    """Three panels over optimizer steps (top axis: images seen): the training loss terms (log
    scale); the validation MPJPE (mm), with the constant mean-pose predictor's MPJPE on the
    same images where the run logged it, and `references` (name -> MPJPE mm) as dotted lines;
    and which hand is which on validation (fractions: handedness accuracy, right vs left on
    hand pixels of single-hand and of interacting images, interacting images whose hands are
    not exchanged; chance 0.5). Written atomically to `out_png`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from core.files import atomic_path

    records = read_metrics(metrics_jsonl)
    train = [r for r in records if r.get("kind") == "train"]
    val = [r for r in records if r.get("kind") == "val"]
    per_step = None
    if train and train[-1].get("images_seen"):
        per_step = train[-1]["images_seen"] / max(train[-1]["step"], 1)
    fig, (ax_loss, ax_val, ax_side) = plt.subplots(1, 3, figsize=(16, 4.2))
    steps = [r["step"] for r in train]
    terms = (
        "loss", "joints", "root", "handedness", "segmentation", "bone", "heatmap", "chirality",
    )  # fmt: skip
    for k in terms:
        # a term that is 0 (no valid element in the batch) is a gap, not a plunge on a log axis
        ys = [y if y is not None and y > 0 else float("nan") for y in (r.get(k) for r in train)]
        if any(y == y for y in ys):
            ax_loss.plot(steps, ys, label="total" if k == "loss" else k, lw=2 if k == "loss" else 1)
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("optimizer step")
    ax_loss.set_ylabel("training loss (total weighted; terms unweighted)")
    ax_loss.set_title("training loss")
    if ax_loss.get_legend_handles_labels()[0]:
        ax_loss.legend(fontsize=8)
    ax_loss.grid(alpha=0.3)
    vs = [r["step"] for r in val]
    for key, label, style in (
        ("mpjpe_all", "MPJPE all", "o-"),
        ("mpjpe_sh", "single hand", "s--"),
        ("mpjpe_ih", "interacting", "^--"),
    ):
        ys = [r.get(key) for r in val]
        ys = [math.nan if y is None else y for y in ys]
        if vs and not all(math.isnan(y) for y in ys):
            ax_val.plot(vs, ys, style, label=label, ms=4)
    ref_ys = [r.get("mean_pose_mpjpe_all") for r in val]
    if vs and all(y is not None for y in ref_ys):
        ax_val.plot(vs, ref_ys, ":", color="tab:red", label="constant mean pose (same images)")
    colours = ("tab:gray", "tab:purple", "tab:brown")
    for (name, value), colour in zip((references or {}).items(), colours, strict=False):
        ax_val.axhline(value, ls=":", color=colour, label=f"{name} ({value:.1f} mm)")
    ax_val.set_xlabel("optimizer step")
    ax_val.set_ylabel("validation MPJPE (mm, root-relative)")
    ax_val.set_title("validation error")
    if ax_val.get_legend_handles_labels()[0]:
        ax_val.legend(fontsize=8)
    else:  # a run without validation: say so (an empty legend is a matplotlib warning)
        ax_val.text(0.5, 0.5, "no validation in this run", ha="center", va="center",
                    transform=ax_val.transAxes)  # fmt: skip
    ax_val.grid(alpha=0.3)
    _plot_sides(ax_side, val)
    if per_step:
        for ax in (ax_loss, ax_val, ax_side):
            top = ax.secondary_xaxis(
                "top", functions=(lambda s: s * per_step, lambda n: n / per_step)
            )
            top.set_xlabel("images seen")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    out_png = Path(out_png)
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return out_png
