"""The demo's output folder: always consistent with its index, `predictions.json`.

- A folder holding an earlier run (its predictions.json) is refused unless `--overwrite`, which
  replaces that run: its index and the files the index lists (pictures, and with `--meshes`
  the mesh files), nothing else. A file the new run would write that no earlier run there
  lists is refused even then (it is not ours to replace). A folder of input images is
  refused as `--out` (a rerun would take the pictures for photos).
- One run writes a folder at a time: `.digit-demo.lock` (`core.folder_lock`); a second run
  into it stops with one line.
- A run writes into `<out>/.partial-<pid>/` and moves its files into place only at the end:
  the old index goes first, then the other files, then the new index. A run that fails or is
  interrupted leaves the folder as it was (its partial folder removed; one left by a killed
  run is removed by the next run into the folder).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from core.errors import DigitError
from core.files import check_output_dir
from core.folder_lock import folder_lock

INDEX = "predictions.json"
LOCK_FILE = ".digit-demo.lock"
PARTIAL_PREFIX = ".partial-"
# the names a run writes: `digit.demo.run.panel_names`, and `digit.meshes.demo`'s files
RUN_FILE = re.compile(r"[^/\\]+_(pred\.png|mesh\.png|right\.obj|left\.obj|mano\.json)")


@dataclass(frozen=True)
class EarlierRun:
    """An earlier run found in the output folder: the files its index lists."""

    files: tuple[str, ...]


def listed_files(record: dict) -> list:
    """The file names one image's record points to: its panel and its mesh files."""
    names = [record.get("panel")]
    meshes = record.get("meshes")
    if isinstance(meshes, dict):
        obj = meshes.get("obj")
        names += list(obj.values()) if isinstance(obj, dict) else []
        names += [meshes.get("mano_json"), meshes.get("picture")]
    return names


def earlier_run(out: Path) -> EarlierRun | None:
    """The run recorded by `out/predictions.json`, None without one; DigitError when that file
    is not a digit-demo index (then nothing in the folder is ours to replace)."""
    index = out / INDEX
    if not index.exists():
        return None
    try:
        doc = json.loads(index.read_text(encoding="utf-8"))
        records = doc["images"]
        names = [n for r in records for n in listed_files(r)] if "conventions" in doc else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        names = None
    if names is None:
        raise DigitError(
            f"--out {out}: {INDEX} there was not written by digit-demo; pass another --out"
        )
    return EarlierRun(tuple(n for n in names if isinstance(n, str) and RUN_FILE.fullmatch(n)))


def check_out_folder(
    out: Path, images: list[Path], files: list[str], overwrite: bool
) -> EarlierRun | None:
    """Check `out` before any work: a folder (or nothing yet), writable, not the folder of an
    input image, no earlier run unless `overwrite`, and none of `files` (the file names the
    run may write) there unless the earlier run lists it. Returns the earlier run to replace."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DigitError(f"--out {out}: is a file, not a folder")
    check_output_dir(out)
    if out.is_dir():
        here = out.resolve()
        inside = next((p for p in images if Path(p).resolve().parent == here), None)
        if inside is not None:
            raise DigitError(
                f"--out {out}: holds the input image {Path(inside).name}; a rerun would take "
                "the pictures written there for photos: pass another --out"
            )
    earlier = earlier_run(out) if out.is_dir() else None
    if earlier is not None and not overwrite:
        raise DigitError(
            f"--out {out}: holds an earlier digit-demo run ({INDEX} and "
            f"{len(earlier.files)} files it lists); pass --overwrite to replace them, or another "
            "--out"
        )
    listed = set(earlier.files) if earlier is not None else set()
    clash = next((n for n in files if n not in listed and (out / n).exists()), None)
    if clash is not None:
        raise DigitError(
            f"--out {out}: {clash} exists and no digit-demo run there lists it; remove it or "
            "pass another --out"
        )
    return earlier


@contextmanager
def writing_run(out: Path, images: list[Path], files: list[str], overwrite: bool) -> Iterator[Path]:
    """Lock `out`, check it again under the lock, and yield a partial folder to write the
    run's files into (the index as `INDEX`); on success they replace the earlier run."""
    out = Path(out)

    def busy(holder: str) -> str:
        return (
            f"--out {out}: another digit-demo is writing this folder (process {holder}); "
            "wait for it to end or pass another --out"
        )

    with folder_lock(out, LOCK_FILE, busy):
        earlier = check_out_folder(out, images, files, overwrite)
        _remove_dead_partials(out)
        stage = out / f"{PARTIAL_PREFIX}{os.getpid()}"
        stage.mkdir()
        try:
            yield stage
            _commit(stage, out, earlier)
        finally:
            shutil.rmtree(stage, ignore_errors=True)


def _remove_dead_partials(out: Path) -> None:
    """Partial folders of killed runs (only under the lock: no live run writes one)."""
    for stale in sorted(out.glob(f"{PARTIAL_PREFIX}*")):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
            print(f"digit-demo: removed {stale}, left by an interrupted run", file=sys.stderr)


def _commit(stage: Path, out: Path, earlier: EarlierRun | None) -> None:
    """Move the new run into place: the old index goes first (the folder then claims no run),
    the old run's files that the new one does not replace next, then the new files, and the
    new index last."""
    new = sorted(p.name for p in stage.iterdir() if p.name != INDEX)
    (out / INDEX).unlink(missing_ok=True)
    for name in earlier.files if earlier is not None else ():
        if name not in new:
            (out / name).unlink(missing_ok=True)
    for name in new:
        os.replace(stage / name, out / name)
    os.replace(stage / INDEX, out / INDEX)
