"""Evaluate a network on one split with the official InterHand2.6M protocol (`digit.metrics`).

Flow: `predict` runs the network over a loader of `Batch`es and undoes the crop warp (u, v back to
original image pixels; d stays root-relative mm); the absolute root depths are the ground truth
or a RootNet file's (`rootnet_abs_depth`, keyed by annot_id); `evaluate_predictions` calls
`digit.metrics.evaluate`; `run_evaluation` does all of it for a checkpoint and writes the files of
`digit.eval_report` into the output folder.

Every per-image array is in data.json order of the evaluated images (batches are re-sorted by
`Batch.index`, so a shuffled loader gives the same result).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from core.errors import DigitError
from core.files import check_output_dir
from core.interhand.reader import InterHandSplit
from core.joints import HAND_TYPE_CODE
from core.paths import mask_cache_path
from core.plausible import ROOT_DEPTH_MM, warn_implausible
from core.progress import progress
from core.splits import check_split
from digit.data.batch import Batch
from digit.data.crop import crop_to_image
from digit.metrics import (
    EvalResult,
    evaluate,
)
from digit.segm_metrics import NO_SEGM_OUTPUT, ConfusionAccumulator, SegmConfusion

ROOT_DEPTH_GT = "gt"


@dataclass(frozen=True, eq=False)
class Predictions:
    """Network predictions for N images, in data.json order.

    image_id (N,) int64; joints_uvd_img (N, 42, 3) float64: u, v in original image pixels (crop
    warp undone), d = depth relative to the joint's own hand root, mm (as predicted);
    rel_root_depth_mm (N,) float64 predicted left root minus right root depth, mm;
    handedness_prob (N, 2) float64 sigmoid of the (right, left) logits; segm: the part
    segmentation's confusion matrix against the valid ground-truth masks (`SegmConfusion`; its
    matrix is None, with the reason, for predictions without a 33-class segmentation).
    """

    image_id: np.ndarray
    joints_uvd_img: np.ndarray
    rel_root_depth_mm: np.ndarray
    handedness_prob: np.ndarray
    segm: SegmConfusion = field(default_factory=lambda: SegmConfusion(None, 0, NO_SEGM_OUTPUT))

    def __len__(self) -> int:
        return len(self.image_id)


@dataclass(frozen=True, eq=False)
class GroundTruth:
    """What the official evaluation needs from the data for N images, in data.json order.

    index (N,) int64 rows of the split; image_id (N,) int64; joints_cam (N, 42, 3) float64 mm
    (NaN where unknown); joint_valid (N, 42) bool; abs_depth (N, 2) float64 mm (right, left)
    root depths; focal, princpt (N, 2) float64 px; hand_type_code (N,) int64 (0 right, 1 left,
    2 interacting); hand_type_valid (N,) bool; lr_iou (N,) float64 (NaN unless both hands).
    """

    index: np.ndarray
    image_id: np.ndarray
    joints_cam: np.ndarray
    joint_valid: np.ndarray
    abs_depth: np.ndarray
    focal: np.ndarray
    princpt: np.ndarray
    hand_type_code: np.ndarray
    hand_type_valid: np.ndarray
    lr_iou: np.ndarray


# ---- pure decoding ---------------------------------------------------------------------------


def _numpy(t: torch.Tensor) -> np.ndarray:
    """Any tensor -> float64 numpy on the CPU (after autocast, outputs may be half precision)."""
    return t.detach().to("cpu", torch.float64).numpy()


# ---- running the network ---------------------------------------------------------------------


def _batches_count(loader: Iterable) -> int | None:
    try:
        return len(loader)  # type: ignore[arg-type]
    except TypeError:
        return None


def _one_line_errors(loader: Iterable[Batch]) -> Iterator[Batch]:
    """The loader's batches; a DigitError re-raised from a DataLoader worker (message: "Caught
    ... in DataLoader worker", then the traceback) is cut back to its original one line."""
    try:
        yield from loader
    except DigitError as exc:
        lines = str(exc).strip().splitlines()
        if len(lines) < 2:
            raise
        last = lines[-1]
        prefix = f"{type(exc).__module__}.{type(exc).__name__}: "
        raise DigitError(last.removeprefix(prefix).removeprefix("DigitError: ")) from None


