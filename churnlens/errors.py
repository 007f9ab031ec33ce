"""The one exception type for bad input.

Anything the user can fix — a bad table, option, config value, model URI or request — raises
:class:`InputError` (or a subclass, such as :class:`churnlens.data.DataValidationError`); the
CLI turns it into a one-line message and exit status 2. Any other exception is a bug or an
environment failure: exit status 1 (traceback with ``--debug``).
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input the user can fix: the message says what is wrong and where."""


class SettingError(InputError):
    """A setting with a value it cannot take; names the setting, so the message can use the
    name the user wrote (``--lang`` on the command line, ``[serving] lang`` in TOML).

    Parameters
    ----------
    setting : str
        Field name (``lang``).
    problem : str
        What is wrong, after the name ("must be en or fr, got 'de'").
    """

    def __init__(self, setting: str, problem: str) -> None:
        self.setting, self.problem = setting, problem
        super().__init__(f"{setting} {problem}")

    def as_option(self) -> InputError:
        """The same error worded for the command-line option of the setting."""
        return InputError(f"--{self.setting.replace('_', '-')} {self.problem}")
class MissingInputError(InputError, FileNotFoundError):
    """An input path the user named does not exist (still a FileNotFoundError for callers)."""
