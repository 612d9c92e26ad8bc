"""What every benchmark's command line shares: option errors in one line, number types that
refuse zero, negative and NaN values, a results folder checked before the long work, and a
main that turns a DigitError, a failed step or Ctrl-C into one line and an exit status
(1, or 130 for Ctrl-C)."""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

from core.errors import DigitError, one_line
from core.files import check_output_dir


class Parser(argparse.ArgumentParser):
    """argparse with `prog: error: message` on one line (exit 2) instead of usage + error."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def _number(text: str, kind: type, low: float, what: str) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if not (math.isfinite(value) and value >= low):
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    return int(_number(text, int, 1, "an integer >= 1"))


def count(text: str) -> int:
    """argparse type: an integer >= 0."""
    return int(_number(text, int, 0, "an integer >= 0"))


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (NaN, inf, 0 and negatives refused)."""
    value = float(_number(text, float, 0.0, "a finite number > 0"))
    if value == 0:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value


def path_arg(text: str) -> Path:
    """argparse type: a path, not empty (an empty one would mean the current folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty path; name the folder")
    return Path(text)


def output_folder(path: Path, what: str) -> Path:
    """`path` if results can be written there (a folder or nothing yet, in a writable place);
    else one DigitError line naming the option `what`."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DigitError(f"{what} {path}: is a file, not a folder")
    check_output_dir(path, what)
    return path


def run_main(prog: str, main: Callable[[], object], kept: str = "") -> int:
    """Run a benchmark's `main`: its exit status, or 1 with `prog: error: ...` for a DigitError
    or a failed subprocess step, 130 with `prog: interrupted` (and `kept`: what was kept) for
    Ctrl-C. A `main` that returns no int (None, its results) succeeded: 0."""
    try:
        status = main()
        return status if isinstance(status, int) else 0
    except DigitError as exc:
        print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
    except subprocess.CalledProcessError as exc:
        cmd = " ".join(map(str, exc.cmd[:4]))
        print(f"{prog}: error: a step failed (exit {exc.returncode}): {cmd} ...", file=sys.stderr)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted" + (f"; {kept}" if kept else ""), file=sys.stderr)
        return 130
    return 1
