"""What `digit-demo --meshes` adds for a batch of images: one batched MANO fit of every hand
shown, then per image `<stem>_{right,left}.obj`, `<stem>_mano.json` and (with pictures)
`<stem>_mesh.png`, and the record fields that point to them.

The hands fitted are the demo's hands shown (handedness above 0.5) with a root depth; each is
fitted to its lifted camera-frame joints and its predicted image joints (`digit.meshes.fit`).
With ground truth (`--split`), the image's true MANO meshes are drawn beside the fitted ones and
each fitted hand's MPVPE against its true mesh is recorded (`digit.meshes.evaluate.mpvpe`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from core.assets import SYNTHETIC_MANO_DIR
from core.camera import world_to_camera
from core.files import atomic_path
from core.joints import SIDES
from core.paths import resolve_mano_dir
from digit.demo.intrinsics import Intrinsics
from digit.demo.lift import Hands3D
from digit.demo.predict import ImagePrediction, hands_shown
from digit.demo.record import finite_or_none
from digit.demo.truth import ImageTruth
from digit.meshes.evaluate import fit_hands, mpvpe
from digit.meshes.files import mano_entry, write_mano_json, write_obj
from digit.meshes.fit import FitResult, FitSettings
from digit.meshes.pictures import MeshPictureInput, hand_topology, mesh_figure
from render.hand_model import HandModel
from render.mask_cache.scene import SceneTopology

CONVENTIONS = {
    "meshes_obj": "<stem>_{right,left}.obj: the fitted hand in the image's camera frame (OpenCV: "
    "x right, y down, z forward), metres, the model's vertices and faces (MANO: 778 and 1,538), "
    "faces 1-based",
    "meshes_mano_json": "<stem>_mano.json: InterHand2.6M MANO_NeuralAnnot layout, capture '0', "
    "frame '0', right / left: pose (48, axis-angle, global orientation then the fingers minus "
    "the mean pose), shape (10), trans (3, metres); world frame = the camera frame (camrot "
    "identity, campos 0)",
    "meshes_fit": "MANO fitted to the lifted camera-frame joints and the predicted image joints "
    "of each hand shown, with pose and shape priors and a two-hand interpenetration term",
}


@dataclass(frozen=True)
class MeshOptions:
    """The hand model a demo run fits with, its packed scene for pictures, and the settings.

    source: the folder the model came from (recorded in predictions.json).
    """

    model: HandModel
    topology: SceneTopology
    settings: FitSettings
    source: str

    @classmethod
    def load(
        cls, mano_dir: Path | None, data_root: Path | None, settings: FitSettings | None = None
    ) -> MeshOptions:
        """The model in `mano_dir`, else `<data_root>/mano`, else the project's synthetic model
        (`HandModel.from_dir` raises one DigitError line for missing files)."""
        with_root = mano_dir is not None or data_root is not None
        folder = resolve_mano_dir(mano_dir, data_root) if with_root else SYNTHETIC_MANO_DIR
        model = HandModel.from_dir(folder)
        if torch.cuda.is_available():
            model = model.to("cuda")
        return cls(model, hand_topology(model), settings or FitSettings(), str(folder))


@dataclass(frozen=True)
class DemoImage:
    """One image of the batch: pixels (H, W, 3) uint8, its prediction, intrinsics, lifted hands,
    ground truth (or None), and the stem its files are named after."""

    pixels: np.ndarray
    pred: ImagePrediction
    camera: Intrinsics
    hands: Hands3D
    truth: ImageTruth | None
    stem: str


def true_vertices(model: HandModel, truth: ImageTruth) -> tuple[list, list]:
    """Ground-truth camera-frame (vertices (V, 3), joints (21, 3)) mm per hand, None where the
    image has no MANO fit for it."""
    verts, joints = [], []
    for side, fit in zip(SIDES, truth.mano, strict=True):
        if fit is None or truth.R is None:
            verts.append(None)
            joints.append(None)
            continue
        with torch.no_grad():
            out = model(side, *(torch.as_tensor(a[None]) for a in (fit.pose, fit.shape, fit.trans)))
        verts.append(world_to_camera(out.vertices[0].cpu().numpy(), truth.R, truth.t))
        joints.append(world_to_camera(out.joints[0].cpu().numpy(), truth.R, truth.t))
    return verts, joints


RESIDUALS = ("joint_error_mm", "reprojection_px", "penetration_mm")


def mesh_file_names(stem: str, pictures: bool) -> list[str]:
    """Every file `image_meshes` may write for the image named `stem` (hands it did not fit
    have no OBJ)."""
    names = [f"{stem}_{side}.obj" for side in SIDES] + [f"{stem}_mano.json"]
    return names + ([f"{stem}_mesh.png"] if pictures else [])


def _write_files(options: MeshOptions, fit: FitResult, mine: dict[int, int], stem: str, out: Path):
    """Write one image's OBJ files (the hands fitted, `mine`: hand 0/1 -> row of `fit`) and its
    MANO JSON; returns their record entries."""
    obj, entries = {}, {}
    for h, side in enumerate(SIDES):
        k = mine.get(h)
        obj[side] = entries[side] = None
        if k is None:
            continue
        obj[side] = f"{stem}_{side}.obj"
        faces = options.model.faces(side).cpu().numpy()
        comment = f"DIGIT: fitted {side} hand ({options.source})\ncamera frame, metres"
        write_obj(out / obj[side], fit.vertices[k], faces, comment)
        entries[side] = mano_entry(fit.pose[k], fit.shape[k], fit.trans[k])
    write_mano_json(out / f"{stem}_mano.json", entries["right"], entries["left"])
    return {"obj": obj, "mano_json": f"{stem}_mano.json"}


def _per_hand(values: np.ndarray, mine: dict[int, int]) -> list:
    """[right, left] of a per-fit array, None for a hand not fitted (or not finite)."""
    return [finite_or_none(values[mine[h]]) if h in mine else None for h in range(2)]


def image_meshes(
    options: MeshOptions, images: list[DemoImage], out: Path, pictures: bool
) -> list[dict]:
    """Fit, write and draw the meshes of a batch of images; returns each image's "meshes"
    record: file names relative to `out`, the fit's residuals per hand (right, left) and, with
    ground truth, the MPVPE per hand."""
    shown = [
        hands_shown(im.pred.handedness_prob) & np.isfinite(im.hands.root_depth) for im in images
    ]
    fit, image_of, hand_of = fit_hands(
        options.model,
        np.stack([im.hands.joints_cam for im in images]),
        np.stack([im.pred.joints_uvd_img[:, :2] for im in images]),
        np.stack([im.camera.K for im in images]),
        np.stack(shown),
        options.settings,
    )
    records = []
    for i, im in enumerate(images):
        mine = {int(hand_of[k]): int(k) for k in np.flatnonzero(image_of == i)}
        record = _write_files(options, fit, mine, im.stem, out)
        record["picture"] = None
        record["fit"] = {name: _per_hand(getattr(fit, name), mine) for name in RESIDUALS}
        truth = None
        if im.truth is not None:
            truth, truth_joints = true_vertices(options.model, im.truth)
            errors = np.full(len(fit), np.nan)
            for h, k in mine.items():
                if truth[h] is not None:
                    errors[k] = mpvpe(fit.vertices[k], fit.joints[k], truth[h], truth_joints[h])
            record["ground_truth"] = {"mpvpe_mm": _per_hand(errors, mine)}
        if pictures:
            record["picture"] = f"{im.stem}_mesh.png"
            fitted = [fit.vertices[mine[h]] if h in mine else None for h in range(2)]
            pic = MeshPictureInput(
                im.pixels, im.pred.crop_box, im.camera.K, fitted[0], fitted[1],
                im.pred.segmentation, None if truth is None else tuple(truth),
                f"{im.stem}: fitted hands ({options.source})",
            )  # fmt: skip
            with atomic_path(out / record["picture"]) as tmp:
                mesh_figure(options.model, options.topology, pic).save(tmp, format="png")
        records.append(record)
    return records
