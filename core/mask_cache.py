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
- mask_crc32: uint32 (N,) CRC-32 (``zlib.crc32``) of the C-order bytes of ``masks[i, :h_i, :w_i]``:
  the decompressed mask, so it does not depend on the zlib build that compressed it.
- visible_px: int32 (N, 2) pixels of the right (classes 1..16) and left (17..32) hand in the
  mask; 0 for a rendered hand (``hands`` True) that projects nowhere in the image or is hidden.

Attributes (JSON text where structured): ``format_version`` int; ``split`` str; ``classes``
(the class table JSON of ``core.parts``); ``part_labels`` {"source": "skinning"} or
{"source": "digit_json", "path", "sha256"}; ``mano`` {"MANO_RIGHT.pkl": sha256,
"MANO_LEFT.pkl": sha256, "synthetic": bool}; ``mano_dir``, ``data_root`` (absolute paths);
``annotations`` {"data_json_sha256", "camera_json_sha256", "joint_3d_json_sha256",
"mano_json_sha256"}; ``renderer`` {"backend", "rasterizer_convention", "near_mm",
"compression", "compression_opts", "chunks", "geometry"}; ``integrity`` {"checksum":
{"dataset": "mask_crc32", "algorithm"}, "visibility": {"dataset": "visible_px"}}; ``created``
(ISO 8601 UTC); ``complete`` bool. Files that are not the whole split (a ``--shard`` or a
``--limit`` build) also carry ``selection`` {"total", "limit", "shard": [k, n] | null,
"start", "stop"}: rows [start, stop) of the first ``limit`` (else all ``total``) data.json
images.

Compression: deflate (gzip) level 1, measured here (one process, (1, 512, 512) chunks, real
two-hand masks): about 7,000 random ``ds[i]`` reads/s and 4.4 KB per image, against lzf's
2,400 reads/s and 6.9 KB and gzip-4's 2,100 reads/s and 2.8 KB; writing is as fast as lzf.

Integrity (format 2): ``MaskCache`` checks a mask's crc32 on every read (a few % of a read) and
turns a damaged chunk (inflate error, wrong size, crc mismatch) into one DigitError line naming
the file and the image. HDF5's fletcher32 chunk filter is not used: measured on the same
(1, 512, 512) chunks it changed h5py ``ds[i]`` reads by less than the noise (3,100-3,200 vs
3,300-3,900 reads/s), but it adds nothing the crc32 and zlib's own adler32 do not catch, and the
direct-chunk read path would have to strip and check it itself.

Readers pair a cache with the split they use it with through `match_split`: the data.json
sha256, the image ids and the file names must agree, else one line names both files.
A file of another ``format_version`` is refused with the command that rebuilds it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import h5py
import numpy as np
from isal import isal_zlib

from core.errors import DigitError
from core.files import file_sha256
from core.paths import build_masks_command, mask_cache_path

if TYPE_CHECKING:
    from core.interhand.reader import InterHandSplit

FORMAT_VERSION = 2
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
    "mask_crc32": (np.dtype(np.uint32), ()),
    "visible_px": (np.dtype(np.int32), (2,)),
}
CHECKSUM = "mask_crc32"
INTEGRITY = {
    "checksum": {
        "dataset": CHECKSUM,
        "algorithm": "crc32 (zlib.crc32) of the C-order bytes of masks[i, :h_i, :w_i]",
    },
    "visibility": {"dataset": "visible_px"},
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
    "integrity",
    "created",
    "complete",
)
SELECTION = "selection"
JSON_ATTRIBUTES = (
    "classes",
    "part_labels",
    "mano",
    "annotations",
    "renderer",
    "integrity",
    SELECTION,
)