@torch.no_grad()
def collect(
    net: nn.Module,
    loader: Iterable[Batch],
    device: str | torch.device = "cpu",
    amp_dtype: torch.dtype | None = None,
    show_progress: bool = False,
    flip_test: bool = False,
) -> tuple[Predictions, GroundTruth]:
    """Run `net` (eval mode, no grad; autocast to `amp_dtype` unless None) over `loader` and
    gather the predictions and the ground truth, both sorted into data.json order by
    `Batch.index`. The part segmentation (argmax of `segm_logits`) is scored against the masks
    of `Batch.segm_valid` images as one confusion matrix, added up per batch, and the
    interacting images again on their own (`Predictions.segm`). flip_test: each crop's answer
    averaged with its mirror's (`digit.model.mirror`; two forward passes).

    Raises DigitError if the loader yields nothing or the same image twice.
    """
    from digit.model.mirror import flip_averaged

    device = torch.device(device)
    was_training = net.training
    net.eval()
    pred_parts: dict[str, list[np.ndarray]] = {k: [] for k in ("uvd", "rel", "prob")}
    gt_parts: dict[str, list[np.ndarray]] = {f.name: [] for f in dataclasses.fields(GroundTruth)}
    total = _batches_count(loader)
    segm = ConfusionAccumulator()
    try:
        with progress(total or 0, "evaluating", enabled=show_progress) as bar:
            for batch in _one_line_errors(loader):
                images = batch.image.to(device, non_blocking=True)
                with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
                    out = flip_averaged(net, images) if flip_test else net(images)
                pred_parts["uvd"].append(
                    crop_to_image(_numpy(out.joints_uvd), _numpy(batch.crop_affine))
                )
                pred_parts["rel"].append(_numpy(out.rel_root_depth_mm).reshape(-1))
                pred_parts["prob"].append(_numpy(torch.sigmoid(out.handedness_logits.float())))
                segm.add(
                    out.segm_logits,
                    batch.segm_target,
                    batch.segm_valid,
                    batch.hand_type_code == HAND_TYPE_CODE["interacting"],
                )
                for name in gt_parts:
                    gt_parts[name].append(getattr(batch, name).detach().cpu().numpy())
                bar.advance()
    finally:
        net.train(was_training)
    if not gt_parts["index"]:
        raise DigitError("evaluation: the data loader yielded no images")
    gt_cols = {k: np.concatenate(v) for k, v in gt_parts.items()}
    order = np.argsort(gt_cols["index"], kind="stable")
    if np.any(np.diff(gt_cols["index"][order]) == 0):
        raise DigitError("evaluation: the data loader yielded an image twice")
    as_type = {
        "index": np.int64,
        "image_id": np.int64,
        "joint_valid": bool,
        "hand_type_code": np.int64,
        "hand_type_valid": bool,
    }
    gt = GroundTruth(**{k: v[order].astype(as_type.get(k, np.float64)) for k, v in gt_cols.items()})
    preds = Predictions(
        image_id=gt.image_id.copy(),
        joints_uvd_img=np.concatenate(pred_parts["uvd"])[order],
        rel_root_depth_mm=np.concatenate(pred_parts["rel"])[order],
        handedness_prob=np.concatenate(pred_parts["prob"])[order],
        segm=segm.result(),
    )
    return preds, gt


# ---- root depths -----------------------------------------------------------------------------


