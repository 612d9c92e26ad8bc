"""Pictures of the paper's analyses that `digit-eval` writes: the 3D PCK curve per hand and the
per-class segmentation IoU (`digit.eval_report` decides the file names)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.parts import LEFT_OFFSET, PART_NAMES, RIGHT_OFFSET
from digit.metrics import EvalResult

HAND_COLOURS = {"right": "tab:red", "left": "tab:blue", "both": "black"}


def figure_module():
    """matplotlib.pyplot on the file-only Agg backend (never opens a window)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _no_data(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True)
    ax.set_axis_off()


def plot_pck(result: EvalResult, path: Path) -> None:
    """Root-relative 3D PCK (%) against the threshold (mm), right / left / both hands, with each
    curve's AUC over 0-50 mm in the legend; written to `path` as PNG."""
    plt = figure_module()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    pck = result.pck
    if pck is None or not np.isfinite(pck.both).any():
        _no_data(ax, "no valid non-root joint: no PCK")
    else:
        curves = (
            ("right", pck.right, pck.auc_right, f"{pck.joints_right} joints"),
            ("left", pck.left, pck.auc_left, f"{pck.joints_left} joints"),
            ("both", pck.both, pck.auc_both, "pooled"),
        )
        for hand, values, auc, note in curves:
            if np.isfinite(values).any():
                style = "--" if hand == "both" else "-"
                label = f"{hand} hand (AUC {auc:.3f}, {note})"
                ax.plot(pck.thresholds, 100 * values, style, color=HAND_COLOURS[hand], label=label)
        ax.set_xlim(pck.thresholds[0], pck.thresholds[-1])
        ax.set_ylim(0, 100)
        ax.set_xlabel("threshold (mm, root-relative 3D error)")
        ax.set_ylabel("PCK (% of valid joints within the threshold)")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right")
    ax.set_title("3D PCK per hand (AUC over 0-50 mm)")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)


def plot_iou_by_class(result: EvalResult, path: Path) -> None:
    """Per-class segmentation IoU (%): for each of the 16 parts a right-hand and a left-hand bar,
    dashed lines at each hand's mIoU, background IoU in the title; written to `path` as PNG.
    Classes absent from both ground truth and prediction are marked "n/a"."""
    plt = figure_module()
    fig, ax = plt.subplots(figsize=(12, 4.5))
    segm = result.segm
    if segm is None or segm.missing is not None:
        _no_data(ax, f"no segmentation IoU: {segm.missing if segm else 'not evaluated'}")
        ax.set_title("Segmentation IoU by part")
    else:
        x = np.arange(len(PART_NAMES))
        width = 0.4
        hands = (
            ("right", RIGHT_OFFSET, -width / 2, segm.miou_right),
            ("left", LEFT_OFFSET, width / 2, segm.miou_left),
        )
        for hand, offset, shift, miou in hands:
            iou = segm.per_class[offset : offset + len(PART_NAMES)]
            colour = HAND_COLOURS[hand]
            ax.bar(x + shift, 100 * np.nan_to_num(iou), width, color=colour, label=f"{hand} hand")
            for k in np.flatnonzero(np.isnan(iou)):
                ax.text(x[k] + shift, 1, "n/a", ha="center", va="bottom", fontsize=7, rotation=90)
            if np.isfinite(miou):
                ax.axhline(100 * miou, color=colour, ls="--", lw=1, label=f"{hand} mIoU")
        ax.set_xticks(x, PART_NAMES, rotation=45, ha="right")
        ax.set_xlabel("hand part (core.parts class)")
        ax.set_ylabel("IoU (%)")
        ax.set_ylim(0, 100)
        ax.legend(ncol=4, fontsize=8, loc="upper right")
        bg = "n/a" if np.isnan(segm.background_iou) else f"{100 * segm.background_iou:.1f}%"
        miou = "n/a" if np.isnan(segm.miou) else f"{100 * segm.miou:.1f}%"
        ax.set_title(
            f"Segmentation IoU by part: mIoU {miou} over the 32 parts, background {bg} "
            f"({segm.images} images)"
        )
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)
