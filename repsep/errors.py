"""The one exception type that means "the user gave bad input".

Library code raises :class:`UserError` with a message that names the file (or option) and the problem;
the CLI prints it on one line to stderr and exits with code 2, without a traceback.
"""

from __future__ import annotations

EXIT_BAD_INPUT = 2


class UserError(Exception):
    """Bad input from the user: one line naming the file/option and the problem."""

    def __init__(self, message: str) -> None:
        # torch's DataLoader re-raises a worker's exception as ``type(e)("Caught UserError in DataLoader worker
        # process 0.\nOriginal Traceback ...")``; keep the original one-line message (the traceback's last line)
        if message.startswith("Caught UserError ") and "Traceback" in message:
            message = message.rstrip().splitlines()[-1].partition("UserError: ")[2] or message
        super().__init__(message)
