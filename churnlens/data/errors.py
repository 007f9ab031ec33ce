"""Exceptions raised for bad input tables."""

from __future__ import annotations

from collections.abc import Sequence

from churnlens.errors import InputError


class DataValidationError(InputError):
    """A hard problem in an input table: it names the table, the column and offending rows.

    Parameters
    ----------
    table : str
        Table name (``purchases``, ``customers`` ...).
    column : str or None
        Column at fault, or None when the problem is with the table as a whole.
    problem : str
        What is wrong, as a sentence fragment ("is not a valid timestamp").
    rows : sequence of str, optional
        Up to five offending rows, already rendered (e.g. ``"row 12: 'yesterday'"``).
    """

    def __init__(
        self,
        table: str,
        column: str | None,
        problem: str,
        rows: Sequence[str] = (),
    ) -> None:
        self.table = table
        self.column = column
        self.problem = problem
        self.rows = list(rows)[:5]
        where = f"table '{table}'" + (f", column '{column}'" if column else "")
        message = f"{where}: {problem}"
        if self.rows:
            message += "; offending rows: " + "; ".join(self.rows)
        super().__init__(message)
