"""Shared CLI plumbing: one error handler, one console."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from churnlens.data.errors import DataValidationError

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

#: Exit status for bad input (bad data, bad options, bad config).
EXIT_BAD_INPUT = 2


def fail(message: str) -> typer.Exit:
    """Print an error to stderr and return the Exit to raise (status 2)."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(EXIT_BAD_INPUT)


def handle_errors(func: F) -> F:
    """Turn input errors into a one-line message and exit status 2, without a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (DataValidationError, ValueError, FileNotFoundError, KeyError) as exc:
            # str(KeyError) is the repr of its key: show the key itself. Other messages are kept
            # whole (they may end with a quoted value, e.g. "row 2: 'abc'").
            message = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
            raise fail(message) from None

    return wrapper  # type: ignore[return-value]