def mask_crc32(mask: np.ndarray) -> int:
    """The per-image checksum: crc32 (zlib's) of a (h, w) uint8 mask's C-order bytes, computed
    by ISA-L (the same value, about 3x faster)."""
    return isal_zlib.crc32(np.ascontiguousarray(mask, dtype=np.uint8).data) & 0xFFFFFFFF


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
    integrity: dict
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
            "integrity": self.integrity,
        }

    def rebuild_command(self, path: Path) -> str:
        """The build-masks line that writes this file again (its split, root and selection)."""
        cmd = build_masks_command(Path(self.data_root), self.split, Path(path))
        sel = self.selection or {}
        if sel.get("limit") is not None:
            cmd += f" --limit {sel['limit']}"
        if sel.get("shard") is not None:
            cmd += f" --shard {sel['shard'][0]}/{sel['shard'][1]}"
        return cmd + " --overwrite"


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


def finished_cache_kind(path: Path) -> str | None:
    """What a finished cache file holds, in words: "a complete mask cache", "shard k/n of a
    mask cache (rows a..b)" or "a mask cache of the first N images"; None when `path` is not
    a finished cache (missing, not HDF5, or `complete` not True)."""
    try:
        with h5py.File(path, "r") as f:
            if not bool(f.attrs.get("complete", False)):
                return None
            raw = f.attrs.get(SELECTION)
    except OSError:
        return None
    try:
        sel = json.loads(raw) if raw else None
    except (TypeError, json.JSONDecodeError):
        sel = None
    if not isinstance(sel, dict):
        return "a complete mask cache"
    if sel.get("shard") is not None:
        k, n = sel["shard"]
        return f"shard {k}/{n} of a mask cache (rows {sel.get('start')}..{sel.get('stop')})"
    if sel.get("limit") is not None:
        return f"a mask cache of the first {sel['limit']} images"
    return "a complete mask cache"


def _check_version(f: h5py.File, path: Path) -> None:
    """DigitError with the rebuild command when `f` is a cache of another format_version."""
    raw = f.attrs.get("format_version")
    version = raw.item() if isinstance(raw, np.generic) else raw
    if version is None or version == FORMAT_VERSION:
        return  # a missing attribute is reported by CacheAttributes.read
    text = {k: f.attrs.get(k) for k in ("split", "data_root", "selection")}
    text = {k: v.decode() if isinstance(v, bytes) else v for k, v in text.items()}
    hint = "rebuild it with digit-render build-masks --overwrite"
    if isinstance(text["split"], str) and isinstance(text["data_root"], str):
        try:
            sel = json.loads(text["selection"]) if text["selection"] else None
        except (TypeError, json.JSONDecodeError):
            sel = None
        stub = dict.fromkeys((x.name for x in fields(CacheAttributes)), None)
        stub.update(split=text["split"], data_root=text["data_root"], selection=sel)
        hint = f"rebuild it with `{CacheAttributes(**stub).rebuild_command(path)}`"
    raise DigitError(
        f"{path}: mask cache format {version}, this program reads format {FORMAT_VERSION}; {hint}"
    )


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
        _check_version(f, path)
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
    """Read access to a complete cache, fast per-image reads, each checked against its crc32.

    ``with MaskCache(path) as cache: m = cache.mask(i)`` gives image i's (h_i, w_i) uint8 class
    ids. ``cache.file`` is the open h5py.File, ``cache.attrs`` the parsed `CacheAttributes`,
    ``cache.image_hw`` (N, 2) int32, ``cache.image_id`` (N,) int64 and ``cache.crc32`` (N,)
    uint32 are loaded once. A damaged image is one DigitError naming the file and the image.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.file, self.attrs = open_cache(self.path)
        self._masks = self.file[MASKS]
        self.image_hw: np.ndarray = self.file["image_hw"][:]
        self.image_id: np.ndarray = self.file["image_id"][:]
        self.crc32: np.ndarray = self.file[CHECKSUM][:]
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

    def damaged(self, i: int, why: str) -> DigitError:
        """The one-line error for a damaged image i (names the file, the row and the image)."""
        try:
            name = self.file["file_name"].asstr()[i]
        except Exception:  # the names themselves may be what is damaged
            name = "?"
        return DigitError(
            f"{self.path}: image {i} ({name}, id {int(self.image_id[i])}) is damaged ({why}); "
            f"rebuild the cache with `{self.attrs.rebuild_command(self.path)}`"
        )

    def canvas(self, i: int, check: bool = True) -> np.ndarray:
        """Image i's full (Hmax, Wmax) uint8 row of the masks dataset; `check`: compare the
        crc32 of its [:h, :w] part with the stored one (DigitError if they differ)."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"image {i} out of range for a cache of {len(self)}")
        i = i % len(self)
        row = self._read(i)
        if check:
            h, w = (int(x) for x in self.image_hw[i])
            crc = mask_crc32(row[:h, :w])
            if crc != int(self.crc32[i]):
                raise self.damaged(i, f"crc32 {crc:08x}, stored {int(self.crc32[i]):08x}")
        return row

    def _read(self, i: int) -> np.ndarray:
        hmax, wmax = self.canvas_hw
        try:
            if self._deflate:  # one chunk per image: inflate it directly (skips h5py's selection)
                filter_mask, raw = self._masks.id.read_direct_chunk((i, 0, 0))
                if filter_mask == 0:
                    flat = isal_zlib.decompress(raw)
                    if len(flat) != hmax * wmax:
                        raise self.damaged(i, f"chunk inflates to {len(flat)} bytes")
                    return np.frombuffer(bytearray(flat), dtype=np.uint8).reshape(hmax, wmax)
            return self._masks[i]
        except isal_zlib.error as exc:
            raise self.damaged(i, f"inflate: {exc}") from None
        except OSError as exc:  # h5py's own read of a chunk it cannot decode
            raise self.damaged(i, str(exc).splitlines()[0] if str(exc) else "unreadable") from None

    def mask(self, i: int) -> np.ndarray:
        """Image i's class ids (h_i, w_i) uint8 (a view of the canvas row), crc32-checked."""
        h, w = (int(x) for x in self.image_hw[i])
        return self.canvas(i)[:h, :w]


