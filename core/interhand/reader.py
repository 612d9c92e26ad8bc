"""Index of one InterHand2.6M split (or of explicit annotation files), columnar and lazy.

Facts matched: /shared/reference/interhand26m.md. data.json images are joined to their
annotation by `image_id`, to cameras by (capture, camera) and to joint_3d / MANO entries by
(str(capture), str(frame_idx)); file names are taken from data.json as they are. Images keep
data.json order. Per-image fields are numpy columns (`SplitColumns`), cameras and time frames
live once in row-indexed tables (`CameraTable`, `FrameTable`); `split[i]` builds one
`ImageRecord` on demand and `split.gather(indices)` an `ImageBatch` of per-image arrays.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from core.boxes import crop_box_from_bbox
from core.camera import Camera, project, world_to_camera
from core.errors import DigitError
from core.interhand.schema import data_hook, joint_hook, mano_hook, read_json, rootnet_hook
from core.interhand.tables import (
    CameraTable,
    FrameTable,
    IndexReport,
    SplitColumns,
    build_tables,
)
from core.joints import HAND_TYPES, hand_type_pair
from core.splits import check_split, shard_bounds

# ---- records ---------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ManoFit:
    """One hand's NeuralAnnot MANO fit: pose (48,) axis-angle (global orientation in the world
    frame, then 15 joints, minus the MANO mean pose), shape (10,) betas, trans (3,) metres."""

    pose: np.ndarray
    shape: np.ndarray
    trans: np.ndarray


@dataclass(frozen=True, eq=False)
class RootNetEntry:
    """RootNet output for one annotation: abs_depth (2,) mm (right, left root), root_valid (2,)
    bool, bbox (4,) [x, y, w, h] (already square)."""

    abs_depth: np.ndarray
    root_valid: np.ndarray
    bbox: np.ndarray


@dataclass(frozen=True, eq=False)
class ImageRecord:
    """Everything known about one image (arrays are float64 unless said; fresh copies).

    position: index in the full data.json image list; hw: (height, width);
    camera_name: data.json's camera (e.g. "400026"); camera: its K, R, t;
    joints_world (42, 3) mm, NaN where unknown; joints_cam (42, 3) mm; joints_img (42, 2) px;
    joint_valid (42,) bool: data.json's flag x own-root validity (20 right, 41 left), never
    True for an unknown 3D joint; joint_valid_3d (42,) bool: joint_3d.json's flag;
    hand_type: "right" | "left" | "interacting"; hand_type_pair (2,) int64 (right, left) bits;
    bbox (4,) [x, y, w, h] as annotated; crop_box (4,) the square processed crop;
    mano: (right, left) fits, None where absent; rootnet: None unless a RootNet file was given
    and holds this annot_id.
    """

    position: int
    image_id: int
    annot_id: int
    file_name: str
    image_path: Path
    hw: tuple[int, int]
    capture: int
    subject: int
    seq_name: str
    camera_name: str
    frame_idx: int
    camera: Camera
    joints_world: np.ndarray
    joints_cam: np.ndarray
    joints_img: np.ndarray
    joint_valid: np.ndarray
    joint_valid_3d: np.ndarray
    hand_type: str
    hand_type_pair: np.ndarray
    hand_type_valid: bool
    bbox: np.ndarray
    crop_box: np.ndarray
    mano: tuple[ManoFit | None, ManoFit | None]
    rootnet: RootNetEntry | None


@dataclass(frozen=True, eq=False)
class ImageBatch:
    """Per-image arrays for B selected images (fresh copies, float64 unless said).

    index (B,) int64 rows of this split; position (B,) int64 rows of data.json;
    image_id, annot_id (B,) int64; file_name: B strings; hw (B, 2) int32 (height, width);
    capture (B,) int32; frame_idx (B,) int64; K (B, 3, 3); R (B, 3, 3); t (B, 3) mm;
    joints_world, joints_cam (B, 42, 3) mm (NaN where unknown); joints_img (B, 42, 2) px;
    joint_valid, joint_valid_3d (B, 42) bool; hand_type_code (B,) int8;
    hand_type_pair (B, 2) int64; hand_type_valid (B,) bool; bbox, crop_box (B, 4);
    has_mano (B, 2) bool; mano_pose (B, 2, 48), mano_shape (B, 2, 10), mano_trans (B, 2, 3)
    metres (NaN without a fit); has_rootnet (B,) bool, rootnet_abs_depth (B, 2) mm,
    rootnet_root_valid (B, 2) bool, rootnet_bbox (B, 4): all None without a RootNet file.
    """

    index: np.ndarray
    position: np.ndarray
    image_id: np.ndarray
    annot_id: np.ndarray
    file_name: tuple[str, ...]
    hw: np.ndarray
    capture: np.ndarray
    frame_idx: np.ndarray
    K: np.ndarray
    R: np.ndarray
    t: np.ndarray
    joints_world: np.ndarray
    joints_cam: np.ndarray
    joints_img: np.ndarray
    joint_valid: np.ndarray
    joint_valid_3d: np.ndarray
    hand_type_code: np.ndarray
    hand_type_pair: np.ndarray
    hand_type_valid: np.ndarray
    bbox: np.ndarray
    crop_box: np.ndarray
    has_mano: np.ndarray
    mano_pose: np.ndarray
    mano_shape: np.ndarray
    mano_trans: np.ndarray
    has_rootnet: np.ndarray | None
    rootnet_abs_depth: np.ndarray | None
    rootnet_root_valid: np.ndarray | None
    rootnet_bbox: np.ndarray | None

    def __len__(self) -> int:
        return len(self.index)


# ---- the split -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AnnotationFiles:
    """The files a split is read from; mano and rootnet are optional (None)."""

    data: Path
    camera: Path
    joint_3d: Path
    image_dir: Path
    mano: Path | None = None
    rootnet: Path | None = None


def annotation_files(root: Path, split: str, rootnet_json: Path | None = None) -> AnnotationFiles:
    """The v1.0 layout under `root` (MANO file used only if present)."""
    check_split(split)
    root = Path(root)
    folder = root / "annotations" / split
    mano = folder / f"InterHand2.6M_{split}_MANO_NeuralAnnot.json"
    return AnnotationFiles(
        data=folder / f"InterHand2.6M_{split}_data.json",
        camera=folder / f"InterHand2.6M_{split}_camera.json",
        joint_3d=folder / f"InterHand2.6M_{split}_joint_3d.json",
        image_dir=root / "images" / split,
        mano=mano if mano.is_file() else None,
        rootnet=None if rootnet_json is None else Path(rootnet_json),
    )


class InterHandSplit:
    """The images of one split in data.json order; `split[i]` -> ImageRecord, built lazily.

    Memory: see `SplitColumns` / `FrameTable` (about 136 bytes + file name per image, 2 KB per
    distinct time frame). Subsets and shards share the camera and frame tables.
    Attributes: columns (SplitColumns), cameras (CameraTable), frames (FrameTable),
    report (IndexReport of the whole indexing), files (AnnotationFiles), split (name or None).
    """

    def __init__(
        self,
        columns: SplitColumns,
        cameras: CameraTable,
        frames: FrameTable,
        report: IndexReport,
        files: AnnotationFiles,
        split: str | None = None,
    ) -> None:
        self.columns = columns
        self.cameras = cameras
        self.frames = frames
        self.report = report
        self.files = files
        self.split = split

    # -- construction --

    @classmethod
    def from_root(
        cls, root: Path, split: str, rootnet_json: Path | None = None
    ) -> "InterHandSplit":
        """Index `root/annotations/{split}/InterHand2.6M_{split}_*.json`, images under
        `root/images/{split}/`; split in SPLITS. The MANO file is used when it exists."""
        files = annotation_files(root, split, rootnet_json)
        return cls._load(files, split)

    @classmethod
    def from_files(
        cls,
        data_json: Path,
        camera_json: Path,
        joint_3d_json: Path,
        image_dir: Path,
        mano_json: Path | None = None,
        rootnet_json: Path | None = None,
        *,
        split: str | None = None,
    ) -> "InterHandSplit":
        """Index explicit files (e.g. the real samples). No MANO file -> every fit is None."""
        files = AnnotationFiles(
            data=Path(data_json),
            camera=Path(camera_json),
            joint_3d=Path(joint_3d_json),
            image_dir=Path(image_dir),
            mano=None if mano_json is None else Path(mano_json),
            rootnet=None if rootnet_json is None else Path(rootnet_json),
        )
        return cls._load(files, split)

    @classmethod
    def _load(cls, files: AnnotationFiles, split: str | None) -> "InterHandSplit":
        named = [files.data, files.camera, files.joint_3d, files.mano, files.rootnet]
        for path in named:  # fail fast, before parsing gigabytes
            if path is not None and not path.is_file():
                raise DigitError(f"{path}: file not found")
        data = read_json(files.data, data_hook)
        cam_json = read_json(files.camera)
        joint_json = read_json(files.joint_3d, joint_hook)
        mano_json = None if files.mano is None else read_json(files.mano, mano_hook)
        rootnet = None if files.rootnet is None else read_json(files.rootnet, rootnet_hook)
        paths = {
            "data": files.data,
            "camera": files.camera,
            "joint_3d": files.joint_3d,
            "mano": files.mano,
            "rootnet": files.rootnet,
        }
        columns, cameras, frames, report = build_tables(
            data, cam_json, joint_json, mano_json, rootnet, paths
        )
        return cls(columns, cameras, frames, report, files, split)

    # -- size and selection --

    def __len__(self) -> int:
        return len(self.columns)

    def __repr__(self) -> str:
        return f"InterHandSplit(split={self.split!r}, images={len(self)}, data={self.files.data})"

    @property
    def image_dir(self) -> Path:
        """Folder that data.json file names are relative to."""
        return self.files.image_dir

    @property
    def nbytes(self) -> int:
        """Bytes held by the columns and tables (shared tables counted in full)."""
        tables = (self.cameras, self.frames)
        return self.columns.nbytes + sum(
            a.nbytes for t in tables for a in vars(t).values() if isinstance(a, np.ndarray)
        )

    def subset(self, indices: Sequence[int] | np.ndarray | slice) -> "InterHandSplit":
        """The images at `indices` (rows of this split, in the given order) as a split.

        A slice keeps views (no copy). Records keep their data.json `position`.
        """
        selection = indices if isinstance(indices, slice) else self._rows(indices)
        return InterHandSplit(
            self.columns.take(selection),
            self.cameras,
            self.frames,
            self.report,
            self.files,
            self.split,
        )

    def shard(self, k: int, n: int) -> "InterHandSplit":
        """Shard k of n (k from 0): the k-th of n contiguous blocks, see `shard_bounds`."""
        start, stop = shard_bounds(len(self), k, n)
        return self.subset(slice(start, stop))

    @cached_property
    def _id_order(self) -> tuple[np.ndarray, np.ndarray]:
        order = np.argsort(self.columns.image_id, kind="stable")
        return order, self.columns.image_id[order]

    def find(self, image_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Rows (M,) int64 of this split holding `image_ids` (M,), -1 where absent."""
        ids = np.asarray(image_ids, dtype=np.int64)
        order, sorted_ids = self._id_order
        if not len(sorted_ids):
            return np.full(ids.shape, -1, dtype=np.int64)
        loc = np.minimum(np.searchsorted(sorted_ids, ids), len(sorted_ids) - 1)
        return np.where(sorted_ids[loc] == ids, order[loc], -1).astype(np.int64)

    def _rows(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        rows = np.asarray(indices)
        if rows.dtype == bool or (rows.size and rows.dtype.kind not in "iu"):
            raise TypeError(f"indices must be integers, got {rows.dtype}")
        rows = rows.astype(np.int64).reshape(-1)
        n = len(self)
        if rows.size and (rows.min() < -n or rows.max() >= n):
            raise IndexError(f"index out of range for a split of {n} images")
        return np.where(rows < 0, rows + n, rows)

    # -- access --

    def file_name(self, i: int) -> str:
        """data.json file_name of row i (relative to `image_dir`)."""
        return self.columns.file_name[i].decode("utf-8")

    def image_path(self, i: int) -> Path:
        """Full image path of row i."""
        return self.image_dir / self.file_name(i)

    def gather(self, indices: Sequence[int] | np.ndarray | slice) -> ImageBatch:
        """Per-image arrays for the rows `indices` (vectorised; no records built)."""
        rows = np.arange(len(self))[indices] if isinstance(indices, slice) else self._rows(indices)
        c, cams, frames = self.columns, self.cameras, self.frames
        cam, frame = c.camera_row[rows], c.frame_row[rows]
        K, R, t = cams.K[cam], cams.R[cam], cams.t[cam]
        joints_world = frames.joints_world[frame]
        joints_cam = world_to_camera(joints_world, R[:, None], t[:, None])
        bbox = c.bbox[rows]
        rootnet = c.has_rootnet is not None
        return ImageBatch(
            index=rows,
            position=c.position[rows],
            image_id=c.image_id[rows],
            annot_id=c.annot_id[rows],
            file_name=tuple(name.decode("utf-8") for name in c.file_name[rows]),
            hw=c.hw[rows],
            capture=c.capture[rows],
            frame_idx=c.frame_idx[rows],
            K=K,
            R=R,
            t=t,
            joints_world=joints_world,
            joints_cam=joints_cam,
            joints_img=project(joints_cam, K[:, None]),
            joint_valid=c.joint_valid[rows],
            joint_valid_3d=frames.joint_valid_3d[frame],
            hand_type_code=c.hand_type_code[rows],
            hand_type_pair=hand_type_pair(c.hand_type_code[rows]),
            hand_type_valid=c.hand_type_valid[rows],
            bbox=bbox,
            crop_box=crop_box_from_bbox(bbox),
            has_mano=frames.has_mano[frame],
            mano_pose=frames.mano_pose[frame],
            mano_shape=frames.mano_shape[frame],
            mano_trans=frames.mano_trans[frame],
            has_rootnet=c.has_rootnet[rows] if rootnet else None,
            rootnet_abs_depth=c.rootnet_abs_depth[rows] if rootnet else None,
            rootnet_root_valid=c.rootnet_root_valid[rows] if rootnet else None,
            rootnet_bbox=c.rootnet_bbox[rows] if rootnet else None,
        )

    def __getitem__(self, i: int) -> ImageRecord:
        if not isinstance(i, (int, np.integer)):
            raise TypeError(f"split indices must be integers, not {type(i).__name__}")
        b = self.gather([int(i)])
        row = int(b.index[0])
        c = self.columns
        mano = tuple(
            ManoFit(b.mano_pose[0, h], b.mano_shape[0, h], b.mano_trans[0, h])
            if b.has_mano[0, h]
            else None
            for h in range(2)
        )
        rootnet = None
        if b.has_rootnet is not None and b.has_rootnet[0]:
            rootnet = RootNetEntry(
                b.rootnet_abs_depth[0], b.rootnet_root_valid[0], b.rootnet_bbox[0]
            )
        return ImageRecord(
            position=int(b.position[0]),
            image_id=int(b.image_id[0]),
            annot_id=int(b.annot_id[0]),
            file_name=b.file_name[0],
            image_path=self.image_dir / b.file_name[0],
            hw=(int(b.hw[0, 0]), int(b.hw[0, 1])),
            capture=int(b.capture[0]),
            subject=int(c.subject[row]),
            seq_name=c.seq_names[c.seq_code[row]],
            camera_name=self.cameras.name[c.camera_row[row]],
            frame_idx=int(b.frame_idx[0]),
            camera=Camera(K=b.K[0], R=b.R[0], t=b.t[0]),
            joints_world=b.joints_world[0],
            joints_cam=b.joints_cam[0],
            joints_img=b.joints_img[0],
            joint_valid=b.joint_valid[0],
            joint_valid_3d=b.joint_valid_3d[0],
            hand_type=HAND_TYPES[int(b.hand_type_code[0])],
            hand_type_pair=b.hand_type_pair[0],
            hand_type_valid=bool(b.hand_type_valid[0]),
            bbox=b.bbox[0],
            crop_box=b.crop_box[0],
            mano=mano,
            rootnet=rootnet,
        )

    def __iter__(self) -> Iterator[ImageRecord]:
        for i in range(len(self)):
            yield self[i]
