"""The one exception type users see."""


class DigitError(Exception):
    """Bad input or an unmet precondition the user can fix.

    The message is a single line that names the file (or option) and the problem, e.g.
    ``"/data/MANO_LEFT.pkl: missing key 'shapedirs'"``. The command-line tools print it as
    ``error: <message>`` and exit with status 1, never with a traceback.
    """
