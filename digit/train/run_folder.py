"""Owning a training run folder: one run at a time, and what a killed run left behind removed.

`claim_run_dir` takes an exclusive `flock` on `<run>/train.lock` for the whole run
(`core.folder_lock`: released when the process ends in any way, kill -9 included; forked loader
workers do not keep it), so a second `digit-train` on a folder in use stops with one line
before it writes anything. Under torchrun only the main process (which writes the folder)
takes it. Holding the lock, it removes checkpoint files a killed run was writing
(`last.pt.tmp-<pid>`, see `core.files.temp_path_for`) and says so.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.files import TMP_MARK
from core.folder_lock import folder_lock

LOCK_FILE = "train.lock"


@contextmanager
def claim_run_dir(run_dir: Path, enabled: bool = True) -> Iterator[None]:
    """Hold the lock of `run_dir` (created if missing) for the `with` block; `enabled` False
    (torchrun ranks other than 0) does nothing. A folder locked by a live run is one
    DigitError line naming it and the process holding it."""
    if not enabled:
        yield
        return
    run_dir = Path(run_dir)

    def busy(holder: str) -> str:
        return (
            f"{run_dir}: another digit-train run is using this folder (process {holder}); "
            "wait for it to end or pass another --out"
        )

    with folder_lock(run_dir, LOCK_FILE, busy, role="a run folder"):
        removed = remove_leftovers(run_dir)
        if removed:
            names = ", ".join(p.name for p in removed)
            print(
                f"digit-train: removed {len(removed)} unfinished checkpoint write(s) of an "
                f"interrupted run in {run_dir}: {names}",
                file=sys.stderr,
            )
        yield


def remove_leftovers(run_dir: Path) -> list[Path]:
    """Delete the temporary checkpoint files (`*.pt.tmp-<pid>`) in `run_dir`; only safe while
    holding its lock. Returns what was removed, sorted."""
    stale = sorted(p for p in Path(run_dir).glob(f"*.pt{TMP_MARK}*") if p.is_file())
    for path in stale:
        path.unlink(missing_ok=True)
    return stale
