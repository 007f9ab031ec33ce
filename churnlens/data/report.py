"""What validation found and repaired: per-table counts, date ranges and repairs.

A :class:`ValidationReport` is returned beside the validated tables by
:func:`churnlens.data.load_tables` and :func:`churnlens.data.validate_tables`. It renders as
plain text (:meth:`ValidationReport.to_text`), as rich tables (``console.print(report)``) and
as a JSON-ready dict (:meth:`ValidationReport.to_dict`, for MLflow).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from rich.console import Group
from rich.table import Table
from rich.text import Text

#: Repair kinds, in the order they are applied.
REPAIR_KINDS: dict[str, str] = {
    "missing_customer_id": "rows without customer_id dropped",
    "duplicate_rows": "exact duplicate rows dropped (first kept)",
    "after_data_end": "events after the data end dropped",
    "ignored_columns": "columns outside the contract ignored",
    "unknown_customers": "customers with events but absent from customers: added with missing attributes",
    "customers_without_events": "customers with no event in any table: kept (never active, never scored)",
}


@dataclass(frozen=True)
class Repair:
    """One soft problem found in a table and what was done about it.

    Parameters
    ----------
    table : str
        Table the problem was found in.
    kind : str
        One of :data:`REPAIR_KINDS`.
    rows_affected : int
        Rows dropped or added (customers for ``unknown_customers`` and
        ``customers_without_events``; columns for ``ignored_columns``).
    detail : str
        One sentence saying what was found and done.
    example_rows : tuple of str
        Up to five examples, rendered (``"row 12: customer_id='c1', ..."`` or customer ids).
    """

    table: str
    kind: str
    rows_affected: int
    detail: str
    example_rows: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form."""
        return {
            "table": self.table,
            "kind": self.kind,
            "rows_affected": int(self.rows_affected),
            "detail": self.detail,
            "example_rows": list(self.example_rows),
        }


@dataclass(frozen=True)
class TableSummary:
    """Row counts and date range of one validated table.

    ``rows_in`` counts rows as read; ``rows_out`` rows after repairs. ``start``/``end`` are
    the first and last event timestamps (None for ``customers``).
    """

    name: str
    source: str
    rows_in: int
    rows_out: int
    customers: int
    start: pd.Timestamp | None = None
    end: pd.Timestamp | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form; timestamps as ISO 8601 strings."""
        return {
            "source": self.source,
            "rows_in": int(self.rows_in),
            "rows_out": int(self.rows_out),
            "customers": int(self.customers),
            "start": _iso(self.start),
            "end": _iso(self.end),
        }


@dataclass
class ValidationReport:
    """Everything validation did to the input tables.

    Parameters
    ----------
    tables : dict of str to TableSummary
        One summary per present table, in contract order.
    repairs : list of Repair
        Soft problems repaired (or noted), in the order found.
    data_end : pandas.Timestamp or None
        The data end events were cut at, when one was given.
    """

    tables: dict[str, TableSummary] = field(default_factory=dict)
    repairs: list[Repair] = field(default_factory=list)
    data_end: pd.Timestamp | None = None

    @property
    def start(self) -> pd.Timestamp | None:
        """Earliest event timestamp over all tables."""
        starts = [s.start for s in self.tables.values() if s.start is not None]
        return min(starts) if starts else None

    @property
    def end(self) -> pd.Timestamp | None:
        """Latest event timestamp over all tables."""
        ends = [s.end for s in self.tables.values() if s.end is not None]
        return max(ends) if ends else None

    def repairs_of(self, kind: str) -> list[Repair]:
        """Return the repairs of one kind."""
        return [r for r in self.repairs if r.kind == kind]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, e.g. for ``mlflow.log_dict``."""
        return {
            "tables": {name: s.to_dict() for name, s in self.tables.items()},
            "start": _iso(self.start),
            "end": _iso(self.end),
            "data_end": _iso(self.data_end),
            "repairs": [r.to_dict() for r in self.repairs],
        }

    def to_text(self) -> str:
        """Plain-text rendering: one line per table, then one block per repair."""
        lines = [f"Data from {_day(self.start)} to {_day(self.end)}"]
        if self.data_end is not None:
            lines.append(f"Events after {self.data_end.isoformat()} dropped")
        width = max(len(n) for n in self.tables) if self.tables else 0
        for name, s in self.tables.items():
            span = f"  {_day(s.start)} .. {_day(s.end)}" if s.start is not None else ""
            lines.append(
                f"  {name:<{width}}  {s.rows_in:>12,} rows in  {s.rows_out:>12,} rows out"
                f"  {s.customers:>10,} customers{span}  ({s.source})"
            )
        if not self.repairs:
            lines.append("No repairs needed.")
        else:
            lines.append("Repairs and notices:")
            for r in self.repairs:
                lines.append(f"  - {r.table}: {r.detail}")
                lines.extend(f"      {ex}" for ex in r.example_rows)
        return "\n".join(lines)

    def __rich__(self) -> Group:
        """Rich rendering used by the CLI (``console.print(report)``)."""
        counts = Table(
            title=f"Input tables: data from {_day(self.start)} to {_day(self.end)}",
            caption="read from " + ", ".join(s.source for s in self.tables.values()),
        )
        counts.add_column("table", overflow="fold")
        for col in ("rows in", "rows out", "customers"):
            counts.add_column(col, justify="right", no_wrap=True)
        counts.add_column("from", no_wrap=True)
        counts.add_column("to", no_wrap=True)
        for name, s in self.tables.items():
            counts.add_row(
                name,
                f"{s.rows_in:,}",
                f"{s.rows_out:,}",
                f"{s.customers:,}",
                "" if s.start is None else s.start.strftime("%Y-%m-%d"),
                "" if s.end is None else s.end.strftime("%Y-%m-%d"),
            )
        parts: list[Any] = [counts]
        if self.data_end is not None:
            parts.append(Text(f"Events after {self.data_end.isoformat()} dropped."))
        if not self.repairs:
            parts.append(Text("No repairs needed.", style="green"))
        else:
            parts.append(Text("Repairs and notices", style="bold"))
            for r in self.repairs:
                line = Text("  • ")
                line.append(r.table, style="bold")
                line.append(f" [{r.kind}] ", style="cyan")
                line.append(r.detail)
                parts.append(line)
                parts.extend(Text(f"      {ex}", style="dim") for ex in r.example_rows)
        return Group(*parts)


def _iso(ts: pd.Timestamp | None) -> str | None:
    return None if ts is None else ts.isoformat()


def _day(ts: pd.Timestamp | None) -> str:
    if ts is None:
        return "-"
    return ts.strftime("%Y-%m-%d %H:%M:%S") if ts != ts.normalize() else ts.strftime("%Y-%m-%d")