def match_split(
    cache: MaskCache, data: InterHandSplit, data_root: Path | None = None
) -> np.ndarray:
    """Pair `cache` with the split `data` it is used with: returns the cache row of each row of
    `data` (N_data,) int64, -1 where the cache lacks the image.

    The cache must be of the same split, built from the same data.json (sha256) and name the
    same file for every image id they share; else one DigitError line naming both files and
    how to get the right masks. `data_root` (default: three folders above data.json) only
    shapes that advice.
    """
    data_json = Path(data.files.data)
    root = Path(data_root) if data_root is not None else data_json.parents[2]
    split = data.split if isinstance(getattr(data, "split", None), str) else cache.attrs.split

    def refuse(problem: str) -> DigitError:
        default = mask_cache_path(None, root, split)
        if cache.path.resolve() == default.resolve():  # this data's own cache, outdated
            advice = f"rebuild it with `{build_masks_command(root, split, default)} --overwrite`"
        else:  # never advise overwriting a cache that may belong to other data
            advice = (
                f"use masks built from {data_json} (`{build_masks_command(root, split, default)}`"
                " writes them)"
            )
        return DigitError(f"{cache.path}: {problem} {data_json}; {advice}")

    if cache.attrs.split != split:
        raise refuse(f"mask cache of split {cache.attrs.split!r}, not of split {split!r} of")
    recorded = cache.attrs.annotations.get("data_json_sha256")
    if recorded != file_sha256(data_json):
        raise refuse("built from another data.json (sha256 differs) than")
    rows = data.find(cache.image_id)
    found = rows >= 0
    cache_rows = np.full(len(data), -1, dtype=np.int64)
    cache_rows[rows[found]] = np.flatnonzero(found)
    have = np.flatnonzero(cache_rows >= 0)
    if len(have):
        stored = np.asarray(cache.file["file_name"].asstr()[...], dtype=str)[cache_rows[have]]
        wanted = np.char.decode(data.columns.file_name[have], "utf-8")
        bad = np.flatnonzero(stored != wanted)
        if len(bad):
            k = int(bad[0])
            raise refuse(
                f"image id {int(cache.image_id[cache_rows[have[k]]])} is {stored[k]!r} in the "
                f"cache but {wanted[k]!r} in ({len(bad)} file names differ)"
            )
    return cache_rows
