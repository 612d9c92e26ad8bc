"""Columnar tables of one InterHand2.6M split, built from the parsed JSON files.

Memory stays linear and small: per image about 220 bytes plus the file name (see
`SplitColumns`); cameras and (capture, frame) rows are stored once in their own tables and
referenced by row index, so N images from F distinct time frames cost about
N * (220 + len(file_name)) + F * 2 KB bytes (F is far below N in the real data: every frame is
seen by tens of cameras).
"""

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from core.camera import Camera, intrinsics
from core.errors import DigitError
from core.interhand.schema import (
    SchemaProblem,
    checked_list,
    finish_entries,
    numbers_array,
    parse_annotation,
    parse_image,
    parse_joint_frame,
    parse_mano_hand,
    parse_rootnet,
)
from core.joints import NUM_JOINTS, with_root_validity


def _freeze(obj: Any) -> None:
    """Make every array field read-only: the tables are shared by all subsets and records."""
    for f in fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, np.ndarray):
            value.setflags(write=False)


@dataclass(frozen=True, eq=False)
class CameraTable:
    """The (capture, camera) pairs a split uses, one row each (C rows).

    capture (C,) int32; name (C,) camera names as in data.json (e.g. "400026");
    K (C, 3, 3) pixels; R (C, 3, 3) world->camera; t (C, 3) mm (X_cam = R X_world + t).
    """

    capture: np.ndarray
    name: tuple[str, ...]
    K: np.ndarray
    R: np.ndarray
    t: np.ndarray

    def __post_init__(self) -> None:
        _freeze(self)

    def __len__(self) -> int:
        return len(self.name)

    def camera(self, row: int) -> Camera:
        """The Camera of one row."""
        return Camera(K=self.K[row], R=self.R[row], t=self.t[row])


@dataclass(frozen=True, eq=False)
class FrameTable:
    """The (capture, frame_idx) time steps a split uses, one row each (F rows, about 2 KB each).

    capture (F,) int32; frame_idx (F,) int64;
    has_joints (F,) bool: the frame is in joint_3d.json;
    joints_world (F, 42, 3) float64 mm, NaN where unknown (frame missing, or the [1, 1, 1]
      placeholder that marks an unannotated joint);
    joint_valid_3d (F, 42) bool: joint_3d.json's joint_valid, False where joints_world is NaN;
    has_mano (F, 2) bool: (right, left) MANO fit present;
    mano_pose (F, 2, 48), mano_shape (F, 2, 10), mano_trans (F, 2, 3) metres: float64, NaN
      where there is no fit.
    """

    capture: np.ndarray
    frame_idx: np.ndarray
    has_joints: np.ndarray
    joints_world: np.ndarray
    joint_valid_3d: np.ndarray
    has_mano: np.ndarray
    mano_pose: np.ndarray
    mano_shape: np.ndarray
    mano_trans: np.ndarray

    def __post_init__(self) -> None:
        _freeze(self)

    def __len__(self) -> int:
        return len(self.capture)


