"""The files `digit-eval` writes: metrics.json, predictions.npz, per_joint.csv and four PNG plots
(error by joint, MPJPE by interaction degree, 3D PCK per hand, segmentation IoU by part).

All files are first written under temporary names in the output folder and renamed into place
only once every one of them is complete, so a failure never leaves a half-written file under a
final name (earlier results stay as they were).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import DigitError
from core.files import atomic_path
from core.joints import JOINT_NAMES, NUM_JOINTS
from digit.analysis_plots import figure_module as _figure
from digit.analysis_plots import plot_iou_by_class, plot_pck
from digit.metrics import BIN_UNBINNED, EvalResult, exchanged_summary

METRICS_JSON = "metrics.json"
PREDICTIONS_NPZ = "predictions.npz"
PER_JOINT_CSV = "per_joint.csv"
JOINT_PLOT = "error_by_joint.png"
BIN_PLOT = "mpjpe_by_interaction.png"
PCK_PLOT = "pck_3d.png"
IOU_PLOT = "segm_iou_by_part.png"
OUTPUT_FILES = (
    METRICS_JSON,
    PREDICTIONS_NPZ,
    PER_JOINT_CSV,
    JOINT_PLOT,
    BIN_PLOT,
    PCK_PLOT,
    IOU_PLOT,
)


def metrics_dict(result: EvalResult, meta: dict[str, Any]) -> dict[str, Any]:
    """metrics.json content: `result.summary()` (mpjpe_sh/ih/all, mrrpe mm, handedness_acc,
    counts, empty_joints, mpjpe_by_bin; the analyses mpjpe_image_mean_by_bin, segm_miou and
    segmentation, pck_auc and pck_3d, bone_asymmetry_mm and bone_asymmetry, hands_exchanged;
    NaN -> null) plus `meta` (checkpoint, data, root depth)."""
    return {
        **result.summary(),
        "units": {
            "mpjpe": "mm",
            "mrrpe": "mm",
            "handedness_acc": "fraction",
            "segm_miou": "fraction",
            "pck_auc": "fraction",
            "pck_3d": "fraction of joints per threshold (mm)",
            "bone_asymmetry_mm": "mm",
            "hands_exchanged": "fraction of interacting images; its mrrpe and mpjpe in mm",
        },
        "protocol": "InterHand2.6M evaluate(): mean over 42 joints of per-joint means",
        **meta,
    }


def per_joint_csv(result: EvalResult) -> str:
    """per_joint.csv text: joint, name, mpjpe_sh, mpjpe_ih, mpjpe_all (mm; "nan" if empty)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["joint", "name", "mpjpe_sh", "mpjpe_ih", "mpjpe_all"])
    for j in range(NUM_JOINTS):
        values = (result.per_joint_sh[j], result.per_joint_ih[j], result.per_joint_all[j])
        writer.writerow([j, JOINT_NAMES[j], *(f"{v:.6f}" for v in values)])
    return buf.getvalue()


