"""A whole `digit-demo` run: check every input, predict in batches, lift to 3D, draw, record.

Writes `out/<stem>_pred.png` per image (unless told not to) and one `out/predictions.json`.
Every input (the output folder, every image and its box) is checked before anything is written,
so a bad input ends the run with one DigitError line and no output; the folder's files are
replaced only as a whole run (`digit.demo.out_folder`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.errors import DigitError
from core.files import atomic_write_bytes
from core.image_io import load_rgb
from core.joints import SIDES
from core.progress import progress
from digit.demo.inputs import check_box_on_image
from digit.demo.intrinsics import Intrinsics, image_intrinsics, warn_implausible_options
from digit.demo.lift import Hands3D, lift_prediction, warn_implausible_depths
from digit.demo.out_folder import INDEX, check_out_folder, writing_run
from digit.demo.panel import prediction_figure, save_figure
from digit.demo.predict import (
    ImagePrediction,
    crop_batch,
    hands_shown,
    run_network,
    undo_crops,
)
from digit.demo.record import image_record, run_document
from digit.demo.truth import GT_ROOT_DEPTH, ImageTruth, image_mpjpe
from digit.meshes.demo import CONVENTIONS as MESH_CONVENTIONS
from digit.meshes.demo import DemoImage, MeshOptions, image_meshes, mesh_file_names
from digit.model import DigitNet

DEFAULT_BATCH_SIZE = 16


@dataclass(frozen=True)
class DemoRun:
    """records: the JSON record of each image; network_s: seconds spent in the network
    (batched forward passes); total_s: seconds of the whole run; batch_size."""

    records: list[dict]
    network_s: float
    total_s: float
    batch_size: int

    def speed(self) -> dict:
        n = len(self.records)
        return {
            "images": n,
            "batch_size": self.batch_size,
            "network_s": self.network_s,
            "network_images_per_s": n / self.network_s if self.network_s > 0 else None,
            "total_s": self.total_s,
            "overall_images_per_s": n / self.total_s if self.total_s > 0 else None,
        }

    def summary(self) -> str:
        """One line: images per second of the network stage and of the whole run."""
        s = self.speed()
        net = s["network_images_per_s"] or float("inf")
        overall = s["overall_images_per_s"] or float("inf")
        return (
            f"{s['images']} images in {self.total_s:.1f} s: network {net:.1f} images/s "
            f"(batches of {self.batch_size}), overall {overall:.2f} images/s"
        )


def run_files(names: list[str], pictures: bool, meshes: bool) -> list[str]:
    """Every file name a run may write into its folder besides the index: the panels `names`
    (with pictures) and, with meshes, each image's mesh files."""
    files = list(names) if pictures else []
    if meshes:
        for name in names:
            files += mesh_file_names(name.removesuffix("_pred.png"), pictures)
    return files


def panel_names(images: list[Path]) -> list[str]:
    """`<stem>_pred.png`, with `-2`, `-3`, ... added to repeated stems."""
    names, seen = [], {}
    for path in images:
        n = seen[path.stem] = seen.get(path.stem, 0) + 1
        names.append(f"{path.stem}_pred.png" if n == 1 else f"{path.stem}-{n}_pred.png")
    return names


def _title(
    path: Path, error: tuple[float, np.ndarray] | None, camera: Intrinsics, hands: Hands3D
) -> str:
    """The picture's title: the image, the error (with ground truth), then the intrinsics and
    root depths used."""
    first = path.name
    if error is not None and np.isfinite(error[0]):
        per_hand = ", ".join(
            f"{side} {e:.1f}" for side, e in zip(SIDES, error[1], strict=True) if np.isfinite(e)
        )
        first += f": root-relative MPJPE {error[0]:.1f} mm ({per_hand})"
    fx, fy = camera.focal
    focal = f"{fx:.0f}" if round(fx) == round(fy) else f"{fx:.0f},{fy:.0f}"
    depths = ", ".join(
        f"{side} {z:.0f} mm ({src})"
        for side, z, src in zip(SIDES, hands.root_depth, hands.root_depth_source, strict=True)
    )
    return f"{first}\nfocal {focal} px ({camera.focal_source}); root depth {depths}"


def _in_3d(
    pred: ImagePrediction,
    hw: tuple[int, int],
    focal: np.ndarray | None,
    princpt: np.ndarray | None,
    truth: ImageTruth | None,
) -> tuple[Intrinsics, Hands3D, tuple[float, np.ndarray] | None]:
    """One image's intrinsics, its hands in 3D and, with ground truth, the `image_mpjpe` error
    (the dataset camera and the annotated root depths are then used where not overridden)."""
    camera = image_intrinsics(
        hw, focal, princpt, (truth.focal, truth.princpt) if truth is not None else None
    )
    known = None if truth is None else np.where(truth.root_valid, truth.root_depth, np.nan)
    shown = hands_shown(pred.handedness_prob)
    hands = lift_prediction(
        pred.joints_uvd_img, pred.rel_root_depth_mm, camera, shown, known, GT_ROOT_DEPTH
    )
    error = None if truth is None else image_mpjpe(hands.joints_cam, truth)
    return camera, hands, error