@dataclass(frozen=True, eq=False)
class SplitColumns:
    """Per-image columns of a split, in data.json image order (N rows).

    position (N,) int64: index in the full data.json image list (kept by subset/shard);
    image_id, annot_id (N,) int64; hw (N, 2) int32 (height, width);
    capture, subject (N,) int32 (subject -1 if absent); frame_idx (N,) int64;
    seq_code (N,) int32 indexing `seq_names`; camera_row (N,) int32 into the CameraTable;
    frame_row (N,) int32 into the FrameTable;
    joint_valid (N, 42) bool: data.json joint_valid AND a trusted 3D joint AND that hand's root
      (joint 20 / 41) valid by the same rule;
    hand_type_code (N,) int8: 0 right, 1 left, 2 interacting; hand_type_valid (N,) bool;
    bbox (N, 4) float64 [x, y, w, h] pixels as annotated;
    file_name (N,) bytes (numpy 'S', utf-8): path relative to images/{split}/;
    RootNet (None unless a RootNet file was given): has_rootnet (N,) bool,
      rootnet_abs_depth (N, 2) mm (NaN where absent), rootnet_root_valid (N, 2) bool,
      rootnet_bbox (N, 4) (NaN where absent).
    Bytes per image: 8*3 + 8 + 4*2 + 8 + 4*3 + 42 + 1 + 1 + 32 + len(file_name)
      (+ 57 with RootNet) = 136 + len(file_name).
    """

    position: np.ndarray
    image_id: np.ndarray
    annot_id: np.ndarray
    hw: np.ndarray
    capture: np.ndarray
    subject: np.ndarray
    frame_idx: np.ndarray
    seq_code: np.ndarray
    camera_row: np.ndarray
    frame_row: np.ndarray
    joint_valid: np.ndarray
    hand_type_code: np.ndarray
    hand_type_valid: np.ndarray
    bbox: np.ndarray
    file_name: np.ndarray
    seq_names: tuple[str, ...]
    has_rootnet: np.ndarray | None = None
    rootnet_abs_depth: np.ndarray | None = None
    rootnet_root_valid: np.ndarray | None = None
    rootnet_bbox: np.ndarray | None = None

    def __post_init__(self) -> None:
        _freeze(self)

    def __len__(self) -> int:
        return len(self.image_id)

    def take(self, selection: slice | np.ndarray) -> "SplitColumns":
        """The rows `selection` (a slice gives views, an index array copies)."""
        values = {}
        for f in fields(self):
            value = getattr(self, f.name)
            values[f.name] = value[selection] if isinstance(value, np.ndarray) else value
        return SplitColumns(**values)

    @property
    def nbytes(self) -> int:
        """Bytes held by the arrays (views share memory with their parent)."""
        return sum(a.nbytes for a in vars(self).values() if isinstance(a, np.ndarray))


@dataclass(frozen=True)
class IndexReport:
    """What indexing found, for the user (counts; zero means nothing unusual).

    frames_missing_joints / images_missing_joints: (capture, frame) rows absent from
    joint_3d.json and the images that show them (their joints are NaN and invalid);
    placeholder_joints: joints in used frames holding the [1, 1, 1] placeholder;
    untrusted_valid_joints: (image, joint) pairs data.json marks valid whose 3D joint is
    unknown (missing frame or placeholder), made invalid;
    orphan_annotations: annotations whose image_id has no image (ignored);
    frames_missing_mano / null_mano_hands: used frames absent from the MANO file, and null
    hands in present frames (None when no MANO file was given);
    images_missing_rootnet / rootnet_unused: images without a RootNet entry, and entries
    whose annot_id is not in this split (None when no RootNet file was given).
    """

    n_images: int
    n_cameras: int
    n_frames: int
    frames_missing_joints: int
    images_missing_joints: int
    placeholder_joints: int
    untrusted_valid_joints: int
    orphan_annotations: int
    frames_missing_mano: int | None
    null_mano_hands: int | None
    images_missing_rootnet: int | None
    rootnet_unused: int | None

    def lines(self) -> list[str]:
        """Human-readable summary, one finding per line."""
        out = [
            f"{self.n_images} images, {self.n_cameras} cameras, {self.n_frames} time frames",
        ]
        if self.frames_missing_joints:
            out.append(
                f"{self.frames_missing_joints} frames ({self.images_missing_joints} images) "
                "missing from joint_3d.json: their joints are invalid"
            )
        if self.untrusted_valid_joints:
            out.append(
                f"{self.untrusted_valid_joints} joints marked valid in data.json have no 3D "
                "annotation: made invalid"
            )
        if self.orphan_annotations:
            out.append(f"{self.orphan_annotations} annotations without an image: ignored")
        if self.frames_missing_mano is None:
            out.append("no MANO file: every fit is None")
        elif self.frames_missing_mano or self.null_mano_hands:
            out.append(
                f"MANO: {self.frames_missing_mano} frames missing, "
                f"{self.null_mano_hands} null hands"
            )
        if self.images_missing_rootnet:
            out.append(f"RootNet: {self.images_missing_rootnet} images without an entry")
        return out


# ---- building ---------------------------------------------------------------------------------


