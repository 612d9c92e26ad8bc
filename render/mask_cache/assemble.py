"""Join row blocks (build pieces or shard files) into one cache file, atomically.

Compressed mask chunks are copied as they are (``read_direct_chunk`` / ``write_direct_chunk``),
never recompressed, so assembling is fast and the stored bytes equal the pieces' bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

import h5py
import numpy as np

from core.errors import DigitError
from core.files import atomic_path
from core.mask_cache import (
    COMPRESSION,
    MASKS,
    PER_IMAGE,
    CacheAttributes,
    create_datasets,
)


def block_rows(path: Path) -> int:
    """Number of images in a piece or cache file."""
    with h5py.File(path, "r") as f:
        return int(f["image_id"].shape[0])


def _copy_block(
    dst: h5py.File, offset: int, src: h5py.File, where: Path, file_names: Sequence[str] | None
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
) -> int:
    """Write `blocks` (in order) into a new cache at `out`; returns the number of images.

    blocks: files holding the masks dataset on the same (Hmax, Wmax) canvas and the per-image
    datasets (file_name may be missing: then ``file_names(start, n)`` gives rows
    [start, start + n) of the output). The file is written under a temporary name with
    ``complete`` False, completed, then renamed over `out`: `out` only ever holds a complete
    file. `advance(n)` is called after each block.
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
                    offset += _copy_block(f, offset, src, block, names)
                if advance is not None:
                    advance(n)
            replace(attrs, complete=True).write(f)
    return total
