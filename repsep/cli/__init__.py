"""The ``repsep-bench`` command line. Thin: parse options, call library functions, print results.

One module per command group (``data``, ``models``, ``train``, ``evaluate``, ``corrupt``, ``score``, ``shift``,
``analyze``, ``report``); this module assembles them into one typer app. Every command accepts ``--help``;
``--quiet`` (before the command) turns progress bars off. :func:`main` turns every bad input into one line
``error: ...`` on stderr and exit code 2: a :class:`repsep.errors.UserError`, a click usage error (bad or missing
option value, unknown option) and an uncaught ``OSError`` (disk full, over-long path, permission denied: the line
names the path). SIGTERM is handled like Ctrl-C: the command unwinds, so temporary files and half-built results
are removed (exit code 143). Runs under ``torchrun`` as ``python -m repsep.cli ...``.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer

try:  # typer >= 0.2x vendors click
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - older typer on click
    from click import exceptions as click_errors

from repsep.cli.analyze import analyze_cmd
from repsep.cli.corrupt import corrupt_cmd, corruptions_app
from repsep.cli.data import data_app
from repsep.cli.evaluate import eval_cmd
from repsep.cli.models import models_app
from repsep.cli.models_import import import_app
from repsep.cli.options import bound_numeric_options, reflow_help
from repsep.cli.report import report_cmd
from repsep.cli.score import score_cmd
from repsep.cli.shift import shift_cmd
from repsep.cli.study import study_cmd
from repsep.cli.train import train_cmd
from repsep.errors import EXIT_BAD_INPUT, UserError
from repsep.progress import QUIET_ENV, print_error

EXIT_SIGTERM = 128 + signal.SIGTERM
_NO_ARGS = getattr(click_errors, "NoArgsIsHelpError", ())
_ABORT = (getattr(click_errors, "Abort", typer.Abort), typer.Abort)

app = typer.Typer(
    name="repsep-bench",
    help="Baseline ViT vs RSSeg segmenters: train, evaluate, corrupt, analyse over-smoothness, report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def _global_options(
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars (they are also off when stderr is "
                               "not a terminal). Give it before the command: repsep-bench --quiet eval ..."),
) -> None:
    if quiet:
        os.environ[QUIET_ENV] = "1"


app.add_typer(data_app, name="data")
models_app.add_typer(import_app, name="import")
app.add_typer(models_app, name="models")
app.add_typer(corruptions_app, name="corruptions")
app.command("train")(train_cmd)
app.command("eval")(eval_cmd)
app.command("corrupt")(corrupt_cmd)
app.command("shift")(shift_cmd)
app.command("analyze")(analyze_cmd)
app.command("report")(report_cmd)
app.command("score")(score_cmd)
app.command("study")(study_cmd)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def click_message(e: Exception) -> str:
    """One line for a click error: ``--num-images: 0 is not in the range x>=1.``, ``No such option: --foo ...``."""
    param = getattr(e, "param", None)
    if (isinstance(e, click_errors.BadParameter) and not isinstance(e, click_errors.MissingParameter)
            and param is not None):
        name = next((o for o in param.opts if o.startswith("--")), None) or param.human_readable_name
        return _one_line(f"{name}: {e.message}")
    message = e.format_message()
    ctx = getattr(e, "ctx", None)
    if isinstance(e, click_errors.UsageError) and ctx is not None:
        message = f"{message} (see `{ctx.command_path} --help`)"
    return _one_line(message)


def os_error_message(e: OSError) -> str:
    """``PATH: No space left on device`` (the path the OS refused, when it says which)."""
    reason = e.strerror or str(e)
    return _one_line(f"{e.filename}: {reason}" if e.filename is not None else f"cannot read or write: {reason}")


def _ignore_signal(signum: int, frame: object) -> None:
    pass


def _on_sigterm(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM kills at once
    # The DataLoader's SIGCHLD handler raises when a worker died by a signal: with a SIGTERM to the whole process
    # group (timeout, kill -- -PGID, a cluster stopping the job) the workers die with us, which is the stop itself,
    # not an error to report while it unwinds. (A handler that does nothing, not SIG_DFL: a SIGCHLD already pending
    # would make Python raise "ignored due to race condition".)
    signal.signal(signal.SIGCHLD, _ignore_signal)
    raise SystemExit(EXIT_SIGTERM)


@contextmanager
def _process_state() -> Iterator[None]:
    """SIGTERM unwinds like Ctrl-C while the command runs; the handler and ``--quiet`` are undone afterwards (for
    in-process callers such as the tests)."""
    quiet = os.environ.get(QUIET_ENV)
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread: leave signals alone
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if quiet is None:
            os.environ.pop(QUIET_ENV, None)
        else:
            os.environ[QUIET_ENV] = quiet


def build_command() -> typer.core.TyperGroup:
    """The click command of :data:`app` as ``main`` runs it: bounded numeric options, reflowed help."""
    return reflow_help(bound_numeric_options(typer.main.get_command(app)))


def main(argv: list[str] | None = None) -> None:
    """Console entry point: run the app and exit (always raises SystemExit); bad input is one stderr line, exit 2."""
    command = build_command()
    with _process_state():
        try:
            code = command.main(args=argv, prog_name="repsep-bench", standalone_mode=False)
        except UserError as e:
            print_error(_one_line(str(e)))
            code = EXIT_BAD_INPUT
        except _NO_ARGS as e:
            e.show()
            code = EXIT_BAD_INPUT
        except click_errors.ClickException as e:
            print_error(click_message(e))
            code = EXIT_BAD_INPUT
        except _ABORT:
            print_error("aborted")
            code = 1
        except OSError as e:
            print_error(os_error_message(e))
            code = EXIT_BAD_INPUT
    sys.exit(code if isinstance(code, int) else 0)
