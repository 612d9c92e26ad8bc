"""The demo's picture of one image (matplotlib, PNG).

Top row: the input with the crop box; the predicted skeletons on the crop; the ground truth on
the crop (with --split); the predicted part segmentation on the crop (variants with
segmentation), with the classes present. Bottom row: both hands in 3D, camera frame in mm,
seen from the front (as the camera sees them), from above and from the side.

Right hands are red, left hands blue; predictions are solid lines with filled joints, ground
truth pale dashed lines with open joints. A predicted hand is drawn only where its handedness
probability exceeds `HAND_THRESHOLD`; a ground-truth joint only where it is valid (with its
root). In 3D each predicted hand sits at its own root, or, with ground truth, at the true root:
the views then show exactly what the root-relative MPJPE in the title measures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.drawing import overlay_mask
from core.files import atomic_path
from core.joints import HAND_JOINTS, HAND_PARENTS, ROOT_JOINTS, SIDES
from core.parts import class_table
from digit.demo.lift import Hands3D
from digit.demo.predict import HAND_THRESHOLD, ImagePrediction, hands_shown
from digit.demo.truth import ImageTruth

PRED_RGB = ("#d62728", "#1f77b4")  # right, left
GT_RGB = ("#f7a08a", "#8cc4e8")  # the same hues, pale
CROP_BOX_RGB = "#ffd700"
TILE_IN = 3.0  # inches per tile (100 dpi)
PARTS_LEGEND_IN = 1.3  # room on the right for the parts legend
# (name, camera axis shown horizontally, vertically, whether the vertical axis points down)
VIEWS = (
    ("3D front (camera view)", 0, 1, True),
    ("3D top (from above)", 0, 2, False),
    ("3D side (from the right)", 2, 1, True),
)
AXIS_NAMES = ("x", "y", "z")


def _style(truth: bool, side: int) -> dict:
    if truth:
        return {"color": GT_RGB[side], "ls": "--", "mfc": "white", "lw": 1.6, "ms": 3.5}
    return {"color": PRED_RGB[side], "ls": "-", "mfc": PRED_RGB[side], "lw": 1.8, "ms": 3}


def _draw_hand(ax, points: np.ndarray, valid: np.ndarray, style: dict) -> None:
    """One hand's bones and joints: points (21, 2) in the axes' coordinates, valid (21,)."""
    for k, parent in enumerate(HAND_PARENTS):
        if parent >= 0 and valid[k] and valid[parent]:
            ax.plot(*points[[k, parent]].T, color=style["color"], ls=style["ls"], lw=style["lw"])
    ax.plot(
        *points[valid].T, ls="none", marker="o", ms=style["ms"], color=style["color"],
        mfc=style["mfc"], mew=1.0,
    )  # fmt: skip


def _draw_hands(ax, points: np.ndarray, valid: np.ndarray, truth: bool) -> None:
    """Both hands: points (42, 2), valid (42,) bool."""
    for side in (0, 1):
        s = slice(side * HAND_JOINTS, (side + 1) * HAND_JOINTS)
        if valid[s].any():
            _draw_hand(ax, points[s], valid[s], _style(truth, side))


def _image_tile(ax, image: np.ndarray, title: str, box: np.ndarray | None = None) -> None:
    """The image with pixel centres at integers; zoomed to `box` (4,) [x, y, w, h] if given."""
    ax.imshow(image, interpolation="nearest")
    ax.set_facecolor("#404040")  # where a crop box leaves the image
    if box is not None:
        x, y, s, t = box
        ax.set_xlim(x, x + s)
        ax.set_ylim(y + t, y)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)


def _parts_legend(ax, segmentation: np.ndarray) -> None:
    from matplotlib.patches import Patch

    present = set(np.unique(segmentation).tolist()) - {0}
    handles = [
        Patch(facecolor=np.asarray(c.rgb) / 255, edgecolor="0.3", label=c.name)
        for c in class_table()
        if c.id in present
    ]
    if handles:
        ax.legend(
            handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=6,
            ncol=2 if len(handles) > 12 else 1, frameon=False, handlelength=1.0,
            columnspacing=0.8, title="parts", title_fontsize=7,
        )  # fmt: skip


def _placed(
    pred: ImagePrediction, hands: Hands3D, truth: ImageTruth | None
) -> tuple[list[tuple[np.ndarray, np.ndarray, bool]], np.ndarray]:
    """What the 3D views draw: (points (42, 3) mm, valid (42,), is_truth) items, and the
    centre (3,) they are shown around."""
    shown = hands_shown(pred.handedness_prob) & np.isfinite(hands.root_depth)
    roots = hands.joints_cam[list(ROOT_JOINTS)]  # (2, 3) predicted roots
    items = []
    if truth is not None:
        roots = np.where(truth.root_valid[:, None], truth.joints_cam[list(ROOT_JOINTS)], roots)
        items.append((truth.joints_cam, truth.joint_valid, True))
    offset = np.repeat(roots, HAND_JOINTS, axis=0)
    items.append((hands.joints_rel + offset, np.repeat(shown, HAND_JOINTS), False))
    used = shown | (truth.root_valid if truth is not None else False)
    centre = roots[used].mean(0) if used.any() else np.zeros(3)
    return items, centre


def _views(axes, items, centre: np.ndarray) -> None:
    drawn = [p[v] - centre for p, v, _ in items if v.any()]
    half = max(60.0, 1.1 * float(np.abs(np.concatenate(drawn)).max())) if drawn else 100.0
    for ax, (name, h, v, down) in zip(axes, VIEWS, strict=True):
        for points, valid, is_truth in items:
            _draw_hands(ax, (points - centre)[:, [h, v]], valid, is_truth)
        ax.set_xlim(-half, half)
        ax.set_ylim((half, -half) if down else (-half, half))
        ax.set_aspect("equal")
        ax.set_xlabel(f"{AXIS_NAMES[h]} (mm)", fontsize=8)
        ax.set_ylabel(f"{AXIS_NAMES[v]} (mm)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, lw=0.4, alpha=0.5)
        ax.set_title(name, fontsize=9)
        if not drawn:
            ax.text(0, 0, f"no hand above {HAND_THRESHOLD}", ha="center", va="center", fontsize=8)


def _legend_handles(with_truth: bool) -> list:
    from matplotlib.lines import Line2D

    handles = []
    for truth in (False, True) if with_truth else (False,):
        for side in (0, 1):
            st = _style(truth, side)
            what = "ground truth" if truth else "prediction"
            handles.append(
                Line2D(
                    [],
                    [],
                    color=st["color"],
                    ls=st["ls"],
                    lw=st["lw"],
                    marker="o",
                    ms=st["ms"] + 1,
                    mfc=st["mfc"],
                    label=f"{SIDES[side]} hand, {what}",
                )
            )
    return handles


def prediction_figure(
    image: np.ndarray,
    pred: ImagePrediction,
    hands: Hands3D,
    title: str,
    truth: ImageTruth | None = None,
):
    """The matplotlib Figure for one image (H, W, 3) uint8 (see the module docstring)."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never open a window
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    r, l = pred.handedness_prob
    top = [("input (crop box yellow)", None)]
    top.append((f"prediction (p right {r:.2f}, p left {l:.2f})", "pred"))
    if truth is not None:
        top.append(("ground truth", "truth"))
    if pred.segmentation is not None:
        top.append(("predicted parts", "parts"))
    cols = max(len(top), len(VIEWS))
    legend_in = PARTS_LEGEND_IN if pred.segmentation is not None else 0.0
    width = TILE_IN * cols + legend_in
    fig = plt.figure(figsize=(width, 2 * TILE_IN + 0.6), dpi=100)
    grid = fig.add_gridspec(
        2, cols, hspace=0.28, wspace=0.3, top=0.87, bottom=0.1, left=0.05,
        right=1 - (legend_in + 0.1) / width,
    )  # fmt: skip
    for col, (name, kind) in enumerate(top):
        ax = fig.add_subplot(grid[0, col])
        if kind is None:
            x, y, s, t = pred.crop_box
            h, w = image.shape[:2]
            lo, hi = np.minimum([x, y], -0.5), np.maximum([x + s, y + t], [w - 0.5, h - 0.5])
            _image_tile(ax, image, name, np.concatenate([lo, hi - lo]))  # image and box
            ax.add_patch(Rectangle((x, y), s, t, fill=False, ec=CROP_BOX_RGB, lw=1.5))
        elif kind == "parts":
            _image_tile(ax, overlay_mask(image, pred.segmentation), name, pred.crop_box)
            _parts_legend(ax, pred.segmentation)
        else:
            _image_tile(ax, image, name, pred.crop_box)
            if kind == "pred":
                shown = np.repeat(hands_shown(pred.handedness_prob), HAND_JOINTS)
                _draw_hands(ax, pred.joints_uvd_img[:, :2], shown, truth=False)
            else:
                _draw_hands(ax, truth.joints_uv(), truth.joint_valid, truth=True)
    views = [fig.add_subplot(grid[1, c]) for c in range(len(VIEWS))]
    _views(views, *_placed(pred, hands, truth))
    fig.legend(
        handles=_legend_handles(truth is not None), loc="lower center",
        ncol=4, fontsize=8, frameon=False,
    )  # fmt: skip
    fig.suptitle(title, fontsize=11)
    return fig


def save_figure(fig, path: Path) -> None:
    """Write `fig` as a PNG at `path` (atomically) and free it."""
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
    finally:
        plt.close(fig)