def rootnet_abs_depth(
    rootnet_json: str | Path, data_root: str | Path, split: str, image_ids: np.ndarray
) -> np.ndarray:
    """(N, 2) float64 mm (right, left) absolute root depths of RootNet for `image_ids` (N,).

    Entries are matched by annot_id through the split's data.json. As in the official code,
    `root_valid` is not consulted: RootNet's depth is used for both hands. An image without an
    entry, or with a depth that is NaN, infinite, zero or negative, is an error naming the file
    and the image (no silent fallback to ground truth); depths outside `ROOT_DEPTH_MM` are
    used, with one `ImplausibleValue` warning.
    """
    path = Path(rootnet_json)
    if not path.is_file():
        raise DigitError(f"{path}: RootNet file not found")
    index = InterHandSplit.from_root(Path(data_root), split, rootnet_json=path)
    rows = index.find(np.asarray(image_ids, dtype=np.int64))
    if (rows < 0).any():
        bad = int(np.asarray(image_ids)[rows < 0][0])
        raise DigitError(f"{index.files.data}: image_id {bad} is not in the {split} split")
    batch = index.gather(rows)
    missing = ~batch.has_rootnet
    if missing.any():
        raise DigitError(
            f"{path}: no entry for {int(missing.sum())} of {len(rows)} evaluated images "
            f"(e.g. annot_id {int(batch.annot_id[missing][0])})"
        )
    depth = batch.rootnet_abs_depth.astype(np.float64)
    check_root_depths(depth, np.asarray(image_ids), batch.annot_id, path)
    return depth


def check_root_depths(
    depth: np.ndarray, image_ids: np.ndarray, annot_ids: np.ndarray, path: Path
) -> None:
    """RootNet depths (N, 2) mm of images `image_ids` (N,) (entries `annot_ids` (N,) of the
    file `path`): DigitError for a non-finite or non-positive one, a warning for implausible
    ones."""
    bad = ~(np.isfinite(depth) & (depth > 0)).all(axis=1)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise DigitError(
            f"{path}: image id {int(image_ids[k])} (annot_id {int(annot_ids[k])}): abs_depth "
            f"{depth[k].tolist()} is not a positive depth in mm ({int(bad.sum())} of "
            f"{len(depth)} images)"
        )
    odd = ROOT_DEPTH_MM.outside(depth).any(axis=1)
    if odd.any():
        k = int(np.flatnonzero(odd)[0])
        warn_implausible(
            f"{path}: {int(odd.sum())} of {len(depth)} images have a RootNet depth outside "
            f"the plausible {ROOT_DEPTH_MM.describe()} (first: image id {int(image_ids[k])}, "
            f"{', '.join(f'{z:g}' for z in depth[k])} mm); are they in mm?"
        )


# ---- metrics ---------------------------------------------------------------------------------


def evaluate_predictions(
    preds: Predictions, gt: GroundTruth, abs_depth: np.ndarray, use_iou: bool = True
) -> EvalResult:
    """`digit.metrics.evaluate` of `preds` against `gt` with root depths `abs_depth` (N, 2) mm.

    With `use_iou` (a mask cache supplied `gt.lr_iou`), `by_bin` holds MPJPE per interaction
    degree, plus an "unbinned" entry when some interacting image has no IoU.
    """
    if not np.array_equal(preds.image_id, gt.image_id):
        raise DigitError("evaluation: predictions and ground truth cover different images")
    return evaluate(
        preds.joints_uvd_img,
        preds.rel_root_depth_mm,
        preds.handedness_prob,
        abs_depth,
        gt.focal,
        gt.princpt,
        gt.joints_cam,
        gt.joint_valid,
        gt.hand_type_code,
        gt.hand_type_valid,
        lr_iou=gt.lr_iou if use_iou else None,
        segm=preds.segm,
    )


# ---- the whole evaluation --------------------------------------------------------------------