def unique_rows(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (a, b) pairs, sorted: (index of each pair's first occurrence (U,), row of
    every input in the pair table (N,) int32)."""
    n = len(a)
    order = np.lexsort((b, a))
    new = np.ones(n, dtype=bool)
    if n > 1:
        new[1:] = (a[order][1:] != a[order][:-1]) | (b[order][1:] != b[order][:-1])
    row = np.empty(n, dtype=np.int32)
    row[order] = np.cumsum(new) - 1
    return order[new], row


def _codes(values: tuple[str, ...]) -> tuple[np.ndarray, tuple[str, ...]]:
    """Small-integer codes for repeated strings, and the code table."""
    table: dict[str, int] = {}
    codes = np.fromiter((table.setdefault(v, len(table)) for v in values), np.int32, len(values))
    return codes, tuple(table)


def _join_annotations(image_id: np.ndarray, annotations: list, path: Path) -> np.ndarray:
    """For each image, the index of its one annotation (join on image_id, never by position)."""
    ann_image = np.fromiter((a[1] for a in annotations), np.int64, len(annotations))
    order = np.argsort(ann_image, kind="stable")
    ann_sorted = ann_image[order]
    dup = np.flatnonzero(ann_sorted[1:] == ann_sorted[:-1])
    if dup.size:
        raise DigitError(f"{path}: image_id {ann_sorted[dup[0]]} has more than one annotation")
    loc = np.searchsorted(ann_sorted, image_id)
    found = loc < len(ann_sorted)
    found[found] = ann_sorted[loc[found]] == image_id[found]
    if not found.all():
        missing = image_id[~found]
        raise DigitError(
            f"{path}: image id {missing[0]} has no annotation ({missing.size} image(s) without one)"
        )
    return order[loc]


def _camera_table(cam_json: Any, capture, name_code, names, image_id, path: Path):
    if type(cam_json) is not dict:
        raise DigitError(f"{path}: top level is {type(cam_json).__name__}, expected an object")
    first, camera_row = unique_rows(capture, name_code)
    c = len(first)
    campos, camrot = np.empty((c, 3)), np.empty((c, 3, 3))
    focal, princpt = np.empty((c, 2)), np.empty((c, 2))
    for row, i in enumerate(first):
        cap, name = int(capture[i]), names[name_code[i]]
        per_capture = cam_json.get(str(cap))
        if per_capture is None:
            raise DigitError(
                f"{path}: no camera {name!r} for capture {cap} (capture {cap} is absent; "
                f"needed by image id {image_id[i]})"
            )
        if type(per_capture) is not dict:
            raise DigitError(f"{path}: capture {str(cap)!r} is not an object")
        for key, out, shape in (
            ("campos", campos, (3,)),
            ("camrot", camrot, (3, 3)),
            ("focal", focal, (2,)),
            ("princpt", princpt, (2,)),
        ):
            if key not in per_capture:
                raise DigitError(f"{path}: capture {str(cap)!r}: missing key {key!r}")
            if type(per_capture[key]) is not dict or name not in per_capture[key]:
                raise DigitError(
                    f"{path}: no camera {name!r} for capture {cap} "
                    f"(needed by image id {image_id[i]})"
                )
            try:
                out[row] = numbers_array(per_capture[key][name], key, shape)
            except SchemaProblem as problem:
                raise DigitError(f"{path}: capture {cap}, camera {name!r}: {problem}") from None
    R = camrot
    t = -np.matmul(R, campos[:, :, None])[:, :, 0]
    names_per_row = tuple(names[name_code[i]] for i in first)
    table = CameraTable(
        capture=capture[first].astype(np.int32),
        name=names_per_row,
        K=intrinsics(focal, princpt),
        R=R,
        t=t,
    )
    return table, camera_row


def _lookup(nested: Any, capture: int, frame: int, path: Path) -> Any:
    """nested[str(capture)][str(frame_idx)] or None when absent."""
    per_capture = nested.get(str(capture))
    if per_capture is None:
        return None
    if type(per_capture) is not dict:
        raise DigitError(f"{path}: capture {str(capture)!r} is not an object")
    return per_capture.get(str(frame))


def _frame_table(joint_json, mano_json, capture, frame_idx, paths):
    if type(joint_json) is not dict:
        raise DigitError(f"{paths['joint_3d']}: top level is not an object")
    if mano_json is not None and type(mano_json) is not dict:
        raise DigitError(f"{paths['mano']}: top level is not an object")
    first, frame_row = unique_rows(capture, frame_idx)
    f = len(first)
    joints = np.full((f, NUM_JOINTS, 3), np.nan)
    valid3d = np.zeros((f, NUM_JOINTS), dtype=bool)
    has_joints = np.zeros(f, dtype=bool)
    has_mano = np.zeros((f, 2), dtype=bool)
    pose = np.full((f, 2, 48), np.nan)
    shape = np.full((f, 2, 10), np.nan)
    trans = np.full((f, 2, 3), np.nan)
    frames_missing_mano = null_hands = 0
    for row, i in enumerate(first):
        cap, frame = int(capture[i]), int(frame_idx[i])
        entry = _lookup(joint_json, cap, frame, paths["joint_3d"])
        if entry is not None:
            if type(entry) is not tuple:
                try:
                    entry = parse_joint_frame(entry)
                except SchemaProblem as problem:
                    raise DigitError(
                        f"{paths['joint_3d']}: capture {cap}, frame {frame}: {problem}"
                    ) from None
            joints[row], valid3d[row] = entry
            has_joints[row] = True
        if mano_json is None:
            continue
        fit = _lookup(mano_json, cap, frame, paths["mano"])
        if fit is None:
            frames_missing_mano += 1
            continue
        for hand, key in enumerate(("right", "left")):
            if type(fit) is not dict or key not in fit:
                raise DigitError(
                    f"{paths['mano']}: capture {cap}, frame {frame}: missing key {key!r}"
                )
            value = fit[key]
            if value is None:
                null_hands += 1
                continue
            if type(value) is not tuple:
                try:
                    value = parse_mano_hand(value)
                except SchemaProblem as problem:
                    raise DigitError(
                        f"{paths['mano']}: capture {cap}, frame {frame}, {key}: {problem}"
                    ) from None
            pose[row, hand], shape[row, hand], trans[row, hand] = value
            has_mano[row, hand] = True
    # [1, 1, 1] is how the files mark an unannotated joint: never trust it as a position.
    placeholder = (joints == 1.0).all(axis=-1)
    joints[placeholder] = np.nan
    valid3d &= np.isfinite(joints).all(axis=-1)
    table = FrameTable(
        capture=capture[first].astype(np.int32),
        frame_idx=frame_idx[first].astype(np.int64),
        has_joints=has_joints,
        joints_world=joints,
        joint_valid_3d=valid3d,
        has_mano=has_mano,
        mano_pose=pose,
        mano_shape=shape,
        mano_trans=trans,
    )
    counts = {
        "placeholder_joints": int(placeholder.sum()),
        "frames_missing_mano": None if mano_json is None else frames_missing_mano,
        "null_mano_hands": None if mano_json is None else null_hands,
    }
    return table, frame_row, counts


def _rootnet_columns(rootnet: Any, annot_id: np.ndarray, path: Path):
    if type(rootnet) is not list:
        raise DigitError(f"{path}: top level is {type(rootnet).__name__}, expected a list")
    finish_entries(rootnet, parse_rootnet, path, "entry")
    ids = np.fromiter((e[0] for e in rootnet), np.int64, len(rootnet))
    order = np.argsort(ids, kind="stable")
    ids_sorted = ids[order]
    dup = np.flatnonzero(ids_sorted[1:] == ids_sorted[:-1])
    if dup.size:
        raise DigitError(f"{path}: annot_id {ids_sorted[dup[0]]} appears more than once")
    n = len(annot_id)
    loc = np.searchsorted(ids_sorted, annot_id)
    found = loc < len(ids_sorted)
    found[found] = ids_sorted[loc[found]] == annot_id[found]
    depth = np.full((n, 2), np.nan)
    root_valid = np.zeros((n, 2), dtype=bool)
    bbox = np.full((n, 4), np.nan)
    for i in np.flatnonzero(found):
        _, depth[i], root_valid[i], bbox[i] = rootnet[order[loc[i]]]
    unused = len(rootnet) - int(found.sum())
    return {
        "has_rootnet": found,
        "rootnet_abs_depth": depth,
        "rootnet_root_valid": root_valid,
        "rootnet_bbox": bbox,
    }, unused


def build_tables(
    data: Any,
    cam_json: Any,
    joint_json: Any,
    mano_json: Any | None,
    rootnet: Any | None,
    paths: dict[str, Path],
) -> tuple[SplitColumns, CameraTable, FrameTable, IndexReport]:
    """Join the parsed files (hooks from interhand_schema applied) into columnar tables.

    paths: file paths by role ("data", "camera", "joint_3d", "mano", "rootnet") for messages.
    """
    data_path = paths["data"]
    images = checked_list(data, "images", data_path)
    annotations = checked_list(data, "annotations", data_path)
    finish_entries(images, parse_image, data_path, "images")
    finish_entries(annotations, parse_annotation, data_path, "annotations")
    n = len(images)
    columns = tuple(zip(*images, strict=True)) if n else ((),) * 9
    ids, file_names, heights, widths, captures, subjects, seqs, cams, frames = columns
    image_id = np.array(ids, dtype=np.int64)
    if n:
        sorted_ids = np.sort(image_id)
        dup = np.flatnonzero(sorted_ids[1:] == sorted_ids[:-1])
        if dup.size:
            raise DigitError(f"{data_path}: image id {sorted_ids[dup[0]]} appears twice")
    ann_index = _join_annotations(image_id, annotations, data_path)
    chosen = [annotations[j] for j in ann_index]
    n_annotations = len(annotations)
    capture = np.array(captures, dtype=np.int64)
    frame_idx = np.array(frames, dtype=np.int64)
    cam_code, cam_names = _codes(cams)
    seq_code, seq_names = _codes(seqs)

    camera_table, camera_row = _camera_table(
        cam_json, capture, cam_code, cam_names, image_id, paths["camera"]
    )
    frame_table, frame_row, counts = _frame_table(joint_json, mano_json, capture, frame_idx, paths)

    data_valid = np.frombuffer(b"".join(a[3] for a in chosen), dtype=bool).reshape(n, NUM_JOINTS)
    trusted = np.isfinite(frame_table.joints_world).all(axis=-1)[frame_row]
    joint_valid = with_root_validity(data_valid & trusted)
    bbox = np.frombuffer(b"".join(a[2] for a in chosen), dtype=np.float64).reshape(n, 4)
    rootnet_cols: dict[str, np.ndarray] = {}
    rootnet_unused = None
    if rootnet is not None:
        rootnet_cols, rootnet_unused = _rootnet_columns(
            rootnet, np.array([a[0] for a in chosen], dtype=np.int64), paths["rootnet"]
        )
    split_columns = SplitColumns(
        position=np.arange(n, dtype=np.int64),
        image_id=image_id,
        annot_id=np.fromiter((a[0] for a in chosen), np.int64, n),
        hw=np.stack(
            [np.array(heights, dtype=np.int32), np.array(widths, dtype=np.int32)], axis=-1
        ).reshape(n, 2),
        capture=capture.astype(np.int32),
        subject=np.array(subjects, dtype=np.int32),
        frame_idx=frame_idx,
        seq_code=seq_code,
        camera_row=camera_row,
        frame_row=frame_row,
        joint_valid=joint_valid,
        hand_type_code=np.fromiter((a[4] for a in chosen), np.int8, n),
        hand_type_valid=np.fromiter((a[5] for a in chosen), bool, n),
        bbox=bbox,
        file_name=np.array([f.encode("utf-8") for f in file_names], dtype=np.bytes_).reshape(n),
        seq_names=seq_names,
        **rootnet_cols,
    )
    missing_rows = ~frame_table.has_joints
    report = IndexReport(
        n_images=n,
        n_cameras=len(camera_table),
        n_frames=len(frame_table),
        frames_missing_joints=int(missing_rows.sum()),
        images_missing_joints=int(missing_rows[frame_row].sum()),
        placeholder_joints=counts["placeholder_joints"],
        untrusted_valid_joints=int((data_valid & ~trusted).sum()),
        orphan_annotations=n_annotations - n,
        frames_missing_mano=counts["frames_missing_mano"],
        null_mano_hands=counts["null_mano_hands"],
        images_missing_rootnet=None
        if rootnet is None
        else int((~rootnet_cols["has_rootnet"]).sum()),
        rootnet_unused=rootnet_unused,
    )
    return split_columns, camera_table, frame_table, report