def _check_inputs(images: list[Path], boxes: list, batch_size: int, focal, princpt) -> None:
    if batch_size < 1:
        raise DigitError(f"--batch-size: must be at least 1, got {batch_size}")
    sizes = []
    for path, box in zip(images, boxes, strict=True):
        sizes.append((path, load_rgb(path).shape[:2]))
        check_box_on_image(path, box, sizes[-1][1])
    warn_implausible_options(focal, princpt, sizes)


def run_demo(
    images: list[Path],
    net: DigitNet,
    info: dict,
    out: Path,
    *,
    bbox: np.ndarray | list[np.ndarray] | None = None,
    extra: list[dict] | None = None,
    truths: list[ImageTruth] | None = None,
    focal: np.ndarray | None = None,
    princpt: np.ndarray | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    started: float | None = None,
    pictures: bool = True,
    show_progress: bool = True,
    overwrite: bool = False,
    meshes: MeshOptions | None = None,
    flip_test: bool = False,
) -> DemoRun:
    """Predict on every image and write `out/<stem>_pred.png` and `out/predictions.json`.

    net, info: `digit.checkpoint.load_network`'s network (eval mode, on its device) and info.
    bbox: one (4,) box [x, y, w, h] for all images, a list with one box per image, or None
    (each whole image). extra: per image, more fields for its JSON record (e.g. detections).
    truths: per image, its ground truth (then the dataset camera and the true root depths are
    used, and the error is drawn and recorded). focal (2,), princpt (2,): the intrinsics for
    every image (default: `digit.demo.intrinsics`). started: `time.perf_counter()` at the
    start of the whole command, for the overall speed (default: now). pictures: False writes
    the JSON only (records then have "panel": null). overwrite: replace an earlier run in
    `out` (else it is refused; see `digit.demo.out_folder`). meshes: also fit MANO hands and
    write their files (`digit.meshes.demo`; records then have "meshes"). flip_test: each
    crop's answer averaged with its mirror's (`digit.demo.predict.run_network`; recorded in
    predictions.json).
    """
    started = time.perf_counter() if started is None else started
    images, out = [Path(p) for p in images], Path(out)
    boxes = bbox if isinstance(bbox, list) else [bbox] * len(images)
    names = panel_names(images)
    files = run_files(names, pictures, meshes is not None)
    check_out_folder(out, images, files, overwrite)
    _check_inputs(images, boxes, batch_size, focal, princpt)
    with writing_run(out, images, files, overwrite) as stage:
        return _predict_all(
            images, boxes, names, net, info, stage, extra=extra, truths=truths, focal=focal,
            princpt=princpt, batch_size=batch_size, started=started, pictures=pictures,
            show_progress=show_progress, meshes=meshes, flip_test=flip_test,
        )  # fmt: skip


def _predict_all(
    images: list[Path], boxes: list, names: list[str], net: DigitNet, info: dict, stage: Path,
    *, extra, truths, focal, princpt, batch_size: int, started: float, pictures: bool,
    show_progress: bool, meshes: MeshOptions | None, flip_test: bool,
) -> DemoRun:  # fmt: skip
    """`run_demo`'s work (same arguments), its files written into the partial folder `stage`
    (`digit.demo.out_folder.writing_run` moves them into place)."""
    device = next(net.parameters()).device
    records, lifted, network_s = [], [], 0.0
    with progress(len(images), "digit-demo", enabled=show_progress) as bar:
        for start in range(0, len(images), batch_size):
            todo = range(start, min(start + batch_size, len(images)))
            pixels = [load_rgb(images[i]) for i in todo]
            batch = crop_batch(
                pixels,
                [boxes[i] for i in todo],
                net.config.input_size,
                device,
                net.config.antialias,
            )
            tic = time.perf_counter()
            output = run_network(net, batch.crops, flip_test)
            network_s += time.perf_counter() - tic
            fitted = []
            for i, image, pred in zip(todo, pixels, undo_crops(output, batch), strict=True):
                truth = truths[i] if truths is not None else None
                camera, hands, error = _in_3d(pred, image.shape[:2], focal, princpt, truth)
                lifted.append((images[i], hands))
                stem = names[i].removesuffix("_pred.png")
                fitted.append(DemoImage(image, pred, camera, hands, truth, stem))
                if pictures:
                    title = _title(images[i], error, camera, hands)
                    fig = prediction_figure(image, pred, hands, title, truth)
                    save_figure(fig, stage / names[i])
                name = names[i] if pictures else None
                record = image_record(images[i], name, pred, camera, hands, truth, error)
                records.append(record | (extra[i] if extra else {}))
                bar.advance(1)
            if meshes is not None:
                for record, found in zip(
                    records[start:], image_meshes(meshes, fitted, stage, pictures), strict=True
                ):
                    record["meshes"] = found
    warn_implausible_depths(lifted)
    run = DemoRun(records, network_s, time.perf_counter() - started, batch_size)
    doc = run_document(info, records, run.speed()) | {"flip_test": flip_test}
    if meshes is not None:
        doc["conventions"] = doc["conventions"] | MESH_CONVENTIONS | {"meshes_model": meshes.source}
    atomic_write_bytes(stage / INDEX, json.dumps(doc, indent=1).encode())
    return run
