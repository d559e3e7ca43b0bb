"""The ``repsep-bench`` command line. Thin: parse options, call library functions, print results.

One module per command group (``data``, ``models``, ``train``, ``evaluate``, ``corrupt``, ``analyze``, ``report``);
this module assembles them into one typer app. Every command accepts ``--help``. Bad input raises
:class:`repsep.errors.UserError`, which :func:`main` turns into one line on stderr and exit code 2. Runs under
``torchrun`` as ``python -m repsep.cli ...``.
"""

from __future__ import annotations

import sys

import typer

from repsep.cli.analyze import analyze_cmd
from repsep.cli.corrupt import corrupt_cmd, corruptions_app
from repsep.cli.data import data_app
from repsep.cli.evaluate import eval_cmd
from repsep.cli.models import models_app
from repsep.cli.models_import import import_app
from repsep.cli.report import report_cmd
from repsep.cli.train import train_cmd
from repsep.errors import EXIT_BAD_INPUT, UserError

app = typer.Typer(
    name="repsep-bench",
    help="Baseline ViT vs RSSeg segmenters: train, evaluate, corrupt, analyse over-smoothness, report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(data_app, name="data")
models_app.add_typer(import_app, name="import")
app.add_typer(models_app, name="models")
app.add_typer(corruptions_app, name="corruptions")
app.command("train")(train_cmd)
app.command("eval")(eval_cmd)
app.command("corrupt")(corrupt_cmd)
app.command("analyze")(analyze_cmd)
app.command("report")(report_cmd)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app; a UserError becomes one stderr line and exit code 2."""
    try:
        app(args=argv, prog_name="repsep-bench")
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
