"""Command help reads as sentences: a docstring's single line breaks become spaces (typer 0.29 keeps them, and
rich then breaks sentences mid-line); list items, table rows, indented lines and ``\\b`` paragraphs keep theirs."""

from __future__ import annotations

from repsep.cli import build_command
from repsep.cli.options import _LIST_ITEM, reflow_paragraphs, walk_commands


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


def test_every_command_help_is_reflowed():
    """As `main` builds the CLI: no paragraph of any command's help keeps a line break inside a sentence."""
    for path, command in walk_commands(build_command()):
        for paragraph in (command.help or "").split("\n\n"):
            if paragraph.startswith("\b"):
                continue
            assert all(_LIST_ITEM.match(line) for line in paragraph.splitlines()[1:]), (path, paragraph)
