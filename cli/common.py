"""What every command-line app shares: plain typer apps and one-line error reporting."""

import sys
from collections.abc import Callable

import typer

from core.errors import DigitError, one_line


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
            print(f"{prog}: error: {one_line(exc)}", file=sys.stderr)
            sys.exit(1)
        except KeyboardInterrupt:
            print(f"{prog}: interrupted", file=sys.stderr)
            sys.exit(130)

    return main
