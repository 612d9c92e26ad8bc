"""What every command-line app shares: plain typer apps and one-line error reporting."""

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

import typer

from core.errors import DigitError, one_line


def data_root_option(
    help_text: str = "InterHand2.6M-layout root (default: the synthetic dataset).",
) -> Any:
    """The `--data-root` option every data-reading command takes (one wording, one default)."""
    return typer.Option(None, "--data-root", help=help_text)


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
        try:
            app(prog_name=prog)
        except DigitError as exc:
            rank = os.environ.get("RANK", "0")  # set by torchrun
            where = "" if rank == "0" else f"[rank {rank}] "
            print(f"{prog}: error: {where}{one_line(exc)}", file=sys.stderr)
            sys.exit(1)
        except KeyboardInterrupt:
            print(f"{prog}: interrupted", file=sys.stderr)
            sys.exit(130)

    return main


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
