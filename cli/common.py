"""What every command-line app shares: plain typer apps and one-line error reporting."""

import contextlib
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import typer

from core.errors import DigitError, Interrupted, one_line
from core.files import output_path


def data_root_option(
    help_text: str = "InterHand2.6M-layout root (default: the synthetic dataset).",
) -> Any:
    """The `--data-root` option every data-reading command takes (one wording, one default)."""
    return typer.Option(None, "--data-root", help=help_text)


def out_option(default: Any, help_text: str, name: str = "--out") -> Any:
    """An output-path option: an empty value (`--out ''`, which would mean the current folder)
    is one error line instead of writing into the current folder."""

    def parse(text: str) -> Path:
        return output_path(text, name)

    return typer.Option(default, name, help=help_text, parser=parse, metavar="PATH")


def make_app(help_text: str) -> typer.Typer:
    """A typer app with plain errors (no rich tracebacks) and `--help` on every command."""
    return typer.Typer(
        help=help_text,
        add_completion=False,
        no_args_is_help=False,
        pretty_exceptions_enable=False,
        context_settings={"help_option_names": ["-h", "--help"]},
    )


def run(app: typer.Typer, prog: str) -> Callable[[], None]:
    """Entry point for `prog`: DigitError becomes `prog: error: ...` on stderr and exit 1."""

    def main() -> None:
        warnings.showwarning = _one_line_warning(prog)
        try:
            app(prog_name=prog)
        except DigitError as exc:
            rank = os.environ.get("RANK", "0")  # set by torchrun
            where = "" if rank == "0" else f"[rank {rank}] "
            print(f"{prog}: error: {where}{one_line(exc)}", file=sys.stderr)
            sys.exit(1)
        except KeyboardInterrupt as exc:
            _say_interrupted(prog, exc)
        except SystemExit as exc:  # typer turns Ctrl-C into a silent exit 130
            interrupt = _interrupt_behind(exc)
            if interrupt is None:
                raise
            _say_interrupted(prog, interrupt)

    return main


def _interrupt_behind(exc: BaseException) -> KeyboardInterrupt | None:
    """The KeyboardInterrupt an exception was raised from (typer's exit 130), if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _say_interrupted(prog: str, exc: KeyboardInterrupt) -> None:
    """`prog: interrupted`, with what was kept and how to go on where the work said it
    (`core.errors.Interrupted`); exit 130."""
    said = f": {exc}" if isinstance(exc, Interrupted) and str(exc) else ""
    print(f"{prog}: interrupted{said}", file=sys.stderr)
    sys.exit(130)


def _one_line_warning(prog: str) -> Callable[..., None]:
    """`warnings.showwarning` for a command: `prog: warning: message` on one line (Python's
    own format adds the file, line and source line, which mean nothing to a user)."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = " ".join(str(message).split())
        print(f"{prog}: warning: {text}", file=sys.stderr if file is None else file)

    return show


@contextlib.contextmanager
def said_once_under_torchrun() -> Iterator[None]:
    """Errors every process meets alike (options, config files, the batch split) are said by
    torchrun's rank 0 only; the other processes exit 1 quietly."""
    try:
        yield
    except DigitError:
        if os.environ.get("RANK", "0") != "0":
            sys.exit(1)
        raise
