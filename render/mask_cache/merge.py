"""`digit-render merge`: join the shard files of one build into a single cache.

The shards must be complete, made from the same annotations, model and settings, and cover
shards 0..N-1 exactly once; they may be given in any order. Mask chunks are copied without
recompression, so the merged datasets equal a single run's byte for byte.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

from core.errors import DigitError
from core.files import check_output_dir, os_error_line
from core.mask_cache import CacheAttributes, finished_cache_kind, open_cache
from core.progress import progress
from core.splits import shard_bounds
from render.mask_cache.assemble import assemble
from render.mask_cache.pieces import partial_dir_for


def _shard_info(path: Path, attrs: CacheAttributes) -> tuple[int, int, dict]:
    sel = attrs.selection
    if not sel or sel.get("shard") is None:
        raise DigitError(f"{path}: not a shard file (no shard recorded in attribute 'selection')")
    k, n = sel["shard"]
    return int(k), int(n), sel


def check_shards(shards: list[Path]) -> tuple[list[Path], CacheAttributes, tuple[int, int]]:
    """Check that `shards` form one complete build: returns (paths in shard order, the first
    shard's attributes, canvas (Hmax, Wmax)). DigitError naming the file and the problem."""
    if not shards:
        raise DigitError("merge: no shard files given")
    infos = []
    for path in shards:
        f, attrs = open_cache(path)
        with f:
            canvas = tuple(int(x) for x in f["masks"].shape[1:])
            rows = int(f["image_id"].shape[0])
        k, n, sel = _shard_info(path, attrs)
        infos.append((Path(path), attrs, canvas, rows, k, n, sel))
    first_path, first, first_canvas, _, _, n0, sel0 = infos[0]
    for path, attrs, canvas, rows, k, n, sel in infos:
        if attrs.content_key() != first.content_key():
            differ = sorted(
                key
                for key, value in attrs.content_key().items()
                if first.content_key()[key] != value
            )
            raise DigitError(
                f"{path}: built with other settings than {first_path} ({', '.join(differ)})"
            )
        if canvas != first_canvas:
            raise DigitError(f"{path}: canvas {canvas} differs from {first_path}'s {first_canvas}")
        if n != n0 or sel["total"] != sel0["total"] or sel.get("limit") != sel0.get("limit"):
            raise DigitError(f"{path}: shard {k}/{n} is from another split-up than {first_path}")
        n_sel = sel["total"] if sel.get("limit") is None else min(sel["limit"], sel["total"])
        start, stop = shard_bounds(n_sel, k, n)
        if (sel["start"], sel["stop"]) != (start, stop) or rows != stop - start:
            raise DigitError(
                f"{path}: shard {k}/{n} holds {rows} images (rows {sel['start']}..{sel['stop']}), "
                f"expected rows {start}..{stop}"
            )
    by_k: dict[int, Path] = {}
    for path, *_, k, _n, _sel in infos:
        if k in by_k:
            raise DigitError(f"{path}: shard {k}/{n0} given twice (also {by_k[k]})")
        by_k[k] = path
    missing = [k for k in range(n0) if k not in by_k]
    if missing:
        raise DigitError(
            f"merge: shards {', '.join(f'{k}/{n0}' for k in missing)} missing "
            f"({len(by_k)} of {n0} given)"
        )
    return [by_k[k] for k in range(n0)], first, first_canvas  # type: ignore[return-value]


def expected_shards(out: Path, n: int) -> list[Path]:
    """The files of shards 0..n-1 of the cache `out`, as build-masks names them; one DigitError
    line naming every shard whose file is missing (an array job not finished or failed)."""
    from render.mask_cache.builder import shard_output

    if n < 1:
        raise DigitError(f"--shards {n}: expected at least 1")
    paths = [shard_output(Path(out), k, n) for k in range(n)]
    missing = [k for k, path in enumerate(paths) if not path.is_file()]
    if missing:
        busy = [k for k in missing if partial_dir_for(paths[k]).is_dir()]
        raise DigitError(
            f"merge: shards {', '.join(f'{k}/{n}' for k in missing)} missing "
            f"({len(paths) - len(missing)} of {n} in {paths[0].parent}"
            + (f"; {', '.join(str(k) for k in busy)} unfinished" if busy else "")
            + f"; shard 0 would be {paths[0].name})"
        )
    return paths


def merge_shards(
    shards: list[Path], out: Path, overwrite: bool = False, show_progress: bool = True
) -> int:
    """Merge shard files into `out` (written atomically); returns the number of images.
    Every chunk copied is checked against its crc32 (a damaged shard is one line, no output)."""
    out = Path(out)
    if out.is_dir():
        raise DigitError(f"--out {out}: is a folder, expected a file name")
    check_output_dir(out.parent)
    if out.exists() and not overwrite:
        what = finished_cache_kind(out) or "a file"
        raise DigitError(f"{out}: {what} exists (pass --overwrite to replace it)")
    ordered, attrs, canvas = check_shards([Path(s) for s in shards])
    sel = attrs.selection or {}
    selection = None
    if sel.get("limit") is not None:
        n_sel = min(sel["limit"], sel["total"])
        selection = {**sel, "shard": None, "start": 0, "stop": n_sel}
    merged = replace(
        attrs,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        selection=selection,
    )
    total = sum(1 for _ in ordered)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with progress(total, f"merge {out.name}", enabled=show_progress) as bar:
            return assemble(
                out, merged, canvas, ordered, advance=lambda _n: bar.advance(1), check_chunks=True
            )
    except OSError as exc:
        raise DigitError(os_error_line(exc, out)) from None
