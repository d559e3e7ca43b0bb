"""The ``repsep-bench`` command line. Thin: parse options, call library functions, print results.

Every command accepts ``--help``. Bad input raises :class:`repsep.errors.UserError`, which :func:`main` turns
into one line on stderr and exit code 2. Runs under ``torchrun`` as ``python -m repsep.cli ...``.
"""

from __future__ import annotations

import sys

import typer

from repsep.errors import EXIT_BAD_INPUT, UserError

app = typer.Typer(
    name="repsep-bench",
    help="Baseline ViT vs RSSeg segmenters: train, evaluate, corrupt, analyse over-smoothness, report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Generate and check datasets (SynthCity, Cityscapes, ADE20K).", no_args_is_help=True)
models_app = typer.Typer(help="List the model registry and inspect a model's size and cost.", no_args_is_help=True)
corruptions_app = typer.Typer(help="The corruption suite: list it, write corrupted datasets to disk.",
                              no_args_is_help=True)
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")
app.add_typer(corruptions_app, name="corruptions")


# ---- data commands (repsep.data) ----------------------------------------------------------------------------

# ---- models commands (repsep.models) ------------------------------------------------------------------------

# ---- train / eval (repsep.engine) ---------------------------------------------------------------------------

# ---- corruptions / corrupt (corruptions) --------------------------------------------------------------------

# ---- analyze (analysis) -------------------------------------------------------------------------------------

# ---- report (reports) ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app; a UserError becomes one stderr line and exit code 2."""
    try:
        app(args=argv, prog_name="repsep-bench")
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


if __name__ == "__main__":
    main()
