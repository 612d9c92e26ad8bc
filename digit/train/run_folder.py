"""Owning a training run folder: one run at a time, and what a killed run left behind removed.

`claim_run_dir` takes an exclusive `flock` on `<run>/train.lock` for the whole run. The kernel
releases it when the process ends in any way (kill -9 included), so a dead run never blocks the
next one, while a live one makes a second `digit-train` on the same folder stop with one line
before it writes anything. Under torchrun only the main process (which writes the folder)
takes it; forked children (loader workers) do not keep it. Holding the lock, it removes
checkpoint files a killed run was writing (`last.pt.tmp-<pid>`, see `core.files.temp_path_for`)
and says so.
"""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.errors import DigitError
from core.files import TMP_MARK

LOCK_FILE = "train.lock"

# Descriptors of the locks this process holds. A forked child (a DataLoader worker) closes its
# copies at once: a flock belongs to the open file, so a worker outliving a killed run would
# otherwise keep the folder locked. (Closing a copy never releases the parent's lock.)
_HELD: set[int] = set()


def _close_held_in_child() -> None:
    for fd in _HELD:
        try:
            os.close(fd)
        except OSError:
            pass
    _HELD.clear()


os.register_at_fork(after_in_child=_close_held_in_child)


@contextmanager
def claim_run_dir(run_dir: Path, enabled: bool = True) -> Iterator[None]:
    """Hold the lock of `run_dir` (created if missing) for the `with` block; `enabled` False
    (torchrun ranks other than 0) does nothing. A folder locked by a live run is one
    DigitError line naming it and the process holding it."""
    if not enabled:
        yield
        return
    run_dir = Path(run_dir)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise DigitError(f"{run_dir}: cannot use as a run folder ({exc.strerror})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise DigitError(
                f"{run_dir}: another digit-train run is using this folder (process {holder}); "
                "wait for it to end or pass another --out"
            ) from None
        _HELD.add(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        removed = remove_leftovers(run_dir)
        if removed:
            names = ", ".join(p.name for p in removed)
            print(
                f"digit-train: removed {len(removed)} unfinished checkpoint write(s) of an "
                f"interrupted run in {run_dir}: {names}",
                file=sys.stderr,
            )
        yield
    finally:
        _HELD.discard(fd)
        os.close(fd)  # closing the last descriptor of the open file releases the lock


def remove_leftovers(run_dir: Path) -> list[Path]:
    """Delete the temporary checkpoint files (`*.pt.tmp-<pid>`) in `run_dir`; only safe while
    holding its lock. Returns what was removed, sorted."""
    stale = sorted(p for p in Path(run_dir).glob(f"*.pt{TMP_MARK}*") if p.is_file())
    for path in stale:
        path.unlink(missing_ok=True)
    return stale
