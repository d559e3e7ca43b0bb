"""Run the ``repsep-bench`` CLI in this process, as the console script would, and get its exit code."""

from __future__ import annotations

from repsep.cli import main


def run_cli(argv: list[str]) -> int:
    """Exit code of ``repsep-bench ARGV`` (0 when the command returns without raising SystemExit)."""
    try:
        main(argv)
    except SystemExit as e:
        return int(e.code or 0)
    return 0
