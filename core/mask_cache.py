"""The mask cache file: datasets, attributes, reading helpers (design.md, "Mask cache contract").

One HDF5 file per split, ``masks_{split}.h5``, N images in data.json order:

- masks: uint8 (N, Hmax, Wmax), chunks (1, Hmax, Wmax), deflate level 1; class id per pixel,
  image i in ``[:h_i, :w_i]``, 0 elsewhere.
- image_id: int64 (N,) data.json image id. file_name: utf-8 string (N,), relative to
  ``images/{split}/``. image_hw: int32 (N, 2) (height, width).
- hands: bool (N, 2) (right, left) rendered, i.e. the hand has a MANO fit.
- valid: bool (N,) usable as segmentation ground truth (DIGIT's rule).
- fit_error_mm: float32 (N, 2) mean distance of the 21 regressed vs the annotated joints valid
  in joint_3d (camera frame, no root alignment); NaN without a fit or a valid joint.
- lr_iou: float32 (N,) IoU of the right and left silhouettes, each rendered alone; NaN unless
  both hands are rendered.

Attributes (JSON text where structured): ``format_version`` int; ``split`` str; ``classes``
(the class table JSON of ``core.parts``); ``part_labels`` {"source": "skinning"} or
{"source": "digit_json", "path", "sha256"}; ``mano`` {"MANO_RIGHT.pkl": sha256,
"MANO_LEFT.pkl": sha256, "synthetic": bool}; ``mano_dir``, ``data_root`` (absolute paths);
``annotations`` {"data_json_sha256", "camera_json_sha256", "joint_3d_json_sha256",
"mano_json_sha256"}; ``renderer`` {"backend", "rasterizer_convention", "near_mm",
"compression", "compression_opts", "chunks", "geometry"}; ``created`` (ISO 8601 UTC);
``complete`` bool. Files that are not the whole split (a ``--shard`` or a ``--limit`` build)
also carry ``selection`` {"total", "limit", "shard": [k, n] | null, "start", "stop"}: rows
[start, stop) of the first ``limit`` (else all ``total``) data.json images.

Compression: deflate (gzip) level 1, measured here (one process, (1, 512, 512) chunks, real
two-hand masks): about 7,000 random ``ds[i]`` reads/s and 4.4 KB per image, against lzf's
2,400 reads/s and 6.9 KB and gzip-4's 2,100 reads/s and 2.8 KB; writing is as fast as lzf.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from core.errors import DigitError

FORMAT_VERSION = 1
COMPRESSION = "gzip"
COMPRESSION_OPTS = 1
MASKS = "masks"
PER_IMAGE: dict[str, tuple[np.dtype | Any, tuple[int, ...]]] = {
    "image_id": (np.dtype(np.int64), ()),
    "file_name": (h5py.string_dtype("utf-8"), ()),
    "image_hw": (np.dtype(np.int32), (2,)),
    "hands": (np.dtype(np.bool_), (2,)),
    "valid": (np.dtype(np.bool_), ()),
    "fit_error_mm": (np.dtype(np.float32), (2,)),
    "lr_iou": (np.dtype(np.float32), ()),
}
DATASETS: tuple[str, ...] = (MASKS, *PER_IMAGE)
ATTRIBUTES: tuple[str, ...] = (
    "format_version",
    "split",
    "classes",
    "part_labels",
    "mano",
    "mano_dir",
    "data_root",
    "annotations",
    "renderer",
    "created",
    "complete",
)
SELECTION = "selection"
JSON_ATTRIBUTES = ("classes", "part_labels", "mano", "annotations", "renderer", SELECTION)


# --------------------------------------------------------------------------- attributes
@dataclass(frozen=True)
class CacheAttributes:
    """The file attributes; dict-valued ones are stored as JSON text (see the module doc)."""

    format_version: int
    split: str
    classes: list
    part_labels: dict
    mano: dict
    mano_dir: str
    data_root: str
    annotations: dict
    renderer: dict
    created: str
    complete: bool
    selection: dict | None = None

    def write(self, f: h5py.File) -> None:
        """Set every attribute on an open file (``selection`` only when not None)."""
        for field in fields(self):
            value = getattr(self, field.name)
            if value is None:
                f.attrs.pop(field.name, None)
            elif field.name in JSON_ATTRIBUTES:
                f.attrs[field.name] = json.dumps(value, sort_keys=True)
            else:
                f.attrs[field.name] = value

    @classmethod
    def read(cls, f: h5py.File, where: str) -> CacheAttributes:
        """Parse the attributes of an open cache; DigitError naming `where` if any is bad."""
        values: dict[str, Any] = {}
        for field in fields(cls):
            if field.name not in f.attrs:
                if field.name == SELECTION:
                    values[field.name] = None
                    continue
                raise DigitError(f"{where}: not a mask cache (attribute {field.name!r} missing)")
            raw = f.attrs[field.name]
            if isinstance(raw, bytes):
                raw = raw.decode("utf-8")
            if field.name in JSON_ATTRIBUTES:
                try:
                    raw = json.loads(raw)
                except (TypeError, json.JSONDecodeError):
                    raise DigitError(f"{where}: attribute {field.name!r} is not JSON") from None
            elif isinstance(raw, np.generic):
                raw = raw.item()
            values[field.name] = raw
        return cls(**values)

    def content_key(self) -> dict:
        """What decides the datasets' contents (not where or when the file was made)."""
        return {
            "format_version": self.format_version,
            "split": self.split,
            "classes": self.classes,
            "part_labels": self.part_labels,
            "mano": self.mano,
            "annotations": self.annotations,
            "renderer": self.renderer,
        }


