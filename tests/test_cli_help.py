"""Command help reads as sentences: a docstring's single line breaks become spaces (typer 0.29 keeps them, and
rich then breaks sentences mid-line); list items, table rows, indented lines and ``\\b`` paragraphs keep theirs."""

from __future__ import annotations

import typer

from repsep.cli import app
from repsep.cli.options import _LIST_ITEM, reflow_help, reflow_paragraphs


def test_reflow_joins_lines_and_keeps_lists():
    text = """Summary line
    that goes on.

    A paragraph whose sentence
    --set data.scan=headers continues here.

    Items:
    - one
      still one
    - two
    | a | b |
    | 1 | 2 |

    \b
    kept
    as is"""
    assert reflow_paragraphs(text) == ("Summary line that goes on.\n\n"
                                       "A paragraph whose sentence --set data.scan=headers continues here.\n\n"
                                       "Items:\n- one\n  still one\n- two\n| a | b |\n| 1 | 2 |\n\n"
                                       "\b\nkept\nas is")


def _commands(command, path="repsep-bench"):
    yield path, command
    for name, sub in (getattr(command, "commands", None) or {}).items():
        yield from _commands(sub, f"{path} {name}")


def test_every_command_help_is_reflowed():
    for path, command in _commands(reflow_help(typer.main.get_command(app))):
        for paragraph in (command.help or "").split("\n\n"):
            if paragraph.startswith("\b"):
                continue
            assert all(_LIST_ITEM.match(line) for line in paragraph.splitlines()[1:]), (path, paragraph)
