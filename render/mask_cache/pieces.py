"""Work in progress of a build: ``<out>.partial/`` with its settings and finished pieces.

A piece holds the cache rows of one block of images (the same datasets as the cache except
file_name), written under a temporary name and renamed when complete, so a kill at any moment
loses at most the pieces in flight. ``settings.json`` records what the build was started with;
a rerun with other settings is refused. A ``lock`` file (flock, released by the kernel when the
process dies) keeps two builds from sharing one folder.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import h5py
import numba
import numpy as np
from isal import isal_zlib

from core.errors import DigitError
from core.files import TMP_MARK, atomic_write_bytes, atomic_write_text
from core.mask_cache import COMPRESSION, COMPRESSION_OPTS, MASKS, PER_IMAGE, open_cache
from core.threads import threaded_map
from render.mask_cache.scene import PieceResult

SETTINGS_FILE = "settings.json"
LOCK_FILE = "lock"
PIECE_PREFIX = "piece-"
# ISA-L levels run 0..3; its 1 compresses the masks better than zlib's 1 (the level HDF5's
# filter records, COMPRESSION_OPTS, is only informative for a reader)
ISAL_LEVEL = 1


@dataclass(frozen=True)
class PieceSpec:
    """Piece `index` holds the rows [start, stop) of the split (data.json order)."""

    index: int
    start: int
    stop: int


def plan_pieces(start: int, stop: int, piece_size: int) -> list[PieceSpec]:
    """Cut rows [start, stop) at the multiples of `piece_size` (piece m is always the same
    rows of data.json, whatever the shard), dropping empty pieces."""
    out = []
    for m in range(start // piece_size, -(-stop // piece_size)):
        a, b = max(start, m * piece_size), min(stop, (m + 1) * piece_size)
        if a < b:
            out.append(PieceSpec(m, a, b))
    return out


def partial_dir_for(out: Path) -> Path:
    """``<out>.partial`` beside the output file."""
    return out.with_name(out.name + ".partial")


def piece_path(partial: Path, index: int) -> Path:
    return partial / f"{PIECE_PREFIX}{index:07d}.h5"


def deflate_mask(mask: np.ndarray) -> bytes:
    """The zlib stream (RFC 1950) of one (H, W) uint8 mask, as the HDF5 deflate filter stores a
    chunk, made by ISA-L's deflate (`isal`) at level ISAL_LEVEL. Any inflater reads it (HDF5's
    filter, zlib). Why ISA-L: on the default's 512 x 512 masks it takes 0.06-0.08 ms against
    zlib level 1's 0.25-0.31 ms (even with zlib fed only the rows that hold labels), and its
    streams are about 15 % smaller (benchmarks/bench_build_stages.py, BENCHMARKS.md)."""
    return isal_zlib.compress(np.ascontiguousarray(mask, dtype=np.uint8), ISAL_LEVEL)


def compress_masks(masks: np.ndarray, threads: int | None = None) -> list[bytes]:
    """`deflate_mask` of each mask (B, H, W) uint8: the chunks HDF5's deflate filter reads,
    compressed in `threads` threads (ISA-L releases the GIL; None: numba's thread count)."""
    masks = np.ascontiguousarray(masks, dtype=np.uint8)
    threads = numba.get_num_threads() if threads is None else threads
    return threaded_map(deflate_mask, masks, threads)


def write_piece(path: Path, result: PieceResult) -> None:
    """Write one piece atomically. The HDF5 file is made in memory and written as plain bytes
    (temporary name in the same folder, then os.replace), so a full disk is an ordinary
    OSError here, never an HDF5 library failure inside a worker. The mask chunks are
    compressed in threads and written as they are (`compress_masks`)."""
    buffer = io.BytesIO()
    chunks = compress_masks(result.masks)
    with h5py.File(buffer, "w") as f:
        n, hmax, wmax = result.masks.shape
        masks = f.create_dataset(
            MASKS,
            shape=(n, hmax, wmax),
            dtype=np.uint8,
            chunks=(1, hmax, wmax),
            compression=COMPRESSION,
            compression_opts=COMPRESSION_OPTS,
            track_times=False,
        )
        for j, chunk in enumerate(chunks):
            masks.id.write_direct_chunk((j, 0, 0), chunk, 0)
        for name, (dtype, _) in PER_IMAGE.items():
            if name != "file_name":
                f.create_dataset(
                    name, data=np.asarray(getattr(result, name), dtype=dtype), track_times=False
                )
    atomic_write_bytes(path, buffer.getvalue())


class PartialDir:
    """The locked work-in-progress folder of one output file.

    ``PartialDir.open(out, settings, discard_other=...)`` creates it or checks that it was
    started with the same `settings` (a JSON-able dict); with ``discard_other`` a folder
    started differently is emptied instead of refused. Use as a context manager (unlocks).
    """

    def __init__(self, path: Path, lock_fd: int) -> None:
        self.path = path
        self._lock_fd = lock_fd

    @classmethod
    def open(cls, out: Path, settings: dict, discard_other: bool = False) -> PartialDir:
        path = partial_dir_for(out)
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise DigitError(f"{path}: another build is working in this folder") from None
        self = cls(path, fd)
        try:
            self._check_settings(settings, discard_other)
            for stale in path.glob(f"*{TMP_MARK}*"):  # pieces in flight when a run died
                stale.unlink(missing_ok=True)
        except BaseException:
            self.close()
            raise
        return self

    def _check_settings(self, settings: dict, discard_other: bool) -> None:
        file = self.path / SETTINGS_FILE
        wanted = json.loads(json.dumps(settings, sort_keys=True))
        if file.is_file():
            try:
                found = json.loads(file.read_text())
            except json.JSONDecodeError:
                found = None
            if found == wanted:
                return
            if not discard_other:
                differ = (
                    sorted(k for k in wanted.keys() | found.keys() if wanted.get(k) != found.get(k))
                    if isinstance(found, dict)
                    else ["unreadable settings.json"]
                )
                raise DigitError(
                    f"{self.path}: work in progress was started with other settings "
                    f"({', '.join(differ)} differ); rerun with the original options, or pass "
                    "--overwrite to discard it and start again"
                )
            for item in self.path.iterdir():
                if item.name != LOCK_FILE:
                    shutil.rmtree(item) if item.is_dir() else item.unlink()
        atomic_write_text(file, json.dumps(wanted, sort_keys=True, indent=1) + "\n")

    def finished(self) -> set[int]:
        """Indices of the pieces already written."""
        out = set()
        for p in self.path.glob(f"{PIECE_PREFIX}*.h5"):
            stem = p.name[len(PIECE_PREFIX) : -len(".h5")]
            if stem.isdigit():
                out.add(int(stem))
        return out

    def piece(self, index: int) -> Path:
        return piece_path(self.path, index)

    def close(self) -> None:
        if self._lock_fd >= 0:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = -1

    def remove(self) -> None:
        """Delete the folder (after the output file is in place), then unlock."""
        shutil.rmtree(self.path, ignore_errors=True)
        self.close()

    def __enter__(self) -> PartialDir:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def remove_finished_leftover(out: Path) -> Path | None:
    """Delete ``<out>.partial/`` when it is what a build killed between writing the complete
    `out` and deleting its folder left behind: started with the settings `out` was built with
    (same content key), and locked by no running build. Returns the folder deleted, or None."""
    path = partial_dir_for(out)
    if not path.is_dir():
        return None
    try:
        f, attrs = open_cache(out)
    except DigitError:
        return None
    f.close()
    try:
        started = json.loads((path / SETTINGS_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        return None
    key = json.loads(json.dumps(attrs.content_key(), sort_keys=True))
    if not isinstance(started, dict) or any(started.get(k) != v for k, v in key.items()):
        return None  # work in progress of another build (e.g. an interrupted --overwrite)
    fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return None  # a build is working there
    finally:
        os.close(fd)  # closing drops the lock; the folder goes next
    shutil.rmtree(path, ignore_errors=True)
    return path
