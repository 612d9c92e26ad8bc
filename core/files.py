"""Writing files so that a kill never leaves half of one, and reading torch files safely.

Every output is written to `<name>.tmp-<pid>` beside its final path (same folder, so the rename
is atomic; the pid keeps concurrent writers apart; the mark lets a later run find leftovers),
then renamed over the final path. torch files are read with `weights_only=True`, so no pickled
code ever runs, and any failure is one DigitError line naming the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from core.errors import DigitError

TMP_MARK = ".tmp-"


def temp_path_for(path: Path) -> Path:
    """`<path>.tmp-<pid>`: where `path` is written before it is renamed into place."""
    return path.with_name(f"{path.name}{TMP_MARK}{os.getpid()}")


@contextmanager
def atomic_path(path: str | Path, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces `path`, on any error it goes.

    `fsync` flushes the file to disk before the rename (checkpoints: survive a power cut).
    """
    path = Path(path)
    tmp = temp_path_for(path)
    try:
        yield tmp
        if fsync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` through `atomic_path`."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write `text` (UTF-8) to `path` through `atomic_path`."""
    atomic_write_bytes(path, text.encode("utf-8"))


def load_torch_file(path: str | Path, what: str, map_location: str | torch.device = "cpu"):
    """`torch.load(path, weights_only=True)`; `what` names the kind of file in errors.

    A missing file, a folder, or an unreadable / unsafe file is one DigitError line, e.g.
    ``"run/last.pt: cannot read checkpoint (UnpicklingError: ...)"``.
    """
    path = Path(path)
    if not path.exists():
        raise DigitError(f"{path}: {what} not found")
    if not path.is_file():
        raise DigitError(f"{path}: not a file")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # pickle / zip / unsafe-global errors: one line for the user
        lines = str(exc).strip().splitlines()
        first = lines[0][:120] if lines else ""
        raise DigitError(f"{path}: cannot read {what} ({type(exc).__name__}: {first})") from None
