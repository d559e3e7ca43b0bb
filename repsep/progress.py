"""Progress bars: on only when stderr is a terminal and ``--quiet`` was not given, and never on a non-main rank.

Every long loop goes through :func:`progress_bar`; :func:`print_error` ends a bar's line first, so an error message
is always a line of its own.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from typing import Any

QUIET_ENV = "REPSEP_QUIET"
"""Set to 1 by ``repsep-bench --quiet`` (and inherited by torchrun workers): no progress bars."""


def bars_enabled(wanted: bool | None = None) -> bool:
    """Whether a bar may be drawn: ``wanted`` is the caller's wish (None = yes on the main rank)."""
    if wanted is False or os.environ.get(QUIET_ENV) == "1":
        return False
    if int(os.environ.get("RANK", "0")) != 0:
        return False
    return sys.stderr.isatty()


def progress_bar(iterable: Iterable | None = None, *, wanted: bool | None = None, **kwargs: Any):
    """A tqdm bar over ``iterable`` (or a manual one with ``total=``), disabled unless :func:`bars_enabled`."""
    from tqdm import tqdm

    kwargs.setdefault("dynamic_ncols", True)
    return tqdm(iterable, disable=not bars_enabled(wanted), **kwargs)


def print_error(message: str) -> None:
    """``error: message`` on stderr on a line of its own (after a newline if a bar may be mid-line)."""
    if sys.stderr.isatty():
        sys.stderr.write("\n")
    sys.stderr.write(f"error: {message}\n")
    sys.stderr.flush()
