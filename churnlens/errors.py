"""The one exception type for bad input.

Anything the user can fix — a bad table, option, config value, model URI or request — raises
:class:`InputError` (or a subclass, such as :class:`churnlens.data.DataValidationError`); the
CLI turns it into a one-line message and exit status 2. Any other exception is a bug or an
environment failure: exit status 1 (traceback with ``--debug``).
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input the user can fix: the message says what is wrong and where."""


class MissingInputError(InputError, FileNotFoundError):
    """An input path the user named does not exist (still a FileNotFoundError for callers)."""
