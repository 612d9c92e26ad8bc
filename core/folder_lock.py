"""One writer per output folder: an exclusive `flock` on a lock file inside it.

The kernel releases the lock when the process ends in any way (kill -9 included), so a dead
writer never blocks the next one, while a live one makes a second writer stop with one line
before it writes anything. The holder's pid is written into the lock file for that line.
Forked children (loader workers) close their copies of the descriptor at once: a flock belongs
to the open file, so a child outliving its killed parent would otherwise keep the folder locked.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from core.errors import DigitError

# Descriptors of the locks this process holds (closed in forked children; closing a copy never
# releases the parent's lock).
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
def folder_lock(
    folder: Path, lock_name: str, busy: Callable[[str], str], role: str = "an output folder"
) -> Iterator[None]:
    """Hold `folder/lock_name` (the folder is created if missing) for the `with` block.

    busy(holder pid or "unknown") -> the DigitError line when another live process holds it.
    A folder that cannot be created or opened is one DigitError line naming it and `role`.
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / lock_name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise DigitError(f"{folder}: cannot use as {role} ({exc.strerror})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise DigitError(busy(holder)) from None
        _HELD.add(fd)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        _HELD.discard(fd)
        os.close(fd)  # closing the last descriptor of the open file releases the lock
