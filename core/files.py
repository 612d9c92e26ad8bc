"""Writing files so that a kill never leaves half of one, and reading torch files safely.

Every output is written to `<name>.tmp-<pid>` beside its final path (same folder, so the rename
is atomic; the pid keeps concurrent writers apart; the mark lets a later run find leftovers),
then renamed over the final path. torch files are read with `weights_only=True`, so no pickled
code ever runs, and any failure is one DigitError line naming the file.
"""

from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
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


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


def output_path(text: str, what: str = "--out") -> Path:
    """A command-line output path: an empty one (which would mean the current folder) is one
    DigitError line naming `what`."""
    if not str(text).strip():
        raise DigitError(f"{what}: empty path; name the file or folder to write")
    return Path(text)


def check_output_dir(folder: str | Path, what: str = "--out") -> None:
    """Check, creating nothing, that files can be written under `folder` (it may not exist yet):
    its nearest existing ancestor must be a writable folder. DigitError naming `what` if not."""
    folder = Path(folder)
    for existing in (folder, *folder.parents):
        if existing.exists():
            break
    if not existing.is_dir():
        raise DigitError(f"{what} {folder}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise DigitError(f"{what} {folder}: folder {existing} is not writable")


_ERRNO_IN_TEXT = re.compile(r"errno = (\d+)")


def os_error_line(exc: OSError, path: str | Path) -> str:
    """One line for an OSError met while writing `path` (h5py's errors carry the errno only in
    their text): the path and the reason, with what to do after a full disk."""
    code = exc.errno
    if code is None and (match := _ERRNO_IN_TEXT.search(str(exc))):
        code = int(match[1])
    if code in (errno.ENOSPC, errno.EDQUOT):
        return f"{path}: no space left on the device; free some space and rerun the same command"
    reason = os.strerror(code) if code else (str(exc).splitlines() or ["write failed"])[0]
    return f"{exc.filename or path}: cannot write ({reason})"


def check_free_space(
    folder: str | Path,
    need_bytes: int,
    what: str,
    advice: str = "free some space and rerun the same command",
) -> None:
    """DigitError when the file system of `folder` (or its nearest existing ancestor) has less
    than `need_bytes` free; `what` says what would be written, `advice` what to do."""
    folder = Path(folder)
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    free = shutil.disk_usage(existing).free
    if free < need_bytes:
        raise DigitError(
            f"{folder}: not enough free space for {what} (about {need_bytes / 1e6:,.0f} MB "
            f"needed, {free / 1e6:,.0f} MB free); {advice}"
        )