def resolve_masks(masks: Path | None, data_root: Path, split: str) -> Path | None:
    """The mask cache file for `split`: `<masks>/masks_{split}.h5` (a named --masks folder must
    hold it), else `<data_root>/masks/masks_{split}.h5` if present, else None (no IoU bins)."""
    path = mask_cache_path(masks, data_root, split)
    if masks is not None and not path.is_file():
        raise DigitError(f"{path}: mask cache not found (--masks)")
    return path if path.is_file() else None


def _check_device(device: str | torch.device) -> torch.device:
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise DigitError(f"--device: unknown device {device!r} (cpu | cuda)") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DigitError("--device: CUDA was asked for but is not available")
    return dev


def check_eval_out(out: str | Path) -> None:
    """The output folder, checked before the evaluation: a folder (or nothing yet) in a
    writable place, and not empty-named. One DigitError line naming --out if not."""
    if not str(out).strip():
        raise DigitError("--out: empty path; name the folder to write")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DigitError(f"--out {out}: is a file, not a folder")
    check_output_dir(out)


def run_evaluation(
    checkpoint: str | Path,
    split: str = "test",
    data_root: str | Path | None = None,
    masks: str | Path | None = None,
    root_depth: str | Path = ROOT_DEPTH_GT,
    out: str | Path = "eval",
    device: str | torch.device = "cpu",
    batch_size: int = 32,
    limit: int | None = None,
    num_workers: int = 0,
    amp: bool = False,
    show_progress: bool = False,
    references: tuple[str, ...] = (),
    meshes: bool = False,
    mano_dir: str | Path | None = None,
    flip_test: bool = False,
) -> EvalResult:
    """Evaluate `checkpoint` on `split` and write metrics.json, predictions.npz, per_joint.csv
    and plots into `out` (see `digit.eval_report.write_outputs`).

    data_root: InterHand2.6M-layout root (None: the synthetic default); masks: folder holding
    masks_{split}.h5 (or the file) for the interaction-degree bins; root_depth: "gt" or the path
    of a RootNet JSON; limit: first N images of the split; references: any of
    `digit.references.REFERENCES`, scored on the same images with the same root depths (their
    summaries go into metrics.json under "references"); meshes: also fit MANO hands to the
    predictions and add MPVPE against the ground-truth MANO fits (`digit.meshes.evaluate`;
    mano_dir: the model files, default `<data_root>/mano`); flip_test: average each crop's
    answer with its mirror's, for this network and the untrained reference alike (metrics.json
    records it). The network runs at the input size its checkpoint records. Bad input raises
    DigitError.
    """
    from core.paths import resolve_data_root
    from digit.checkpoint import load_network
    from digit.data.dataset import InterHandDataset, make_loader
    from digit.eval_report import write_outputs
    from digit.model import DigitNet
    from digit.references import REFERENCES, fit_mean_pose_on_split, mean_pose_predictions

    check_split(split)
    check_eval_out(out)
    use_gt = str(root_depth) == ROOT_DEPTH_GT
    if not use_gt and not Path(root_depth).is_file():
        raise DigitError(f"{root_depth}: RootNet file not found (--root-depth gt|PATH)")
    if not Path(checkpoint).is_file():
        raise DigitError(f"{checkpoint}: checkpoint not found")
    device = _check_device(device)
    root = resolve_data_root(None if data_root is None else Path(data_root))
    mask_file = resolve_masks(None if masks is None else Path(masks), root, split)
    mesh_model = mesh_hand_model(mano_dir, root, device) if meshes else None
    net, info = load_network(checkpoint, device)
    unknown = [r for r in references if r not in REFERENCES]
    if unknown:
        raise DigitError(
            f"--reference: unknown {unknown[0]!r} (choose from {', '.join(REFERENCES)})"
        )
    dataset = InterHandDataset(
        root,
        split,
        mask_file,
        train=False,
        limit=limit,
        input_size=net.config.input_size,
        antialias=net.config.antialias,
    )
    if mask_file is not None and not getattr(dataset, "has_masks", True):
        mask_file = None
    rootnet = None  # read and checked before the network runs over the split
    if not use_gt:
        ids = dataset.split.columns.image_id
        rootnet = (ids, rootnet_abs_depth(root_depth, root, split, ids))
    loader = make_loader(dataset, batch_size, shuffle=False, num_workers=num_workers)
    dtype = torch.get_autocast_dtype(device.type) if amp else None
    preds, gt = collect(
        net, loader, device, amp_dtype=dtype, show_progress=show_progress, flip_test=flip_test
    )
    if rootnet is None:
        abs_depth = gt.abs_depth.copy()
    else:
        row = {int(i): k for k, i in enumerate(rootnet[0])}
        abs_depth = rootnet[1][[row[int(i)] for i in gt.image_id]]
    use_iou = mask_file is not None
    result = evaluate_predictions(preds, gt, abs_depth, use_iou=use_iou)
    scored: dict[str, EvalResult] = {}
    for name in references:
        if name == "mean-pose":
            ref_preds = mean_pose_predictions(fit_mean_pose_on_split(root, "train"), gt)
        else:  # the same network before training: its config, its seed, its starting weights
            torch.manual_seed(int((info.get("config") or {}).get("seed", 0)))
            untrained = DigitNet(net.config).to(device)
            ref_preds, _ = collect(untrained, loader, device, amp_dtype=dtype, flip_test=flip_test)
        scored[name] = evaluate_predictions(ref_preds, gt, abs_depth, use_iou=use_iou)
    meta = {
        "checkpoint": {
            "path": str(checkpoint),
            "format": info.get("format"),
            "step": info.get("step"),
        },
        "data": {
            "root": str(root),
            "split": split,
            "masks": None if mask_file is None else str(mask_file),
            "limit": limit,
        },
        "root_depth": {
            "source": "gt" if use_gt else "rootnet",
            "path": None if use_gt else str(root_depth),
        },
        "input_size": net.config.input_size,
        "flip_test": flip_test,
        "provenance": info.get("provenance"),
        "references": {name: r.summary() for name, r in scored.items()},
    }
    if meshes:
        meta |= mesh_metrics(mesh_model, dataset.split, gt, result, preds, show_progress)
    write_outputs(out, result, preds, abs_depth, meta)
    return result