def plot_error_by_joint(result: EvalResult, path: Path) -> None:
    """Bar chart of per-joint MPJPE (mm), single-hand / interacting / all, written to `path`."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(14, 4.5))
    x = np.arange(NUM_JOINTS)
    width = 0.28
    series = (
        ("single hand", result.per_joint_sh),
        ("interacting", result.per_joint_ih),
        ("all", result.per_joint_all),
    )
    for k, (label, values) in enumerate(series):
        ax.bar(x + (k - 1) * width, np.nan_to_num(values, nan=0.0), width, label=label)
    ax.set_xticks(x, JOINT_NAMES, rotation=90, fontsize=7)
    ax.set_ylabel("MPJPE (mm, root-relative)")
    ax.set_title("Error by joint (empty joints drawn as 0)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)


def plot_mpjpe_by_bin(result: EvalResult, path: Path) -> None:
    """Bar chart of MPJPE (mm) by interaction degree (`result.by_bin`): per bin the official
    pooled number and the mean of per-image MPJPE side by side, with image counts; written to
    `path`."""
    plt = _figure()
    fig, ax = plt.subplots(figsize=(8, 4.8))
    if result.by_bin:
        x = np.arange(len(result.by_bin))
        width = 0.4
        labels = [f"{b.label}\n(n={b.images})" for b in result.by_bin]
        series = (
            ("official pooled (mean of per-joint means)", "tab:blue", -width / 2, "value"),
            ("mean of per-image MPJPE (images scored)", "tab:orange", width / 2, "image_mean"),
        )
        for name, colour, shift, attr in series:
            values = np.array([getattr(b, attr) for b in result.by_bin], dtype=np.float64)
            ax.bar(x + shift, np.nan_to_num(values), width, color=colour, label=name)
            for k, b in enumerate(result.by_bin):
                # n/a: no image, or (pooled) some joint without a valid sample in the bin
                text = "n/a" if np.isnan(values[k]) else f"{values[k]:.1f}"
                if attr == "image_mean" and not np.isnan(values[k]):
                    text += f"\n({b.images_scored})"
                ax.text(x[k] + shift, np.nan_to_num(values[k]), text, ha="center", va="bottom",
                        fontsize=7)  # fmt: skip
        ax.set_xticks(x, labels, fontsize=8)
        ax.set_xlabel("IoU of the ground-truth left and right hand masks (n = images)")
        ax.set_ylabel("MPJPE (mm, root-relative)")
        ax.margins(y=0.15)
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no interaction degree: no mask cache", ha="center", va="center")
        ax.set_axis_off()
    ax.set_title("MPJPE by interaction degree")
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as f:  # a file object: numpy adds no ".npz" to the temporary name
        np.savez(f, **arrays)


def prediction_arrays(result: EvalResult, preds, abs_depth: np.ndarray) -> dict[str, np.ndarray]:
    """predictions.npz content (N images, data.json order): image_id (N,) int64,
    joints_uvd_img (N, 42, 3) px, px, mm; abs_depth_mm (N, 2) (right, left) root depths used;
    joints_cam_mm (N, 42, 3) back-projected camera mm; rel_root_depth_mm (N,);
    handedness_prob (N, 2)."""
    return {
        "image_id": np.asarray(preds.image_id, dtype=np.int64),
        "joints_uvd_img": np.asarray(preds.joints_uvd_img, dtype=np.float64),
        "abs_depth_mm": np.asarray(abs_depth, dtype=np.float64),
        "joints_cam_mm": np.asarray(result.joints_cam, dtype=np.float64),
        "rel_root_depth_mm": np.asarray(preds.rel_root_depth_mm, dtype=np.float64),
        "handedness_prob": np.asarray(preds.handedness_prob, dtype=np.float64),
    }


def write_outputs(
    out: str | Path, result: EvalResult, preds, abs_depth: np.ndarray, meta: dict[str, Any]
) -> dict[str, Path]:
    """Write `OUTPUT_FILES` into `out` (created if needed), atomically as a set (temporary names,
    then renames). preds: `digit.evaluate.Predictions`; abs_depth (N, 2) mm used; meta: extra
    metrics.json fields. Returns {file name: path}."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DigitError(f"{out}: --out exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    writers: dict[str, Callable[[Path], None]] = {
        METRICS_JSON: lambda p: p.write_text(
            json.dumps(metrics_dict(result, meta), indent=2, allow_nan=False) + "\n"
        ),
        PREDICTIONS_NPZ: lambda p: _write_npz(p, prediction_arrays(result, preds, abs_depth)),
        PER_JOINT_CSV: lambda p: p.write_text(per_joint_csv(result)),
        JOINT_PLOT: lambda p: plot_error_by_joint(result, p),
        BIN_PLOT: lambda p: plot_mpjpe_by_bin(result, p),
        PCK_PLOT: lambda p: plot_pck(result, p),
        IOU_PLOT: lambda p: plot_iou_by_class(result, p),
    }
    # Every file is written before any is renamed into place: a failure leaves none of them.
    with ExitStack() as stack:
        for name, write in writers.items():
            write(stack.enter_context(atomic_path(out / name)))
    return {name: out / name for name in writers}


def format_summary(result: EvalResult, root_depth_source: str) -> str:
    """A short plain-text table of the official metrics (mm) and counts."""

    def mm(x: float) -> str:
        return "    n/a" if math.isnan(x) else f"{x:7.2f}"

    rows = [
        ("MPJPE single hand", mm(result.mpjpe_sh), f"{result.n_single} images"),
        ("MPJPE interacting", mm(result.mpjpe_ih), f"{result.n_interacting} images"),
        ("MPJPE all", mm(result.mpjpe_all), f"{result.n_images} images"),
        ("MRRPE", mm(result.mrrpe), f"{result.n_mrrpe} images"),
        (
            "handedness acc",
            "    n/a" if math.isnan(result.handedness_acc) else f"{result.handedness_acc:7.4f}",
            f"{result.n_handedness} images",
        ),
    ]
    lines = [f"official InterHand2.6M metrics (mm; root depth: {root_depth_source})"]
    lines += [f"  {name:<18} {value}  ({note})" for name, value, note in rows]
    for pool, empty in (
        ("single", result.empty_joints_sh),
        ("interacting", result.empty_joints_ih),
    ):
        if empty:
            names = ", ".join(JOINT_NAMES[j] for j in empty)
            lines.append(f"  note: no valid {pool}-hand sample for {names} (MPJPE is n/a)")
    for b in result.by_bin:
        lines.append(
            f"  by interaction {b.label:<12} {mm(b.value)}  ({b.images} images; "
            f"per-image mean {mm(b.image_mean).strip()} over {b.images_scored})"
        )
    lines += analysis_lines(result)
    return "\n".join(lines)


