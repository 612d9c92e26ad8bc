"""The one exception type users see."""


class DigitError(Exception):
    """Bad input or an unmet precondition the user can fix.

    The message is a single line that names the file (or option) and the problem, e.g.
    ``"/data/MANO_LEFT.pkl: missing key 'shapedirs'"``. The command-line tools print it as
    ``error: <message>`` and exit with status 1, never with a traceback.
    """


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with what the interrupted work kept and how to go on (one line, e.g. "run/last.pt
    holds step 120; continue with `digit-train --out run --resume`"). The command-line tools
    print ``interrupted: <message>`` and exit with status 130."""


def one_line(exc: DigitError) -> str:
    """The user's line of `exc`. A DigitError raised in a torch DataLoader worker reaches the
    main process re-created with the worker's traceback as its message ("Caught DigitError in
    DataLoader worker process 0. Original Traceback ..."); its own line is the last one."""
    text = str(exc).strip()
    if "\n" not in text:
        return text
    last = text.splitlines()[-1].strip()
    for prefix in (f"{DigitError.__module__}.{DigitError.__name__}: ", "DigitError: "):
        if last.startswith(prefix):
            return last[len(prefix) :]
    return " ".join(line.strip() for line in text.splitlines() if line.strip())
