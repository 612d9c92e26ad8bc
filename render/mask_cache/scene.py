"""From annotations to rasterized part masks for a batch of images (one "piece" of the cache).

Geometry (MANO forward, sealing, world -> camera) always runs on the CPU in float64 and in a
form whose result for one image does not depend on which other images share its batch: the
MANO forward runs in fixed chunks of ``FORWARD_BATCH`` frames on one thread (MKL picks other
kernels, with other rounding, for other batch sizes and thread counts), and the rigid transform
is written out element by element. Only rasterization runs on the chosen backend/device, and
the rasterizer is exact, so a mask's bytes are the same whatever the backend, device, worker
count, piece size or shard layout.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numba
import numpy as np
import torch

from core.errors import DigitError
from core.interhand.reader import InterHandSplit
from core.mask_cache import mask_crc32
from core.parts import LEFT_OFFSET, NUM_CLASSES, RIGHT_OFFSET
from core.threads import threaded_map
from render.hand_model import SIDES, HandModel
from render.part_labels import face_classes, vertex_parts_from_digit_json, vertex_parts_from_weights
from render.raster import RasterSettings, rasterize_labels_counts

FORWARD_BATCH = 32
"""Frames per MANO forward call (padded): a fixed shape keeps the float64 rounding fixed."""
BEHIND_CAMERA_MM = -1.0
"""Camera z given to every vertex of a hand that is not rendered (its faces are then skipped)."""
HAND_TYPE_RIGHT, HAND_TYPE_LEFT, HAND_TYPE_INTERACTING = 0, 1, 2


# --------------------------------------------------------------------------- topology
@dataclass(frozen=True)
class SceneTopology:
    """The packed two-hand scene: right sealed mesh, then left (design.md, rasterizer rules).

    faces: (Fr + Fl, 3) int64 indices into the packed (Vr + 1 + Vl + 1) vertices;
    face_labels: (Fr + Fl,) uint8 class ids (1..16 right, 17..32 left);
    hand_faces: per side, that hand's sealed faces (F_s, 3) int64 (own vertex ids, for
    single-hand silhouettes); n_sealed: per side, V_s + 1.
    """

    faces: np.ndarray
    face_labels: np.ndarray
    hand_faces: tuple[np.ndarray, np.ndarray]
    n_sealed: tuple[int, int]


def vertex_parts(mano_dir: Path, part_labels: str, model: HandModel) -> dict[str, np.ndarray]:
    """Per-vertex part (MANO joint 0..15) of each sealed hand mesh, (V + 1,) int64 per side.

    part_labels: "skinning" (argmax of each model file's skinning weights; the seal vertex is
    palm) or the path of DIGIT's per-vertex JSON (one list, used for both hands).
    """
    if part_labels == "skinning":
        return {
            side: vertex_parts_from_weights(model.skinning_weights(side), sealed=True)
            for side in SIDES
        }
    return {
        side: vertex_parts_from_digit_json(Path(part_labels), model.num_vertices(side) + 1)
        for side in SIDES
    }


def scene_topology(model: HandModel, parts: dict[str, np.ndarray]) -> SceneTopology:
    """Pack both sealed meshes and their face classes (see `SceneTopology`)."""
    hand_faces = tuple(model.sealed_faces(s).cpu().numpy().astype(np.int64) for s in SIDES)
    n_sealed = tuple(model.num_vertices(s) + 1 for s in SIDES)
    labels = [face_classes(f, parts[s], s) for f, s in zip(hand_faces, SIDES, strict=True)]
    faces = np.concatenate([hand_faces[0], hand_faces[1] + n_sealed[0]])
    return SceneTopology(
        faces=faces,
        face_labels=np.concatenate(labels).astype(np.uint8),
        hand_faces=hand_faces,  # type: ignore[arg-type]
        n_sealed=n_sealed,  # type: ignore[arg-type]
    )


# --------------------------------------------------------------------------- geometry
@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def pose_hands(
    model: HandModel, side: str, pose: np.ndarray, shape: np.ndarray, trans: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """MANO forward for M frames of one hand, batch-independent (see the module docstring).

    pose (M, 48), shape (M, 10), trans (M, 3) metres: NeuralAnnot parameters.
    Returns sealed vertices (M, V + 1, 3) and the 21 IH joints (M, 21, 3), world mm, float64.
    """
    m = len(pose)
    n_sealed = model.num_vertices(side) + 1
    verts = np.empty((m, n_sealed, 3), dtype=np.float64)
    joints = np.empty((m, 21, 3), dtype=np.float64)
    params = [np.asarray(a, dtype=np.float64) for a in (pose, shape, trans)]
    with _torch_threads(1), torch.no_grad():
        for start in range(0, m, FORWARD_BATCH):
            stop = min(start + FORWARD_BATCH, m)
            chunk = []
            for a in params:
                padded = np.zeros((FORWARD_BATCH, a.shape[1]), dtype=np.float64)
                padded[: stop - start] = a[start:stop]
                chunk.append(torch.from_numpy(padded).to(model.device))
            out = model(side, *chunk)
            sealed = model.sealed(side, out.vertices)
            verts[start:stop] = sealed[: stop - start].cpu().numpy()
            joints[start:stop] = out.joints[: stop - start].cpu().numpy()
    return verts, joints


def mask_valid(hand_type_code: np.ndarray, rendered: np.ndarray) -> np.ndarray:
    """DIGIT's mask validity: interacting frames need fits for both hands; single-hand frames
    the fit of that hand and none for the other.

    hand_type_code (B,) 0 right / 1 left / 2 interacting; rendered (B, 2) bool (right, left).
    Returns (B,) bool.
    """
    r, l = rendered[:, 0], rendered[:, 1]
    code = np.asarray(hand_type_code)
    return np.where(
        code == HAND_TYPE_INTERACTING, r & l, np.where(code == HAND_TYPE_RIGHT, r & ~l, l & ~r)
    )


def fit_error_mm(
    model_joints_cam: np.ndarray,
    annotated_cam: np.ndarray,
    annotated_valid: np.ndarray,
    rendered: np.ndarray,
) -> np.ndarray:
    """Mean distance between regressed and annotated joints, per hand, no root alignment.

    model_joints_cam (B, 2, 21, 3) mm (anything where not rendered); annotated_cam (B, 42, 3)
    mm; annotated_valid (B, 42) bool (joint_3d.json validity); rendered (B, 2) bool.
    Returns (B, 2) float32 mm; NaN where the hand has no fit or no valid annotated joint.
    """
    ann = annotated_cam.reshape(-1, 2, 21, 3)
    valid = annotated_valid.reshape(-1, 2, 21) & np.isfinite(ann).all(-1) & rendered[..., None]
    diff = np.where(valid[..., None], model_joints_cam - ann, 0.0)
    dist = np.sqrt((diff[..., 0] * diff[..., 0] + diff[..., 1] * diff[..., 1]) + diff[..., 2] ** 2)
    count = valid.sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, dist.sum(-1) / count, np.nan)
    return mean.astype(np.float32)


def silhouette_iou(right: np.ndarray, left: np.ndarray) -> np.ndarray:
    """IoU of two coverage masks per image: (B, H, W) bool each -> (B,) float32.

    0 when neither hand covers any pixel (nothing overlaps).
    """
    inter = np.logical_and(right, left).sum(axis=(1, 2))
    union = np.logical_or(right, left).sum(axis=(1, 2))
    return iou_from_counts(inter, union)


def iou_from_counts(inter: np.ndarray, union: np.ndarray) -> np.ndarray:
    """IoU from pixel counts: (B,) intersections, (B,) unions -> (B,) float32, 0 where the
    union is empty."""
    inter, union = np.asarray(inter), np.asarray(union)
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0).astype(np.float32)


# --------------------------------------------------------------------------- a piece
@dataclass(frozen=True)
class PieceInput:
    """What rendering B images needs, all numpy (picklable, small: about 1.3 KB per image).

    image_id (B,) int64; hw (B, 2) int32 (height, width); K, R (B, 3, 3); t (B, 3) mm;
    joints_cam (B, 42, 3) annotated camera-frame joints mm (NaN unknown); joint_valid_3d (B, 42)
    bool; hand_type_code (B,) int8; frame_row (B,) int64 (same value = same time frame);
    has_mano (B, 2) bool; mano_pose (B, 2, 48), mano_shape (B, 2, 10), mano_trans (B, 2, 3) m.
    """

    image_id: np.ndarray
    hw: np.ndarray
    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    joints_cam: np.ndarray
    joint_valid_3d: np.ndarray
    hand_type_code: np.ndarray
    frame_row: np.ndarray
    has_mano: np.ndarray
    mano_pose: np.ndarray
    mano_shape: np.ndarray
    mano_trans: np.ndarray

    def __len__(self) -> int:
        return len(self.image_id)


def piece_input(split: InterHandSplit, start: int, stop: int) -> PieceInput:
    """The rows [start, stop) of `split` as a `PieceInput`."""
    b = split.gather(slice(start, stop))
    return PieceInput(
        image_id=b.image_id,
        hw=b.hw.astype(np.int32),
        K=b.K,
        R=b.R,
        t=b.t,
        joints_cam=b.joints_cam,
        joint_valid_3d=b.joint_valid_3d,
        hand_type_code=b.hand_type_code,
        frame_row=split.columns.frame_row[start:stop].astype(np.int64),
        has_mano=b.has_mano,
        mano_pose=b.mano_pose,
        mano_shape=b.mano_shape,
        mano_trans=b.mano_trans,
    )


@dataclass(frozen=True)
class PieceResult:
    """Cache rows for B images (see layout.py for the meaning of each).

    masks (B, Hmax, Wmax) uint8; image_id (B,) int64; image_hw (B, 2) int32; hands (B, 2)
    bool; valid (B,) bool; fit_error_mm (B, 2) float32; lr_iou (B,) float32; mask_crc32 (B,)
    uint32; visible_px (B, 2) int32.
    """

    masks: np.ndarray
    image_id: np.ndarray
    image_hw: np.ndarray
    hands: np.ndarray
    valid: np.ndarray
    fit_error_mm: np.ndarray
    lr_iou: np.ndarray
    mask_crc32: np.ndarray
    visible_px: np.ndarray


def visible_pixels(masks: np.ndarray) -> np.ndarray:
    """Pixels of the right (classes 1..16) and left (17..32) hand per mask: (B, H, W) uint8 ->
    (B, 2) int32."""
    right = ((masks >= RIGHT_OFFSET) & (masks < LEFT_OFFSET)).sum(axis=(1, 2))
    left = ((masks >= LEFT_OFFSET) & (masks < NUM_CLASSES)).sum(axis=(1, 2))
    return np.stack([right, left], axis=1).astype(np.int32)


def mask_checksums(masks: np.ndarray, hw: np.ndarray, threads: int | None = None) -> np.ndarray:
    """`core.mask_cache.mask_crc32` of each image's [:h, :w] part: (B, H, W), (B, 2) -> (B,),
    in `threads` threads (None: numba's thread count, the cores this process may use)."""
    sizes = hw.tolist()
    crcs = threaded_map(
        lambda i: mask_crc32(masks[i, : sizes[i][0], : sizes[i][1]]),
        range(len(masks)),
        numba.get_num_threads() if threads is None else threads,
    )
    return np.array(crcs, dtype=np.uint32)


@dataclass(frozen=True)
class PosedScene:
    """Camera-frame geometry of B images, mm: verts per side (right, left), sealed vertices
    (B, V_s + 1, 3); joints (B, 2, 21, 3) IH order, NaN where not rendered; rendered (B, 2)."""

    verts: tuple[np.ndarray, np.ndarray]
    joints: np.ndarray
    rendered: np.ndarray


@numba.njit(cache=True, nogil=True)
def world_to_camera_into(points, where, R, t, images, out):  # pragma: no cover - numba
    """out[images[n]] = `core.camera.world_to_camera_exact` of points[where[n]] with camera
    R[images[n]], t[images[n]], bit for bit (the same written-out sum, compiled without
    fastmath, so no fused multiply-add), without the gathered and temporary arrays of the
    numpy form. points (S, P, 3) float64 world mm; where, images (N,) int; R (B, 3, 3); t
    (B, 3); out (B, P, 3) float64 camera mm, written in place. Returns (N,) bool: every
    output coordinate of that image finite."""
    finite = np.ones(len(images), dtype=np.bool_)
    for n in range(len(images)):
        b = images[n]
        src = where[n]
        for p in range(points.shape[1]):
            x = points[src, p, 0]
            y = points[src, p, 1]
            z = points[src, p, 2]
            for k in range(3):
                c = ((R[b, k, 0] * x + R[b, k, 1] * y) + R[b, k, 2] * z) + t[b, k]
                out[b, p, k] = c
                if not np.isfinite(c):
                    finite[n] = False
    return finite


def pose_piece(model: HandModel, inp: PieceInput) -> PosedScene:
    """MANO forward once per distinct time frame and hand, then each camera's rigid transform.

    Hands without a fit get every vertex at camera z = BEHIND_CAMERA_MM (never drawn).
    """
    _, first, inverse = np.unique(inp.frame_row, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    rendered = inp.has_mano.astype(bool)
    n = len(inp)
    verts_out, joints = [], np.full((n, 2, 21, 3), np.nan)
    for h, side in enumerate(SIDES):
        n_sealed = model.num_vertices(side) + 1
        cam = np.zeros((n, n_sealed, 3))
        cam[..., 2] = BEHIND_CAMERA_MM
        fitted = np.flatnonzero(inp.has_mano[first, h])  # distinct frames with a fit
        if len(fitted):
            src = first[fitted]
            v_w, j_w = pose_hands(
                model, side, inp.mano_pose[src, h], inp.mano_shape[src, h], inp.mano_trans[src, h]
            )
            slot = np.full(len(first), -1)
            slot[fitted] = np.arange(len(fitted))
            images = np.flatnonzero(rendered[:, h])
            where = slot[inverse[images]]
            finite = world_to_camera_into(v_w, where, inp.R, inp.t, images, cam)
            if not finite.all():  # finite parameters can still overflow (checked before rendering)
                raise DigitError(
                    f"image id {int(inp.image_id[images[~finite][0]])}: the {side} hand's MANO "
                    "fit gives non-finite vertices"
                )
            joints_h = np.full((n, 21, 3), np.nan)
            world_to_camera_into(j_w, where, inp.R, inp.t, images, joints_h)
            joints[:, h] = joints_h
        verts_out.append(cam)
    return PosedScene(verts=(verts_out[0], verts_out[1]), joints=joints, rendered=rendered)


def render_piece(
    model: HandModel,
    topo: SceneTopology,
    inp: PieceInput,
    canvas_hw: tuple[int, int],
    raster: RasterSettings,
) -> PieceResult:
    """Masks and per-image values for B images on a (Hmax, Wmax) canvas (``canvas_hw``):
    `pose_piece`, then `render_posed`."""
    return render_posed(topo, inp, pose_piece(model, inp), canvas_hw, raster)


def render_posed(
    topo: SceneTopology,
    inp: PieceInput,
    posed: PosedScene,
    canvas_hw: tuple[int, int],
    raster: RasterSettings,
) -> PieceResult:
    """`render_piece` after `pose_piece` (``posed``): one rasterizer pass gives the masks, each
    hand's visible pixels and the two hands' silhouette overlap (`rasterize_labels_counts`);
    checksums run in threads."""
    hmax, wmax = canvas_hw
    if len(inp) and (inp.hw[:, 0].max() > hmax or inp.hw[:, 1].max() > wmax):
        raise DigitError(f"images larger than the cache canvas {hmax}x{wmax}")
    n = len(inp)
    both = np.flatnonzero(posed.rendered.all(axis=1))
    lr_iou = np.full(n, np.nan, dtype=np.float32)
    masks = np.zeros((n, hmax, wmax), dtype=np.uint8)
    counts = np.zeros((n, 4), dtype=np.int64)
    if n:
        masks, counts = rasterize_labels_counts(
            np.concatenate(posed.verts, axis=1), topo.faces, topo.face_labels, inp.K, inp.hw,
            len(topo.hand_faces[0]), canvas_hw=(hmax, wmax), settings=raster,
        )  # fmt: skip
    lr_iou[both] = iou_from_counts(counts[both, 2], counts[both, 3])
    return PieceResult(
        masks=masks,
        image_id=inp.image_id.astype(np.int64),
        image_hw=inp.hw.astype(np.int32),
        hands=posed.rendered,
        valid=mask_valid(inp.hand_type_code, posed.rendered),
        fit_error_mm=fit_error_mm(posed.joints, inp.joints_cam, inp.joint_valid_3d, posed.rendered),
        lr_iou=lr_iou,
        mask_crc32=mask_checksums(masks, inp.hw),
        visible_px=counts[:, :2].astype(np.int32),
    )