def mesh_hand_model(mano_dir: str | Path | None, root: Path, device: torch.device):
    """The `HandModel` of --mano-dir (default `<root>/mano`) on `device`, loaded before the
    network runs so that missing model files are the one error line, not a late failure."""
    from core.paths import resolve_mano_dir
    from render.hand_model import HandModel

    return HandModel.from_dir(resolve_mano_dir(mano_dir, root)).to(device)


def mesh_metrics(model, split, gt, result, preds, show_progress) -> dict:
    """metrics.json's mpvpe_sh / mpvpe_ih / mpvpe_all (mm, null where no hand counts) and its
    "meshes" block, for meshes fitted with `model` to the evaluated predictions."""
    from core.camera import intrinsics
    from digit.meshes.evaluate import evaluate_meshes

    K = intrinsics(gt.focal, gt.princpt)
    scored = evaluate_meshes(
        model, split, gt.index, result.joints_cam, preds.joints_uvd_img[..., :2], K,
        show_progress=show_progress,
    )  # fmt: skip
    pooled = {k: v for k, v in scored.summary.items() if k.startswith("mpvpe_")}
    return pooled | {
        "meshes": {
            "model_sha256": model.model_sha256,
            "synthetic_model": model.is_synthetic,
            **{k: v for k, v in scored.summary.items() if k not in pooled},
            "rule": "MANO fitted to each hand's predicted camera-frame and image joints; MPVPE "
            "= mean vertex distance (mm) to the ground-truth MANO mesh, both relative to their "
            "own wrist (joint 20 regressed from the mesh); a hand counts where the image has a "
            "ground-truth MANO fit for it",
        }
    }
