"""Join row blocks (build pieces or shard files) into one cache file, atomically.

Compressed mask chunks are copied as they are (``read_direct_chunk`` / ``write_direct_chunk``),
never recompressed, so assembling is fast and the stored bytes equal the pieces' bytes. With
``check_chunks`` (merge) each chunk is also inflated and its crc32 compared with the stored one,
so damage is never copied into a new file.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np

from core.errors import DigitError
from core.files import atomic_path
from core.mask_cache import (
    CHECKSUM,
    COMPRESSION,
    MASKS,
    PER_IMAGE,
    CacheAttributes,
    create_datasets,
    mask_crc32,
)


def block_rows(path: Path) -> int:
    """Number of images in a piece or cache file."""
    with h5py.File(path, "r") as f:
        return int(f["image_id"].shape[0])


def _check_chunk(raw: bytes, filter_mask: int, j: int, src: h5py.File, where: Path) -> None:
    """DigitError naming `where` and image j unless chunk j inflates to its stored crc32."""
    hmax, wmax = src[MASKS].shape[1:]
    try:
        if filter_mask != 0:
            raise ValueError(f"filter mask {filter_mask}")
        flat = zlib.decompress(raw)
        if len(flat) != hmax * wmax:
            raise ValueError(f"chunk inflates to {len(flat)} bytes")
    except (zlib.error, ValueError) as exc:
        raise DigitError(f"{where}: image {j} is damaged ({exc}); not copied") from None
    h, w = (int(x) for x in src["image_hw"][j])
    crc = mask_crc32(np.frombuffer(flat, dtype=np.uint8).reshape(hmax, wmax)[:h, :w])
    if crc != int(src[CHECKSUM][j]):
        raise DigitError(
            f"{where}: image {j} is damaged (crc32 {crc:08x}, stored "
            f"{int(src[CHECKSUM][j]):08x}); not copied"
        )


def _copy_block(
    dst: h5py.File,
    offset: int,
    src: h5py.File,
    where: Path,
    file_names: Sequence[str] | None,
    check_chunks: bool = False,
) -> int:
    masks_in, masks_out = src[MASKS], dst[MASKS]
    n = masks_in.shape[0]
    if masks_in.shape[1:] != masks_out.shape[1:] or masks_in.chunks != masks_out.chunks:
        raise DigitError(
            f"{where}: masks {masks_in.shape[1:]} in chunks {masks_in.chunks}, expected "
            f"{masks_out.shape[1:]} in chunks {masks_out.chunks}"
        )
    if (
        masks_in.compression != COMPRESSION
        or masks_in.compression_opts != masks_out.compression_opts
    ):
        raise DigitError(f"{where}: masks compressed with another filter")
    for j in range(n):
        filter_mask, raw = masks_in.id.read_direct_chunk((j, 0, 0))
        if check_chunks:
            _check_chunk(raw, filter_mask, j, src, where)
        masks_out.id.write_direct_chunk((offset + j, 0, 0), raw, filter_mask)
    for name in PER_IMAGE:
        if name in src:
            values = src[name][...]
        elif name == "file_name" and file_names is not None:
            values = np.asarray(file_names, dtype=object)
        else:
            raise DigitError(f"{where}: dataset {name!r} missing")
        if len(values) != n:
            raise DigitError(f"{where}: dataset {name!r} has {len(values)} rows, masks have {n}")
        dst[name][offset : offset + n] = values
    return n


def assemble(
    out: Path,
    attrs: CacheAttributes,
    canvas_hw: tuple[int, int],
    blocks: Sequence[Path],
    file_names: Callable[[int, int], Sequence[str]] | None = None,
    advance: Callable[[int], None] | None = None,
    check_chunks: bool = False,
) -> int:
    """Write `blocks` (in order) into a new cache at `out`; returns the number of images.

    blocks: files holding the masks dataset on the same (Hmax, Wmax) canvas and the per-image
    datasets (file_name may be missing: then ``file_names(start, n)`` gives rows
    [start, start + n) of the output). The file is written under a temporary name with
    ``complete`` False, completed, then renamed over `out`: `out` only ever holds a complete
    file. `advance(n)` is called after each block. `check_chunks`: check each chunk's crc32
    (see the module doc).
    """
    total = sum(block_rows(b) for b in blocks)
    if total == 0:
        raise DigitError(f"{out}: nothing to write (no images)")
    with atomic_path(out) as tmp:
        with h5py.File(tmp, "w") as f:
            replace(attrs, complete=False).write(f)
            create_datasets(f, total, canvas_hw)
            offset = 0
            for block in blocks:
                with h5py.File(block, "r") as src:
                    n = src["image_id"].shape[0]
                    names = None if file_names is None else file_names(offset, n)
                    offset += _copy_block(f, offset, src, block, names, check_chunks)
                if advance is not None:
                    advance(n)
            replace(attrs, complete=True).write(f)
    return total
