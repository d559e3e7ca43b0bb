"""The one exception type that means "the user gave bad input".

Library code raises :class:`UserError` with a message that names the file (or option) and the problem;
the CLI prints it on one line to stderr and exits with code 2, without a traceback.
"""

from __future__ import annotations

EXIT_BAD_INPUT = 2


class UserError(Exception):
    """Bad input from the user: one line naming the file/option and the problem."""
