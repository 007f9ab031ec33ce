"""Exceptions raised for bad input tables."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from churnlens.errors import InputError

#: Offending rows shown per column (the count of all of them is always given).
MAX_ROWS_SHOWN = 20


@dataclass(frozen=True)
class Problem:
    """One hard problem of an input table: the table, the column, what is wrong and where.

    Parameters
    ----------
    table : str
        Table name (``purchases``, ``customers`` ...).
    column : str or None
        Column at fault, or None when the problem is with the table as a whole.
    problem : str
        What is wrong, as a sentence fragment ("is not a valid timestamp").
    rows : tuple of str
        Offending rows, already rendered (e.g. ``"row 12: 'yesterday'"``).
    """

    table: str
    column: str | None
    problem: str
    rows: tuple[str, ...] = field(default=())

    def __str__(self) -> str:
        where = f"table '{self.table}'" + (f", column '{self.column}'" if self.column else "")
        text = f"{where}: {self.problem}"
        if self.rows:
            text += "; offending rows: " + "; ".join(self.rows)
        return text


class DataValidationError(InputError):
    """Hard problems in the input tables, each naming the table, the column and offending rows.

    Built from one problem (``DataValidationError(table, column, problem, rows)``) or from all
    the problems validation found (:meth:`of`). ``table``, ``column``, ``problem`` and ``rows``
    are those of the first problem; ``problems`` holds every one.

    Parameters
    ----------
    table : str
        Table name (``purchases``, ``customers`` ...).
    column : str or None
        Column at fault, or None when the problem is with the table as a whole.
    problem : str
        What is wrong, as a sentence fragment ("is not a valid timestamp").
    rows : sequence of str, optional
        Up to :data:`MAX_ROWS_SHOWN` offending rows, already rendered (e.g. ``"row 12: 'yesterday'"``).
    """

    def __init__(self, table: str, column: str | None, problem: str, rows: Sequence[str] = ()) -> None:
        first = Problem(table, column, problem, tuple(rows)[:MAX_ROWS_SHOWN])
        self.problems: list[Problem] = [first]
        self.table, self.column, self.problem, self.rows = table, column, problem, list(first.rows)
        super().__init__(str(first))

    @classmethod
    def of(cls, problems: Sequence[Problem]) -> DataValidationError:
        """One error that lists every problem (one per line when there are several)."""
        if not problems:
            raise ValueError("a DataValidationError needs at least one problem")
        first = problems[0]
        error = cls(first.table, first.column, first.problem, first.rows)
        error.problems = list(problems)
        if len(problems) > 1:
            lines = "\n".join(f"- {p}" for p in problems)
            error.args = (f"{len(problems)} problems in the input tables:\n{lines}",)
        return error
