"""Shared CLI plumbing: one error handler, one console."""

from __future__ import annotations

import functools
import os
import traceback
from collections.abc import Callable
from enum import Enum
from typing import Annotated, Any, TypeVar

import click
import typer
from rich.console import Console
from rich.markup import escape

from churnlens.engine.cluster import ENGINES
from churnlens.errors import InputError
from churnlens.i18n import LANGS
from churnlens.warehouse.uri import mask_uri

#: Width when writing to a file or pipe (CI logs, `| tee`): rich would otherwise squeeze
#: tables into 80 columns and truncate ids and dates. COLUMNS still wins when set.
PIPE_WIDTH = 120


def _console(stderr: bool = False) -> Console:
    probe = Console(stderr=stderr)
    if probe.is_terminal or os.environ.get("COLUMNS"):
        return probe
    return Console(stderr=stderr, width=PIPE_WIDTH)


console = _console()
err_console = _console(stderr=True)

F = TypeVar("F", bound=Callable[..., Any])

# Choices of the options shared by several commands, as enums so that --help and shell
# completion list them; built from the tuples the library checks against (one list each).
Lang = Enum("Lang", {name: name for name in LANGS}, type=str)
Engine = Enum("Engine", {name: name for name in ENGINES}, type=str)
#: uvicorn's log levels.
LogLevel = Enum("LogLevel", {name: name for name in ("critical", "error", "warning", "info", "debug", "trace")}, type=str)


def choice(value: Enum | None) -> str | None:
    """The plain string of an enum option (None stays None)."""
    return None if value is None else str(value.value)

#: Exit status for bad input (bad data, bad options, bad config).
EXIT_BAD_INPUT = 2
#: Exit status for anything else: a bug, or the environment (disk full, permission denied ...).
EXIT_FAILURE = 1
#: Set to show tracebacks (same as the global ``--debug`` option).
DEBUG_ENV = "CHURNLENS_DEBUG"

TRACKING_HELP = "MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)."
#: ``--tracking-uri`` of every command that reads or writes MLflow.
TrackingUriOption = Annotated[str | None, typer.Option(help=TRACKING_HELP)]
#: ``--model`` of the commands that score with the registered champion by default.
ModelUriOption = Annotated[str | None, typer.Option(help="MLflow model URI (default models:/churnlens@champion).")]


def fail(message: str) -> typer.Exit:
    """Print an error to stderr (passwords of URIs masked) and return the Exit to raise (status 2)."""
    err_console.print(f"[bold red]error:[/] {escape(mask_uri(message))}", highlight=False, soft_wrap=True)
    return typer.Exit(EXIT_BAD_INPUT)


# ``--debug`` of the invocation running now; set by every invocation (a flag in the process's
# environment would outlive it when the CLI is invoked in process, e.g. by tests or a notebook)
_debug_option = False


def set_debug_option(value: bool) -> None:
    """Record the ``--debug`` option of the invocation starting now (the app's callback)."""
    global _debug_option
    _debug_option = bool(value)


def debug_enabled() -> bool:
    """True when tracebacks are asked for: ``churnlens --debug`` or ``CHURNLENS_DEBUG=1``."""
    return _debug_option or os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def _os_message(exc: OSError) -> str:
    """``cannot write /x/campaign.csv: Is a directory``: the path first, then the system's reason."""
    reason = exc.strerror or _one_line(exc)
    paths = [str(p) for p in (exc.filename, exc.filename2) if p is not None]
    return f"{reason}: {' -> '.join(paths)}" if paths else reason


def handle_errors(func: F) -> F:
    """One-line errors instead of tracebacks.

    - :class:`~churnlens.errors.InputError` (bad data, option, config, model URI): the message,
      exit status 2;
    - OSError (a path that cannot be read or written): the reason and the path, exit status 1;
    - anything else is a bug: its type and message, exit status 1.

    With ``--debug`` (or ``CHURNLENS_DEBUG=1``) the traceback is printed as well.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException, KeyboardInterrupt):
            raise  # click's own: usage errors and exits keep their meaning
        except Exception as exc:  # noqa: BLE001 - the one place every error becomes an exit status
            if debug_enabled():
                err_console.print(mask_uri(traceback.format_exc()), highlight=False, markup=False, soft_wrap=True)
            if isinstance(exc, InputError):
                raise fail(str(exc)) from None
            if isinstance(exc, OSError):
                message = _os_message(exc)
            else:
                message = f"internal error ({type(exc).__name__}): {_one_line(exc)}"
                if not debug_enabled():
                    message += f" — run with --debug (or {DEBUG_ENV}=1) for the traceback"
            err_console.print(f"[bold red]error:[/] {escape(mask_uri(message))}", highlight=False, soft_wrap=True, markup=True)
            raise typer.Exit(EXIT_FAILURE) from None

    return wrapper  # type: ignore[return-value]
