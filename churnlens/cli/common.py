"""Shared CLI plumbing: one error handler, one console."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console

from churnlens.data.errors import DataValidationError

console = Console()
err_console = Console(stderr=True)

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
            raise fail(str(exc).strip("'\"")) from None

    return wrapper  # type: ignore[return-value]