# --------------------------------------------------------------------------- datasets
def create_datasets(f: h5py.File, n: int, canvas_hw: tuple[int, int]) -> None:
    """Create every dataset of the layout for N images on a (Hmax, Wmax) canvas (N >= 1)."""
    hmax, wmax = (int(x) for x in canvas_hw)
    f.create_dataset(
        MASKS,
        shape=(n, hmax, wmax),
        dtype=np.uint8,
        chunks=(1, hmax, wmax),
        compression=COMPRESSION,
        compression_opts=COMPRESSION_OPTS,
        fillvalue=0,
        track_times=False,
    )
    for name, (dtype, tail) in PER_IMAGE.items():
        f.create_dataset(name, shape=(n, *tail), dtype=dtype, track_times=False)


def is_complete_cache(path: Path) -> bool:
    """True when `path` is an HDF5 file whose ``complete`` attribute is True."""
    try:
        with h5py.File(path, "r") as f:
            return bool(f.attrs.get("complete", False))
    except OSError:
        return False


def open_cache(path: str | Path) -> tuple[h5py.File, CacheAttributes]:
    """Open a complete cache read-only: (file, attributes). DigitError if missing, not HDF5,
    not a cache, lacking a dataset, or not complete. The caller closes the file."""
    path = Path(path)
    if not path.is_file():
        raise DigitError(f"{path}: mask cache not found")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise DigitError(f"{path}: not an HDF5 file ({exc})") from None
    try:
        attrs = CacheAttributes.read(f, str(path))
        missing = [d for d in DATASETS if d not in f]
        if missing:
            raise DigitError(f"{path}: not a mask cache (datasets missing: {', '.join(missing)})")
        if not attrs.complete:
            raise DigitError(f"{path}: incomplete mask cache (attribute complete is False)")
    except BaseException:
        f.close()
        raise
    return f, attrs


class MaskCache:
    """Read access to a complete cache, fast per-image reads.

    ``with MaskCache(path) as cache: m = cache.mask(i)`` gives image i's (h_i, w_i) uint8 class
    ids. ``cache.file`` is the open h5py.File, ``cache.attrs`` the parsed `CacheAttributes`,
    ``cache.image_hw`` (N, 2) int32 and ``cache.image_id`` (N,) int64 are loaded once.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.file, self.attrs = open_cache(self.path)
        self._masks = self.file[MASKS]
        self.image_hw: np.ndarray = self.file["image_hw"][:]
        self.image_id: np.ndarray = self.file["image_id"][:]
        self.canvas_hw: tuple[int, int] = tuple(int(x) for x in self._masks.shape[1:])  # type: ignore[assignment]
        self._deflate = (
            self._masks.compression == "gzip"
            and self._masks.chunks == (1, *self.canvas_hw)
            and not self._masks.shuffle
            and not self._masks.fletcher32
        )

    def __len__(self) -> int:
        return len(self.image_id)

    def __enter__(self) -> MaskCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.file.close()

    def canvas(self, i: int) -> np.ndarray:
        """Image i's full (Hmax, Wmax) uint8 row of the masks dataset."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"image {i} out of range for a cache of {len(self)}")
        i = i % len(self)
        if self._deflate:  # one chunk per image: inflate it directly (skips h5py's selection code)
            filter_mask, raw = self._masks.id.read_direct_chunk((i, 0, 0))
            if filter_mask == 0:
                flat = np.frombuffer(bytearray(zlib.decompress(raw)), dtype=np.uint8)
                return flat.reshape(self.canvas_hw)
        return self._masks[i]

    def mask(self, i: int) -> np.ndarray:
        """Image i's class ids (h_i, w_i) uint8 (a view of the canvas row)."""
        h, w = (int(x) for x in self.image_hw[i])
        return self.canvas(i)[:h, :w]