def analysis_lines(result: EvalResult) -> list[str]:
    """The summary's analysis lines: segmentation mIoU (or why there is none), the 3D PCK AUC
    over 0-50 mm, the left/right bone-length asymmetry (predicted, and ground truth), and the
    share of interacting images whose two hands were predicted exchanged, with MRRPE on the
    images placed right and on those exchanged."""

    def frac(x: float) -> str:
        return "n/a" if math.isnan(x) else f"{x:.3f}"

    def mm(x: float) -> str:
        return "n/a" if math.isnan(x) else f"{x:.2f} mm"

    segm = result.segm
    if segm is None or segm.missing is not None:
        seg = f"segmentation mIoU n/a ({segm.missing if segm else 'not evaluated'})"
    else:
        seg = (
            f"segmentation mIoU {frac(segm.miou)} (right {frac(segm.miou_right)}, left "
            f"{frac(segm.miou_left)}, background {frac(segm.background_iou)}; "
            f"{segm.images} images); right vs left on hand pixels {frac(segm.side_accuracy)} "
            f"(single-hand images {frac(segm.side_accuracy_single)}, interacting "
            f"{frac(segm.side_accuracy_interacting)})"
        )
    pck = result.pck
    auc = "n/a" if pck is None else f"{frac(pck.auc_both)} (right {frac(pck.auc_right)}, left "
    auc += "" if pck is None else f"{frac(pck.auc_left)})"
    asym = (
        f"bone asymmetry |R-L| {mm(result.bone_asymmetry)} (ground truth "
        f"{mm(result.bone_asymmetry_gt)}; {result.n_bone_asymmetry} interacting images)"
    )
    ex = exchanged_summary(result)["hands_exchanged"]
    mrrpe = {k: mm(math.nan if v is None else v) for k, v in ex["mrrpe"].items()}
    swap = (
        f"hands exchanged (2D) on {frac(result.hands_exchanged)} of {result.n_exchanged} "
        f"interacting images; MRRPE {mrrpe['placed']} where placed right, "
        f"{mrrpe['exchanged']} where exchanged"
    )
    lines = [f"  {seg}", f"  3D PCK AUC 0-50 mm {auc}; {asym}", f"  {swap}"]
    if any(label != BIN_UNBINNED for label in ex["by_interaction"]):
        lines.append(
            "  hands exchanged by interaction (IoU of the hand masks): "
            + ", ".join(
                f"{label}: {frac(math.nan if v['share'] is None else v['share'])} of {v['images']}"
                for label, v in ex["by_interaction"].items()
            )
        )
    return lines


def format_comparison(rows: dict[str, dict[str, Any]]) -> str:
    """One line per model or reference (name -> `EvalResult.summary()` dict, None for n/a):
    MPJPE SH / IH / all and MRRPE in mm, handedness accuracy."""

    def num(x: float | None, fmt: str) -> str:
        return "n/a" if x is None or math.isnan(x) else format(x, fmt)

    head = f"  {'':<22}{'MPJPE SH':>10}{'MPJPE IH':>10}{'MPJPE all':>10}{'MRRPE':>9}{'hand acc':>9}"
    lines = ["compared on the same images (official formulas; mm, handedness as a fraction)", head]
    for name, r in rows.items():
        lines.append(
            f"  {name:<22}{num(r.get('mpjpe_sh'), '.2f'):>10}{num(r.get('mpjpe_ih'), '.2f'):>10}"
            f"{num(r.get('mpjpe_all'), '.2f'):>10}{num(r.get('mrrpe'), '.2f'):>9}"
            f"{num(r.get('handedness_acc'), '.3f'):>9}"
        )
    return "\n".join(lines)
