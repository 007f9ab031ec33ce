"""Validate raw input tables against the contract (DESIGN §2), type them and repair soft problems.

Values are typed by one of two engines, then checked by one set of rules
(:func:`_check_values`, :func:`_only_allowed`) and repaired by the same functions:

- the column engine (:func:`_coerce_table`; files, the warehouse, any large frame) is vectorised
  over whole columns with pandas, Arrow and numpy: no Python loop runs per row or per customer,
  and a check costs a mask only when a cheap reduction (min/max, lengths) says a row may fail it;
- the rows engine (:func:`_coerce_few_rows`; events posted to the API) types a few rows of JSON
  values one by one, without pandas' fixed cost per column operation, in the plain forms whose
  meaning is the column engine's (any other value sends its table to the column engine). Both
  give the same tables, reports and errors (``tests/test_validation_engines.py``).

Hard problems are collected by one helper, :class:`_Problems`, which names the table,
the column and up to 20 offending rows per column; every problem of every table is found
before one :class:`~churnlens.data.DataValidationError` lists them all. Rows
are numbered from 1 in the order they were read (the header line of a CSV file is not
counted, so data row ``n`` is on line ``n + 1``).

Typing rules (see :mod:`churnlens.data.tables`):

- ``id`` and ``text`` columns -> ``pd.StringDtype()`` (``"string"``, missing = ``pd.NA``);
  empty strings count as missing; integral numbers are written without ``.0``;
- ``category`` columns (low-cardinality text: channels, categories, event types, tiers,
  topics) -> the same text as pandas ``category`` whose categories are the distinct values
  present, sorted, of ``string`` dtype: 1-2 byte codes per row instead of a string each
  (at 42M purchases, ~40 MB instead of ~500 MB per column);
- ``time`` -> ``datetime64[us]`` naive UTC; tz-aware values are converted to UTC, naive ones
  are taken as UTC; strings must be ISO 8601 (``2024-05-02``, ``2024-05-02 10:00:00``,
  ``2024-05-02T10:00:00+02:00``): other formats such as ``05/02/2024`` are ambiguous and refused;
- ``number`` -> ``float64`` (finite, within the column's range);
- ``flag`` -> nullable ``boolean``; accepted: true/false, 1/0, yes/no (any case), missing;
- ``customers``' extra columns are typed by content: booleans -> ``boolean``,
  numbers -> ``float64``, timestamps -> ``datetime64[us]``, anything else -> ``string``.

Pandera is not used: the checks needed are a handful of vectorised masks, and turning
pandera's failure-case frames into the required "table, column, row n: value" message
costs more code and time than the masks themselves.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from churnlens.data.bounds import AMOUNT_COLUMNS, DEFAULT_BOUNDS, InputBounds
from churnlens.data.errors import MAX_ROWS_SHOWN, DataValidationError, Problem
from churnlens.data.report import Repair, TableSummary, ValidationReport
from churnlens.data.schema import TABLE_SPECS, ColumnKind, ColumnSpec, TableSpec
from churnlens.data.tables import EVENT_TABLES, TABLE_NAMES, Tables, time_bounds

#: How values are typed (see :func:`validate_tables`).
Engine = Literal["auto", "columns", "rows"]
#: pandas dtype of ids and text columns.
STRING_DTYPE = pd.StringDtype()
#: dtype of every timestamp column.
TIME_DTYPE = "datetime64[us]"

_MAX_SHOWN = 5
_TRUE_WORDS = ["true", "1", "yes", "1.0"]
_FALSE_WORDS = ["false", "0", "no", "0.0"]
#: Words that mean "missing" in number, timestamp and flag columns (never in ids or text).
_NULL_WORDS = ["na", "n/a", "nan", "nat", "null", "none"]
_NAT = np.iinfo(np.int64).min  # NaT in a datetime64 column's int64 view
_ISO_HINT = "expected ISO 8601 such as 2024-05-02, 2024-05-02 10:00:00 or 2024-05-02T10:00:00+02:00"


# --------------------------------------------------------------------------- public API


def validate_tables(
    raw: Mapping[str, pd.DataFrame | None],
    *,
    columns: Mapping[str, Mapping[str, str]] | None = None,
    data_end: pd.Timestamp | str | None = None,
    drop_missing_customer: bool = False,
    bounds: InputBounds | None = None,
    now: pd.Timestamp | str | None = None,
    engine: Engine = "auto",
) -> tuple[Tables, ValidationReport]:
    """Validate tables already in memory (e.g. events posted to the API).

    Parameters
    ----------
    raw : mapping of str to DataFrame
        Raw frames by table name (``purchases`` required; None values are ignored).
    columns : mapping, optional
        Per table, user column name -> contract column name (``ChurnConfig.columns``).
    data_end : Timestamp or str, optional
        Events strictly after it are dropped and reported. tz-aware values are converted
        to UTC; naive ones are taken as UTC.
    drop_missing_customer : bool, default False
        Drop (and report) event rows without a customer_id instead of raising.
    bounds : InputBounds, optional
        Allowed time range and largest amount (default :data:`~churnlens.data.bounds.DEFAULT_BOUNDS`:
        1900-01-01 to the load time + 1 day, amounts up to 1e12 in absolute value).
    now : Timestamp or str, optional
        The load time the time bound is counted from; default the clock.
    engine : {"auto", "columns", "rows"}
        How values are typed: ``"columns"`` column by column (pandas and Arrow, as for files);
        ``"rows"`` value by value for tables of Python objects (JSON values), falling back to
        columns for any table holding a value outside the simple forms; ``"auto"`` (default)
        rows for tables of at most :data:`FEW_ROWS` rows of Python objects, else columns. The
        rules, repairs, results and errors are the same whichever types them (tested).

    Returns
    -------
    tables : Tables
        Typed, deduplicated tables sorted by (customer_id, timestamp).
    report : ValidationReport
        Row counts, date ranges and the repairs made.

    Raises
    ------
    DataValidationError
        On any hard problem, naming the table, the column and up to five offending rows.
    """
    present = {name: df for name, df in raw.items() if df is not None}
    for name in present:
        if name not in TABLE_SPECS:
            raise DataValidationError(name, None, f"is not a known table; known tables: {', '.join(TABLE_NAMES)}")
    columns = check_column_mapping(columns)
    frames: dict[str, pd.DataFrame] = {}
    ignored: dict[str, list[str]] = {}
    for name in TABLE_NAMES:
        if name not in present:
            continue
        df = present[name]
        names = [str(c) for c in df.columns]
        rename, keep, ignored[name] = resolve_columns(name, names, columns.get(name))
        frame = df if names == list(df.columns) else df.set_axis(names, axis=1)
        frame = frame if keep == names else frame[keep]
        frames[name] = frame.rename(columns=rename) if rename else frame
    return validate_frames(
        frames,
        sources={name: "in memory" for name in frames},
        ignored=ignored,
        data_end=data_end,
        drop_missing_customer=drop_missing_customer,
        bounds=bounds,
        now=now,
        engine=engine,
    )


def check_column_mapping(columns: Mapping[str, Mapping[str, str]] | None) -> dict[str, dict[str, str]]:
    """Check a column mapping names known tables only, and return it as plain dicts."""
    columns = {t: dict(m) for t, m in (columns or {}).items()}
    for table in columns:
        if table not in TABLE_SPECS:
            raise DataValidationError(
                table, None, f"[columns.{table}] names no known table; known tables: {', '.join(TABLE_NAMES)}"
            )
    return columns


def resolve_columns(
    table: str, names: Sequence[str], mapping: Mapping[str, str] | None
) -> tuple[dict[str, str], list[str], list[str]]:
    """Apply a user -> contract column mapping to the column names of one raw table.

    Parameters
    ----------
    table : str
        Contract table name.
    names : sequence of str
        Column names as found in the file or frame.
    mapping : mapping of str to str, optional
        User column name -> contract column name.

    Returns
    -------
    rename : dict
        User name -> contract name, for the mapped columns.
    keep : list of str
        Names (as found) of the columns to read: contract columns, and for ``customers``
        every column.
    ignored : list of str
        Names (as found) of the columns outside the contract, not read.

    Raises
    ------
    DataValidationError
        A mapped column is not in the table, maps to no contract column, two columns map
        to the same name, or a mapped column collides with one already named like its target.
    """
    spec = TABLE_SPECS[table]
    mapping = dict(mapping or {})
    found = list(names)
    dup_names = [n for n, k in Counter(found).items() if k > 1]
    if dup_names:
        raise DataValidationError(table, dup_names[0], "appears more than once in the header")
    for user, contract in mapping.items():
        if user not in found:
            raise DataValidationError(
                table,
                user,
                f"is mapped to '{contract}' in [columns.{table}] but the table has no such column; "
                f"columns found: {', '.join(found)}",
            )
        if not spec.open_columns and spec.column(contract) is None:
            known = ", ".join(c.name for c in spec.columns)
            raise DataValidationError(
                table,
                user,
                f"is mapped to '{contract}', which is not a column of {table}; known columns: {known}",
            )
    targets = Counter(mapping.values())
    for contract, k in targets.items():
        if k > 1:
            users = [u for u, c in mapping.items() if c == contract]
            raise DataValidationError(table, contract, f"is the target of several mapped columns: {', '.join(users)}")
    for name in found:
        if name not in mapping and name in targets:
            user = next(u for u, c in mapping.items() if c == name)
            raise DataValidationError(
                table, name, f"is present and '{user}' is also mapped to it; drop one or change the mapping"
            )
    final = {mapping.get(n, n) for n in found}
    for required in spec.required_columns:
        if required not in final:
            raise DataValidationError(table, required, f"is required but missing; columns found: {', '.join(found)}")
    rename = {u: c for u, c in mapping.items() if u != c}
    keep = [n for n in found if spec.open_columns or spec.column(mapping.get(n, n)) is not None]
    ignored = [n for n in found if n not in keep]
    return rename, keep, ignored


def validate_frames(
    frames: Mapping[str, pd.DataFrame],
    *,
    sources: Mapping[str, str],
    ignored: Mapping[str, Sequence[str]] | None = None,
    data_end: pd.Timestamp | str | None = None,
    drop_missing_customer: bool = False,
    bounds: InputBounds | None = None,
    now: pd.Timestamp | str | None = None,
    engine: Engine = "auto",
) -> tuple[Tables, ValidationReport]:
    """Validate frames whose columns already carry contract names (after the mapping).

    This is the shared core of :func:`validate_tables` and :func:`churnlens.data.load_tables`;
    see :func:`validate_tables` for parameters. ``sources`` says where each table came from
    and ``ignored`` lists the columns not read, both for the report.
    """
    if "purchases" not in frames:
        raise DataValidationError("purchases", None, "is required but missing")
    end = None if data_end is None else _naive_utc(pd.Timestamp(data_end))
    limits = _Limits.of(bounds or DEFAULT_BOUNDS, now)
    report = ValidationReport(data_end=end)
    rows_in: dict[str, int] = {}
    ids_seen: dict[str, pa.Array] = {}
    done: dict[str, _TableResult] = {}
    # tables are taken in the order ``frames`` gives them (a reader hands the largest out first,
    # so the read of the next overlaps the work on this one); what is reported does not depend
    # on that order: problems and repairs are put in contract order below
    for name in [n for n in frames if n in TABLE_SPECS]:
        spec = TABLE_SPECS[name]
        df = frames[name]
        if not (isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1):
            df = df.reset_index(drop=True)
        rows_in[name] = len(df)
        result = done[name] = _TableResult(_Problems(), [])
        if len(df) == 0:
            result.problems.add(name, None, "has no rows")
            result.typing_problems = 1
            continue
        skipped = list((ignored or {}).get(name, ()))
        if skipped:
            result.repairs.append(
                Repair(
                    name,
                    "ignored_columns",
                    len(skipped),
                    f"columns outside the contract ignored: {', '.join(skipped)}",
                )
            )
        typed = _coerce(
            df,
            spec,
            engine=engine,
            allow_missing_id=drop_missing_customer and name in EVENT_TABLES,
            limits=limits,
            repairs=result.repairs,
            problems=result.problems,
        )
        del df
        result.typing_problems = len(result.problems.found)
        if result.problems:  # keep looking for problems in the other tables; repairs are moot
            continue
        if name == "contacts":
            _check_contact_groups(typed, result.problems)
        if name == "customers":
            result.table = _repair_customers(typed, result.repairs, result.problems)
        else:
            result.table, ids_seen[name] = _repair_events(typed, name, end, result.repairs)
    # in contract order: a table's own checks after typing (duplicate customers, contact groups)
    # count only when no table before it had a problem, as when the tables are taken in that order
    problems = _Problems()
    out: dict[str, pd.DataFrame] = {}
    for name in TABLE_NAMES:
        if name not in done:
            continue
        result = done[name]
        found = result.problems.found if not problems else result.problems.found[: result.typing_problems]
        problems.found.extend(found)
        report.repairs.extend(result.repairs)
        if result.table is not None:
            out[name] = result.table
    problems.raise_if_any()
    if len(out["purchases"]) == 0:
        raise DataValidationError("purchases", None, "has no rows left after repairs")
    _reconcile_customers(out, report.repairs, ids_seen)
    tables = Tables(**out)
    spans = {
        name: time_bounds(df["timestamp"]) if "timestamp" in df.columns and len(df) > 0 else (None, None)
        for name, df in out.items()
    }  # one pass per table, for the summaries and the latest event (``Tables.last_event``)
    last_event = max(spans[name][1] for name, df in out.items() if name in EVENT_TABLES and len(df))
    _note_isolated_events(tables, report.repairs, last_event)
    for name, df in out.items():
        first, last = spans[name]
        report.tables[name] = TableSummary(
            name=name,
            source=sources.get(name, "in memory"),
            rows_in=rows_in[name],
            rows_out=len(df),
            customers=len(ids_seen[name]) if name in ids_seen else len(df),  # customers: one row each
            start=first,
            end=last,
        )
    return tables, report


@dataclass
class _TableResult:
    """One table's validation: its problems (the first ``typing_problems`` found while typing it),
    its repairs and the repaired table (None when it had problems)."""

    problems: _Problems
    repairs: list[Repair]
    table: pd.DataFrame | None = None
    typing_problems: int = 0


# --------------------------------------------------------------------------- errors


class _Problems:
    """The hard problems found so far, raised together by :meth:`raise_if_any`.

    Each column shows at most :data:`~churnlens.data.errors.MAX_ROWS_SHOWN` offending rows over
    all its problems; every problem still says how many rows it concerns.
    """

    def __init__(self) -> None:
        self.found: list[Problem] = []
        self._shown: Counter[tuple[str, str | None]] = Counter()

    def __bool__(self) -> bool:
        return bool(self.found)

    def add(self, table: str, column: str | None, problem: str, rows: Sequence[str] = ()) -> None:
        """Record a problem with its rows already rendered (trimmed to the column's share)."""
        room = max(MAX_ROWS_SHOWN - self._shown[(table, column)], 0)
        shown = tuple(rows)[:room]
        self._shown[(table, column)] += len(shown)
        self.found.append(Problem(table, column, problem, shown))

    def rows(self, table: str, column: str, mask: Any, problem: str, values: pd.Series | Sequence[Any]) -> bool:
        """Record ``problem`` when ``mask`` flags any row (True then); ``values`` holds the raw
        values: a Series whose index labels are 0-based positions in the input, or a list in
        input order."""
        mask = np.asarray(mask, dtype=bool)
        if not mask.any():
            return False
        where = np.flatnonzero(mask)
        room = max(MAX_ROWS_SHOWN - self._shown[(table, column)], 0)
        if isinstance(values, pd.Series):
            shown = [f"row {int(values.index[p]) + 1}: {_show(values.iloc[p])}" for p in where[:room]]
        else:
            shown = [f"row {int(p) + 1}: {_show(values[p])}" for p in where[:room]]
        self.add(table, column, f"{problem} ({_count(len(where), 'row')})", shown)
        return True

    def raise_if_any(self) -> None:
        if self.found:
            raise DataValidationError.of(self.found)


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _show(value: Any) -> str:
    if value is None or (not isinstance(value, str) and pd.api.types.is_scalar(value) and pd.isna(value)):
        return "<missing>"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _render_rows(df: pd.DataFrame, limit: int = _MAX_SHOWN) -> tuple[str, ...]:
    """Render the first rows of ``df`` as ``row n: col=value, ...`` (index = 0-based input position)."""
    head = df.head(limit)
    return tuple(
        f"row {int(label) + 1}: " + ", ".join(f"{c}={_show(v)}" for c, v in zip(head.columns, row, strict=True))
        for label, row in zip(head.index, head.itertuples(index=False, name=None), strict=True)
    )


# --------------------------------------------------------------------------- typing


@dataclass(frozen=True)
class _Limits:
    """The bounds of one validation run, resolved (time range counted from its load time)."""

    earliest: pd.Timestamp
    latest: pd.Timestamp
    future_days: float
    max_abs_amount: float

    @classmethod
    def of(cls, bounds: InputBounds, now: pd.Timestamp | str | None) -> _Limits:
        earliest, latest = bounds.time_range(now)
        return cls(earliest, latest, float(bounds.future_days), float(bounds.max_abs_amount))

    @property
    def time_range_us(self) -> tuple[int, int]:
        """``(earliest, latest)`` as microseconds since the epoch (how ``datetime64[us]`` stores them)."""
        return tuple(int(t.as_unit("us").asm8.view("i8")) for t in (self.earliest, self.latest))  # type: ignore[return-value]


def _coerce(df: pd.DataFrame, spec: TableSpec, *, engine: Engine, **kwargs: Any) -> pd.DataFrame:
    """Type one table with the engine asked for (see :func:`validate_tables`)."""
    if engine == "rows" or (engine == "auto" and len(df) <= FEW_ROWS):
        try:
            return _coerce_few_rows(df, spec, **kwargs)
        except _NotFewRows:
            pass
    return _coerce_table(df, spec, **kwargs)


def _coerce_table(
    df: pd.DataFrame,
    spec: TableSpec,
    *,
    allow_missing_id: bool,
    limits: _Limits,
    repairs: list[Repair],
    problems: _Problems,
) -> pd.DataFrame:
    """Check the required columns and convert every column to its contract dtype; hard problems
    are recorded in ``problems`` (the table returned is then only good for finding more)."""
    for col in spec.required_columns:
        if col not in df.columns:
            problems.add(spec.name, col, f"is required but missing; columns found: {', '.join(map(str, df.columns))}")
    typed: dict[str, pd.Series] = {}
    for col in df.columns:
        cspec = spec.column(col)
        kind = cspec.kind if cspec is not None else _infer_kind(df[col])
        typed[col] = _coerce_column(
            spec.name, col, df[col], kind, cspec, allow_missing_id=allow_missing_id, limits=limits, repairs=repairs,
            problems=problems,
        )  # fmt: skip
    order = [c.name for c in spec.columns if c.name in typed] + [c for c in df.columns if spec.column(c) is None]
    return pd.DataFrame({c: typed[c] for c in order}, index=df.index, copy=False)  # no block consolidation copy


def _coerce_column(
    table: str,
    col: str,
    raw: pd.Series,
    kind: ColumnKind,
    cspec: ColumnSpec | None,
    *,
    allow_missing_id: bool,
    limits: _Limits,
    repairs: list[Repair],
    problems: _Problems,
) -> pd.Series:
    """Convert one column; record unconvertible, out-of-range or missing required values in ``problems``."""
    invalid = np.zeros(len(raw), dtype=bool)  # values reported as unreadable, not as missing
    if isinstance(raw.dtype, pd.CategoricalDtype) and kind != "category":
        raw = raw.astype(raw.dtype.categories.dtype)
    if kind == "category":
        out = _to_category(raw)
        if cspec is not None and cspec.allowed is not None:
            out = _only_allowed(table, col, out, cspec.allowed, raw, problems)
    elif kind == "id":
        out = _normalise_ids(table, col, text_column(raw), raw, repairs, problems)
    elif kind == "text":
        out = text_column(raw)
    elif kind == "time":
        if _is_numeric(raw) and problems.rows(
            table, col, raw.notna(), f"holds numbers, not timestamps ({_ISO_HINT})", raw
        ):
            return raw
        out, invalid = _to_time(raw)
    elif kind == "number":
        out, invalid = _to_number(raw)
    else:  # flag
        out, invalid = _to_flag(raw)
    values = out.to_numpy() if kind in ("time", "number") else None
    _check_values(
        table, col, kind, cspec, values, lambda: out.isna().to_numpy(), invalid, raw,
        allow_missing_id=allow_missing_id, limits=limits, problems=problems,
    )  # fmt: skip
    return out


def _check_values(
    table: str,
    col: str,
    kind: ColumnKind,
    cspec: ColumnSpec | None,
    values: np.ndarray | None,
    missing: Callable[[], np.ndarray],
    invalid: np.ndarray,
    raw: pd.Series | Sequence[Any],
    *,
    allow_missing_id: bool,
    limits: _Limits,
    problems: _Problems,
) -> None:
    """The contract's rules on one typed column, in the order their problems are reported: both
    engines (column by column, :func:`_coerce_column`; value by value, :func:`_coerce_few_rows`)
    type the values their way, then call this.

    Parameters
    ----------
    values : ndarray or None
        ``datetime64[us]`` (time) or float64 (number) values; None for other kinds.
    missing : callable
        The mask of missing typed values (asked for only when the column is required).
    invalid : ndarray of bool
        Raw values that could not be read (reported as such, not as missing).
    raw : Series or list
        The raw values, for the messages.
    """
    if kind == "time":
        problems.rows(table, col, invalid, f"is not a valid timestamp ({_ISO_HINT})", raw)
        stamps = values.view("i8")
        if _beyond_time_range(stamps, limits):  # two reductions; the mask only when some value is outside
            earliest, latest = limits.time_range_us
            outside = (stamps != _NAT) & ((stamps < earliest) | (stamps > latest))
            problems.rows(
                table,
                col,
                outside,
                f"is outside the allowed time range {limits.earliest.date()} to {limits.latest:%Y-%m-%d %H:%M} "
                f"(load time + {limits.future_days:g} day(s); a typo in the year?)",
                raw,
            )
    elif kind == "number":
        problems.rows(table, col, invalid, "is not a number", raw)
        # the smallest and largest values say whether any row can fail a bound: masks only then
        lo, hi = (np.fmin.reduce(values), np.fmax.reduce(values)) if len(values) else (np.nan, np.nan)
        if lo == -np.inf or hi == np.inf:
            problems.rows(table, col, np.isinf(values), "is not a finite number", raw)
        if col in AMOUNT_COLUMNS.get(table, ()) and max(-lo, hi) > limits.max_abs_amount:
            problems.rows(
                table,
                col,
                np.abs(values) > limits.max_abs_amount,
                f"is larger than the largest allowed amount ({limits.max_abs_amount:g} in absolute value)",
                raw,
            )
        if cspec is not None and cspec.min_value is not None and lo < cspec.min_value:
            rng = _range_text(cspec)
            problems.rows(table, col, values < cspec.min_value, f"is outside the allowed range {rng}", raw)
        if cspec is not None and cspec.max_value is not None and hi > cspec.max_value:
            rng = _range_text(cspec)
            problems.rows(table, col, values > cspec.max_value, f"is outside the allowed range {rng}", raw)
    elif kind == "flag":
        problems.rows(table, col, invalid, "is not a boolean (expected true/false, 1/0 or yes/no)", raw)
    if cspec is not None and cspec.required and not (kind == "id" and allow_missing_id):
        hint = (
            "; rows without a customer can be dropped with drop_missing_customer=True (CLI: --drop-missing-customer)"
            if kind == "id" and table in EVENT_TABLES
            else ""
        )
        absent = missing()
        if absent.any():
            problems.rows(table, col, absent & ~invalid, f"is missing (the column is required){hint}", raw)


def _beyond_time_range(stamps: np.ndarray, limits: _Limits) -> bool:
    """Whether some timestamp (``datetime64[us]`` as int64) lies outside the allowed range."""
    if len(stamps) == 0:
        return False
    earliest, latest = limits.time_range_us
    lo, hi = stamps.min(), stamps.max()
    if lo == _NAT:  # missing values are the smallest int64: the least of the others
        present = stamps[stamps != _NAT]
        if len(present) == 0:
            return False
        lo = present.min()
    return bool(lo < earliest or hi > latest)


def _normalise_ids(
    table: str, col: str, ids: pd.Series, raw: pd.Series, repairs: list[Repair], problems: _Problems
) -> pd.Series:
    """Ids without surrounding whitespace, in Unicode NFC: ``" C1"``, ``"C1 "`` and ``"C1"`` are one
    customer, and so are "José" typed in NFC and NFD. Changes are reported; an id left empty raises.

    Whitespace is trimmed by Arrow over the whole column; only non-ASCII ids (the only ones that
    can be in another normal form) go through :func:`unicodedata.normalize` (Arrow's
    ``utf8_normalize`` leaves NFD text decomposed here).
    """
    values = pa.array(ids.array)
    trimmed = pc.utf8_trim_whitespace(values)
    # trimming only removes, and ASCII text is already NFC: when no length changed and every id
    # is ASCII, nothing changes (two cheap passes instead of comparing every id)
    kept = pc.equal(pc.binary_length(trimmed), pc.binary_length(values))
    if pc.all(kept).as_py() is not False and pc.all(pc.string_is_ascii(values)).as_py() is not False:
        return ids
    clean = pd.Series(pd.array(trimmed, dtype=STRING_DTYPE), index=ids.index, name=ids.name)
    wide = np.flatnonzero(~pc.fill_null(pc.string_is_ascii(trimmed), True).to_numpy(zero_copy_only=False))
    if len(wide):
        clean.iloc[wide] = [unicodedata.normalize("NFC", v) for v in trimmed.take(pa.array(wide)).to_pylist()]
    changed = (clean != ids).fillna(False).to_numpy(dtype=bool)
    if not changed.any():
        return ids
    problems.rows(
        table, col, changed & (clean == "").fillna(False).to_numpy(dtype=bool), "is blank (only whitespace)", raw
    )
    where = np.flatnonzero(changed)
    repairs.append(
        Repair(
            table,
            "normalised_ids",
            len(where),
            f"{_count(len(where), col + ' value')} with surrounding whitespace or not in Unicode NFC "
            "normalised (stripped, NFC), so the same customer is one id",
            tuple(f"row {int(ids.index[p]) + 1}: {ids.iloc[p]!r} -> {clean.iloc[p]!r}" for p in where[:_MAX_SHOWN]),
        )
    )
    return clean


def _range_text(cspec: ColumnSpec) -> str:
    def fmt(x: float) -> str:
        return f"{x:g}"

    if cspec.max_value is None:
        return f">= {fmt(cspec.min_value or 0)}"
    if cspec.min_value is None:
        return f"<= {fmt(cspec.max_value)}"
    return f"{fmt(cspec.min_value)}-{fmt(cspec.max_value)}"


def _is_numeric(raw: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype)


def _infer_kind(raw: pd.Series) -> ColumnKind:
    """Kind of an extra (open) column, from its dtype or, for object columns, its content."""
    dtype = raw.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        dtype = dtype.categories.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "flag"
    if pd.api.types.is_numeric_dtype(dtype):
        return "number"
    if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_dtype(dtype):
        return "time"
    if pd.api.types.is_object_dtype(dtype):
        return _kind_of_objects(raw.to_numpy())
    return "text"


def _kind_of_objects(values: np.ndarray) -> ColumnKind:
    """Kind of an extra column of Python objects, from what pandas infers of them."""
    inferred = pd.api.types.infer_dtype(values, skipna=True)
    if inferred == "boolean":
        return "flag"
    if inferred in ("integer", "floating", "mixed-integer-float", "decimal"):
        return "number"
    if inferred in ("datetime", "datetime64", "date"):
        return "time"
    return "text"


def text_column(raw: pd.Series) -> pd.Series:
    """Any column -> string dtype; integral floats lose their ``.0``; empty strings -> NA."""
    if pd.api.types.is_float_dtype(raw.dtype):
        values = raw.to_numpy(dtype="float64", na_value=np.nan)
        finite = values[~np.isnan(values)]
        if np.all(finite == np.round(finite)) and (len(finite) == 0 or np.abs(finite).max() < 2**53):
            raw = raw.astype("Int64")
    out = raw.astype(STRING_DTYPE)
    if isinstance(out.array, pd.arrays.ArrowStringArray):  # lengths, not a comparison of every value
        if pc.any(pc.equal(pc.binary_length(pa.array(out.array)), 0)).as_py() is not True:
            return out
    empty = (out == "").fillna(False).to_numpy(dtype=bool)
    if empty.any():
        out = out.mask(empty)
    return out


def category_dtype(levels: Sequence[str] | pd.Index) -> pd.CategoricalDtype:
    """The dtype of a ``category`` column whose values are ``levels`` (sorted here)."""
    return _category_dtype(tuple(sorted(levels)))


@functools.lru_cache(maxsize=1024)
def _category_dtype(levels: tuple[str, ...]) -> pd.CategoricalDtype:
    # dtypes are immutable: the few level sets of posted events (channels, event types ...) are built once
    return pd.CategoricalDtype(pd.Index(levels, dtype=STRING_DTYPE))


def category_from_codes(levels: Sequence[str], codes: np.ndarray) -> pd.Categorical:
    """``levels[codes]`` (code -1 = missing) typed exactly as validation types a ``category`` column.

    For producers of already-clean tables (the simulator, benchmark generators): levels must
    be distinct non-empty strings. Only the levels present become categories, sorted.
    """
    codes = np.asarray(codes)
    present = np.zeros(len(levels), dtype=bool)
    present[codes[codes >= 0]] = True
    kept = [str(levels[i]) for i in np.flatnonzero(present)]
    dtype = category_dtype(kept)
    lookup = np.full(len(levels) + 1, -1, dtype=np.int64)  # last entry: code -1 stays missing
    lookup[np.flatnonzero(present)] = dtype.categories.get_indexer(pd.Index(kept, dtype=STRING_DTYPE))
    return pd.Categorical.from_codes(lookup[codes], dtype=dtype)


def string_categories(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the categories of its categorical columns in the ``string`` dtype.

    Validated tables have them so; a validated table written to Parquet reads back with
    plain ``str`` categories (same values and codes), which this restores.
    """
    out = frame
    for col in frame.columns:
        dtype = frame[col].dtype
        if isinstance(dtype, pd.CategoricalDtype) and dtype.categories.dtype != STRING_DTYPE:
            if out is frame:
                out = frame.copy(deep=False)
            categories = pd.Index(dtype.categories.astype(STRING_DTYPE), dtype=STRING_DTYPE)
            out[col] = pd.Categorical.from_codes(
                frame[col].cat.codes.to_numpy(), dtype=pd.CategoricalDtype(categories, dtype.ordered)
            )
    return out


def _to_category(raw: pd.Series) -> pd.Series:
    """Any column -> ``category``: values normalised as :func:`text_column` does, then the distinct
    values present as sorted ``string`` categories (missing = NaN code)."""
    if isinstance(raw.dtype, pd.CategoricalDtype):
        # normalise the categories in use, never the (many) values
        codes = raw.cat.codes.to_numpy()
        used = _used_codes(codes, len(raw.cat.categories))
        text = text_column(pd.Series(raw.cat.categories[used]))
        level_codes, levels = pd.factorize(text, sort=True)
        dtype = pd.CategoricalDtype(pd.Index(levels, dtype=STRING_DTYPE))
        if used.all() and np.array_equal(level_codes, np.arange(len(used))):
            new_codes = codes  # already the sorted, normalised values present (Parquet of validated tables)
        else:
            lookup = np.full(len(used) + 1, -1, dtype=np.result_type(codes.dtype, np.int8))
            lookup[np.flatnonzero(used)] = level_codes  # last entry: code -1 stays missing
            new_codes = np.take(lookup, codes)
        return pd.Series(pd.Categorical.from_codes(new_codes, dtype=dtype), index=raw.index)
    new_codes, levels = pd.factorize(text_column(raw), sort=True)
    dtype = pd.CategoricalDtype(pd.Index(levels, dtype=STRING_DTYPE))
    return pd.Series(pd.Categorical.from_codes(new_codes, dtype=dtype), index=raw.index)


def _used_codes(codes: np.ndarray, n: int) -> np.ndarray:
    """Which of ``n`` categories the codes use (code -1 = missing): one comparison per category
    when they are few (a vectorised pass each), else one scatter."""
    if n <= 64:
        return np.fromiter(((codes == k).any() for k in range(n)), dtype=bool, count=n)
    used = np.zeros(n, dtype=bool)
    used[codes[codes >= 0]] = True
    return used


def _blank(raw: pd.Series, candidates: np.ndarray) -> np.ndarray:
    """Among ``candidates``, which raw values are empty strings or null words ("NA", "null" ...)."""
    blank = np.zeros(len(raw), dtype=bool)
    if candidates.any():
        sub = raw[candidates].astype(STRING_DTYPE).str.strip().str.lower()
        blank[np.flatnonzero(candidates)] = (sub.isin(_NULL_WORDS) | (sub == "")).fillna(True).to_numpy(dtype=bool)
    return blank


def _to_time(raw: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """-> (datetime64[us] naive UTC, mask of non-empty values that are not timestamps)."""
    dtype = raw.dtype
    bad = np.zeros(len(raw), dtype=bool)
    if isinstance(dtype, pd.DatetimeTZDtype):
        out = raw.dt.tz_convert("UTC").dt.tz_localize(None)
    elif pd.api.types.is_datetime64_dtype(dtype):
        out = raw
    else:
        parsed = pd.to_datetime(raw, utc=True, format="ISO8601", errors="coerce")
        candidates = (parsed.isna() & raw.notna()).to_numpy(dtype=bool)
        bad = candidates & ~_blank(raw, candidates)
        out = parsed.dt.tz_localize(None)
    return out.astype(TIME_DTYPE), bad


def _to_number(raw: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """-> (float64, mask of non-empty values that are not numbers)."""
    bad = np.zeros(len(raw), dtype=bool)
    if raw.dtype == np.float64:  # already what the nullable round trip below gives: no copy
        return raw, bad
    if pd.api.types.is_bool_dtype(raw.dtype) or pd.api.types.is_numeric_dtype(raw.dtype):
        values = raw.astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
    else:
        parsed = pd.to_numeric(raw, errors="coerce")
        values = pd.Series(parsed).astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
        candidates = np.isnan(values) & raw.notna().to_numpy(dtype=bool)
        bad = candidates & ~_blank(raw, candidates)
    return pd.Series(values, index=raw.index, dtype="float64"), bad


def _to_flag(raw: pd.Series) -> tuple[pd.Series, np.ndarray]:
    """-> (nullable boolean, mask of non-empty values that are not boolean-like)."""
    if pd.api.types.is_bool_dtype(raw.dtype):
        return raw.astype("boolean"), np.zeros(len(raw), dtype=bool)
    if pd.api.types.is_numeric_dtype(raw.dtype):
        values = raw.astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
        null = np.isnan(values)
        truth = values == 1
        bad = ~(null | truth | (values == 0))
    else:
        words = raw.astype(STRING_DTYPE).str.strip().str.lower()
        null = (words.isna() | (words == "") | words.isin(_NULL_WORDS)).fillna(True).to_numpy(dtype=bool)
        truth = words.isin(_TRUE_WORDS).fillna(False).to_numpy(dtype=bool)
        false = words.isin(_FALSE_WORDS).fillna(False).to_numpy(dtype=bool)
        bad = ~(null | truth | false)
    array = pd.arrays.BooleanArray(truth, null | bad)
    return pd.Series(array, index=raw.index), bad


def _naive_utc(ts: pd.Timestamp) -> pd.Timestamp:
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.as_unit("us")


# --------------------------------------------------------------------------- few rows

#: Tables of at most this many rows of Python objects (events posted to the API) are typed value
#: by value under ``engine="auto"``: pandas' fixed cost per column operation, not the values,
#: is what validating them costs column by column.
FEW_ROWS = 2000

#: The ISO 8601 forms the few-rows engine reads itself (others go to pandas' parser): date, and
#: date with time to the minute, second or microsecond, naive or with ``Z`` / ``+hh:mm``.
_SIMPLE_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?(Z|[+-]\d{2}:\d{2})?)?",
    re.ASCII,  # digits 0-9 only
)
_EPOCH = datetime(1970, 1, 1)
_US = timedelta(microseconds=1)
_MAX_EXACT_INT = 2**53


class _NotFewRows(Exception):
    """A table the few-rows engine leaves to the column engine (which reads every form pandas can)."""


def _coerce_few_rows(
    df: pd.DataFrame,
    spec: TableSpec,
    *,
    allow_missing_id: bool,
    limits: _Limits,
    repairs: list[Repair],
    problems: _Problems,
) -> pd.DataFrame:
    """:func:`_coerce_table` for a table of Python objects (JSON values), typed value by value.

    Values are read only in forms whose meaning is plain: strings for ids, text and categories
    (ids ASCII without surrounding whitespace: nothing to normalise), ``str`` timestamps in
    :data:`_SIMPLE_TIME` forms, ``float`` and ``int`` numbers, ``bool`` flags, None for missing.
    Anything else raises :class:`_NotFewRows` before a problem or a repair is recorded, and the
    table is typed column by column instead. The rules are those of the column engine
    (:func:`_check_values`, :func:`_only_allowed`), and so are the problems, in the same order.

    Event tables (not ``contacts``: its group check lists rows in table order) come out sorted
    by (customer_id, timestamp), index labels kept as input positions, as the column engine's
    sort leaves them: the repairs that follow then have nothing to move.
    """
    if not all(pd.api.types.is_object_dtype(dtype) for dtype in df.dtypes):
        raise _NotFewRows
    n = len(df)
    raw = dict(zip(df.columns, df.to_numpy().T.tolist() if n else [[] for _ in df.columns], strict=True))
    kinds: dict[str, ColumnKind] = {}
    parsed: dict[str, Any] = {}
    for col, values in raw.items():  # read everything first: raising here leaves no trace
        cspec = spec.column(col)
        kinds[col] = cspec.kind if cspec is not None else _kind_of_objects(np.array(values, dtype=object))
        parsed[col] = _read_few(kinds[col], values)
    present = set(raw)
    for col in spec.required_columns:
        if col not in present:
            problems.add(spec.name, col, f"is required but missing; columns found: {', '.join(map(str, df.columns))}")
    found_before = len(problems.found)
    no = np.zeros(n, dtype=bool)
    typed: dict[str, Any] = {}
    for col, values in parsed.items():
        kind, cspec = kinds[col], spec.column(col)
        if kind in ("id", "text", "category"):
            missing = np.fromiter((v is None for v in values), dtype=bool, count=n)
            if kind == "category":
                levels = sorted({v for v in values if v is not None})
                code = {v: i for i, v in enumerate(levels)}
                codes = np.fromiter((-1 if v is None else code[v] for v in values), dtype=np.int64, count=n)
                out: Any = pd.Categorical.from_codes(codes, dtype=category_dtype(levels))
                if cspec is not None and cspec.allowed is not None:
                    out = _only_allowed(spec.name, col, pd.Series(out), cspec.allowed, raw[col], problems).array
            else:
                out = pd.array(values, dtype=STRING_DTYPE)
            array = None
        elif kind == "flag":
            truth, missing = values
            out, array = pd.arrays.BooleanArray(truth, missing), None
        else:  # time (int64 microseconds) or number (float64)
            out = array = values.view(TIME_DTYPE) if kind == "time" else values
            missing = values == _NAT if kind == "time" else np.isnan(values)
        _check_values(
            spec.name, col, kind, cspec, array, lambda m=missing: m, no, raw[col],
            allow_missing_id=allow_missing_id, limits=limits, problems=problems,
        )  # fmt: skip
        typed[col] = out
    order = [c.name for c in spec.columns if c.name in typed] + [c for c in df.columns if spec.column(c) is None]
    if spec.name in EVENT_TABLES and spec.name != "contacts" and len(problems.found) == found_before:
        ids, stamps = parsed["customer_id"], parsed["timestamp"]
        if None not in ids:
            rows = sorted(range(n), key=lambda i: (ids[i], stamps[i]))
            if rows != list(range(n)):
                at = np.array(rows, dtype=np.int64)
                return pd.DataFrame({c: typed[c].take(at) for c in order}, index=at, copy=False)
    return pd.DataFrame({c: typed[c] for c in order}, index=pd.RangeIndex(n), copy=False)


def _read_few(kind: ColumnKind, values: list[Any]) -> Any:
    """One column's values in their plain forms (see :func:`_coerce_few_rows`), else :class:`_NotFewRows`.

    None and a float NaN (what pandas puts in an object column for a missing key) are missing.
    """
    if kind in ("id", "text", "category"):
        out: list[str | None] = []
        for v in values:
            if type(v) is str and (kind != "id" or (v.isascii() and v.strip() == v)):
                out.append(v or None)  # an empty string is missing
            elif v is None or (type(v) is float and v != v):
                out.append(None)
            else:  # other types are written as text by rules of their own; ids may need normalising
                raise _NotFewRows
        return out
    if kind == "number":
        numbers = np.empty(len(values), dtype=np.float64)
        for i, v in enumerate(values):
            if type(v) is float or (type(v) is int and -_MAX_EXACT_INT <= v <= _MAX_EXACT_INT):
                numbers[i] = v
            elif v is None:
                numbers[i] = np.nan
            else:
                raise _NotFewRows
        return numbers
    if kind == "flag":
        truth = np.zeros(len(values), dtype=bool)
        missing = np.zeros(len(values), dtype=bool)
        for i, v in enumerate(values):
            if type(v) is bool:
                truth[i] = v
            elif v is None or (type(v) is float and v != v):
                missing[i] = True
            else:
                raise _NotFewRows
        return truth, missing
    stamps = np.empty(len(values), dtype=np.int64)  # time
    for i, v in enumerate(values):
        stamps[i] = _NAT if v is None or (type(v) is float and v != v) else _read_time(v)
    return stamps


def _read_time(value: Any) -> int:
    """Microseconds since 1970 (UTC) of a timestamp in a :data:`_SIMPLE_TIME` form."""
    match = _SIMPLE_TIME.fullmatch(value) if type(value) is str else None
    if match is None:
        raise _NotFewRows
    offset = match.group(8)
    try:  # the text before the offset, a form checked above: the standard library reads it (~4x faster
        # than the groups through int(); the same values, and refusals, over every field's edges: tested)
        moment = datetime.fromisoformat(value if offset is None else value[: match.start(8)])
    except ValueError:  # no such date or time: pandas decides
        raise _NotFewRows from None
    if not 1100 <= moment.year <= 8999:  # far from the ends of the calendar, where an offset could cross them
        raise _NotFewRows
    shift = 0
    if offset not in (None, "Z"):
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if hours > 23 or minutes > 59:
            raise _NotFewRows
        shift = (1 if offset[0] == "+" else -1) * (hours * 60 + minutes) * 60_000_000
    return (moment - _EPOCH) // _US - shift


# --------------------------------------------------------------------------- repairs


def _repair_events(
    df: pd.DataFrame, table: str, data_end: pd.Timestamp | None, repairs: list[Repair]
) -> tuple[pd.DataFrame, pa.Array]:
    """Drop rows without customer (when allowed), sort, drop exact duplicates and late events.

    Returns the table and its distinct customer ids, sorted (for the summary and for reconciling
    with ``customers`` without another pass over the ids).
    """
    rows_in = len(df)
    ids = df["customer_id"]
    if isinstance(ids.array, pd.arrays.ArrowStringArray) and pa.array(ids.array).null_count == 0:
        missing = np.zeros(0, dtype=bool)  # none missing, told without a pass over the ids
    else:
        missing = ids.isna().to_numpy()
    if missing.any():
        n = int(missing.sum())
        repairs.append(
            Repair(
                table,
                "missing_customer_id",
                n,
                f"{_count(n, 'row')} without customer_id dropped",
                _render_rows(df[missing]),
            )
        )
        df = df[~missing]
        ids = df["customer_id"]
    ts = df["timestamp"].to_numpy().view("i8")
    starts = _run_starts(ids)
    if starts is not None and np.all(starts[1:] | (ts[1:] >= ts[:-1])):
        # already in (customer, time) order, as exports often are: nothing moves, no id is rebuilt
        same_key = ~starts[1:] & (ts[1:] == ts[:-1])
        ids_seen = _ids_at(ids, starts)
    else:
        codes, uniques = pd.factorize(ids, sort=True)
        order = _sort_order(codes, ts)
        codes, ts = codes[order], ts[order]
        rest = df.drop(columns="customer_id").take(order)
        ids = pd.Series(uniques.take(codes), index=rest.index, name="customer_id", dtype=STRING_DTYPE)
        df = pd.concat([ids, rest], axis=1)
        same_key = (codes[1:] == codes[:-1]) & (ts[1:] == ts[:-1])
        ids_seen = _large_strings(pa.array(pd.array(uniques, dtype=STRING_DTYPE)))
    # exact duplicates share (customer_id, timestamp), so after the sort they sit in runs of
    # equal keys; compare full rows only inside those runs.
    candidates = np.zeros(len(df), dtype=bool)
    candidates[1:] |= same_key
    candidates[:-1] |= same_key
    if candidates.any():
        dup = np.zeros(len(df), dtype=bool)
        dup[np.flatnonzero(candidates)] = df[candidates].duplicated(keep="first").to_numpy()
        if dup.any():
            n = int(dup.sum())
            repairs.append(
                Repair(
                    table,
                    "duplicate_rows",
                    n,
                    f"{_count(n, 'exact duplicate row')} dropped (first occurrence kept)",
                    _render_rows(df[dup]),
                )
            )
            df = df[~dup]  # a duplicate's first occurrence stays: no customer disappears
    if data_end is not None:
        late = (df["timestamp"] > data_end).to_numpy()
        if late.any():
            n = int(late.sum())
            repairs.append(
                Repair(
                    table,
                    "after_data_end",
                    n,
                    f"{_count(n, 'event')} after the data end {data_end.isoformat()} dropped",
                    _render_rows(df[late].sort_index()),
                )
            )
            df = df[~late]
            kept = _run_starts(df["customer_id"])  # sorted: the runs of the ids left
            ids_seen = _ids_at(df["customer_id"], kept) if kept is not None else ids_seen[:0]
    if len(df) < rows_in:  # categories are the values present: drop those of dropped rows
        for col in df.columns:
            if isinstance(df[col].dtype, pd.CategoricalDtype):
                df[col] = df[col].cat.remove_unused_categories()
    at_positions = isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1
    return (df if at_positions else df.reset_index(drop=True)), ids_seen


def _large_strings(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One ``large_string`` Arrow array (the type pandas' ``string`` dtype holds)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    return values.cast(pa.large_string()) if values.type != pa.large_string() else values


def _run_starts(ids: pd.Series) -> np.ndarray | None:
    """For ids without missing values: where each run of equal ids starts (True at row 0),
    or None when the ids are not sorted (byte order, which is code point order: pandas' order)."""
    values = pa.array(ids.array) if isinstance(ids.array, pd.arrays.ArrowStringArray) else None
    if values is None:
        values = pa.array(ids.astype(STRING_DTYPE).array)
    starts = np.ones(len(values), dtype=bool)
    if len(values) < 2:
        return starts
    after, before = values[1:], values[:-1]
    if pc.any(pc.less(after, before)).as_py():
        return None
    starts[1:] = pc.not_equal(after, before).to_numpy(zero_copy_only=False)
    return starts


def _ids_at(ids: pd.Series, starts: np.ndarray) -> pa.Array:
    """The ids at the run starts: the distinct ids of a sorted column, sorted."""
    return _large_strings(pa.array(ids.array)).filter(pa.array(starts))


def _sort_order(codes: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Stable order by (customer code, timestamp); ties keep input order.

    Rows already in order cost one comparison pass; rows in time order are ordered by customer
    alone. Otherwise customer and timestamp make one int64 key when it fits, and
    :func:`_stable_argsort` orders by it.
    """
    n = len(ts)
    if n == 0:
        return np.arange(0)
    # exports often come sorted by customer and time, and event logs by time: skip what is sorted
    same = codes[1:] == codes[:-1]
    if np.all((codes[1:] > codes[:-1]) | (same & (ts[1:] >= ts[:-1]))):
        return np.arange(n)
    codes = codes.astype(np.int64)
    n_codes = int(codes.max()) + 1
    if np.all(ts[1:] >= ts[:-1]):
        return _stable_argsort([(codes, n_codes)])
    offset = ts - ts.min()
    span = int(offset.max()) + 1
    if n_codes * span < 2**62:
        return _stable_argsort([(codes * span + offset, n_codes * span)])
    return _stable_argsort([(codes, n_codes), (offset, span)])


def _stable_argsort(keys: list[tuple[np.ndarray, int]]) -> np.ndarray:
    """The stable order of rows by several non-negative int64 keys, most significant first
    (``np.lexsort`` of them, reversed); each key comes with a bound it stays below.

    ``np.sort`` of int64 values is vectorised and ~15x faster than a stable ``argsort``: each
    key (in digits, when it is wider than the room left) is packed above the row's current
    position, sorted, and the positions read back: a least-significant-digit radix sort whose
    passes are ``np.sort`` calls, stable because the position breaks ties.
    """
    n = len(keys[0][0])
    row_bits = max(int(n - 1).bit_length(), 1)
    width = 63 - row_bits
    rows = np.arange(n, dtype=np.int64)
    order: np.ndarray | None = None
    for values, bound in reversed(keys):
        bits = max(int(bound - 1).bit_length(), 1)
        for shift in range(0, bits, width):
            digit = values if order is None else values[order]
            if shift or bits > width:
                digit = (digit >> shift) & ((1 << width) - 1)
            packed = np.sort((digit << row_bits) | rows)
            position = packed & ((1 << row_bits) - 1)
            order = position if order is None else order[position]
    assert order is not None
    return order


def _note_isolated_events(tables: Tables, repairs: list[Repair], last_event: pd.Timestamp) -> None:
    """Report events kept but left out of the data end because they stand alone far after the rest.

    ``last_event`` is ``tables.last_event``, already known to the caller.
    """
    end = tables.data_end
    if end == last_event:
        return
    for name, df in tables.present().items():
        if name not in EVENT_TABLES:
            continue
        late = (df["timestamp"] > end).to_numpy()
        if late.any():
            n = int(late.sum())
            repairs.append(
                Repair(
                    name,
                    "isolated_late_events",
                    n,
                    f"{_count(n, 'event')} long after every other event (a typo in the date?) kept, "
                    f"but the data end, and so the default cutoff, stays at {end.isoformat()}",
                    tuple(
                        f"customer_id={c!r}, timestamp={t.isoformat()}"
                        for c, t in df.loc[late, ["customer_id", "timestamp"]].head(_MAX_SHOWN).itertuples(index=False)
                    ),
                )
            )


def _repair_customers(df: pd.DataFrame, repairs: list[Repair], problems: _Problems) -> pd.DataFrame:
    """Drop exact duplicate rows; refuse one customer_id with different attributes; sort by id."""
    ids = _large_strings(pa.array(df["customer_id"].array))
    if len(ids) < 2 or pc.all(pc.less(ids[:-1], ids[1:])).as_py():
        return df.reset_index(drop=True)  # ids distinct and sorted: no duplicate, nothing to move
    dup = df.duplicated(keep="first").to_numpy()
    if dup.any():
        n = int(dup.sum())
        repairs.append(
            Repair(
                "customers",
                "duplicate_rows",
                n,
                f"{_count(n, 'exact duplicate row')} dropped (first occurrence kept)",
                _render_rows(df[dup]),
            )
        )
        df = df[~dup]
    ids = df["customer_id"]
    problems.rows(
        "customers",
        "customer_id",
        ids.duplicated(keep=False).to_numpy(),
        "has duplicate entries with different attributes (one row per customer expected)",
        ids,
    )
    return df.sort_values("customer_id", kind="stable").reset_index(drop=True)


def _reconcile_customers(
    tables: dict[str, pd.DataFrame], repairs: list[Repair], ids_seen: Mapping[str, pa.Array]
) -> None:
    """Add customers seen only in events to ``customers``; note customers without events.

    ``ids_seen`` holds each event table's distinct ids: sets are compared by hash in Arrow,
    never per row.
    """
    customers = tables.get("customers")
    if customers is None:
        return
    known = _large_strings(pa.array(customers["customer_id"].array))
    per_table: list[str] = []
    parts: list[pa.Array] = []
    for name in EVENT_TABLES:
        if name not in tables:
            continue
        ids = ids_seen[name]
        unknown_here = len(ids) - int(pc.sum(pc.is_in(ids, value_set=known)).as_py() or 0)
        if unknown_here:
            per_table.append(f"{name}: {unknown_here:,}")
        parts.append(ids)
    seen = pc.unique(pa.chunked_array(parts, type=pa.large_string())) if parts else known[:0]
    unknown = _sorted_strings(seen.filter(pc.invert(pc.is_in(seen, value_set=known))))
    if len(unknown):
        n = len(unknown)
        repairs.append(
            Repair(
                "customers",
                "unknown_customers",
                n,
                f"{_count(n, 'customer')} with events but absent from customers "
                f"added with missing attributes "
                f"({'; '.join(per_table)})",
                tuple(f"customer_id={c!r}" for c in unknown[:_MAX_SHOWN].to_pylist()),
            )
        )
        added = customers.iloc[:0].reindex(range(n))
        added["customer_id"] = pd.array(unknown, dtype=STRING_DTYPE)
        merged = pd.concat([customers, added], ignore_index=True)
        merged = merged.astype(customers.dtypes.to_dict())
        tables["customers"] = merged.sort_values("customer_id", kind="stable").reset_index(drop=True)
    idle = _sorted_strings(known.filter(pc.invert(pc.is_in(known, value_set=seen))))
    if len(idle):
        n = len(idle)
        repairs.append(
            Repair(
                "customers",
                "customers_without_events",
                n,
                f"{_count(n, 'customer')} with no event in any table kept (never active, so never scored)",
                tuple(f"customer_id={c!r}" for c in idle[:_MAX_SHOWN].to_pylist()),
            )
        )


def _sorted_strings(values: pa.Array) -> pa.Array:
    return values.take(pc.array_sort_indices(values)) if len(values) > 1 else values


# --------------------------------------------------------------------------- contacts


def _only_allowed(
    table: str, col: str, out: pd.Series, allowed: Sequence[str], raw: pd.Series, problems: _Problems
) -> pd.Series:
    """A category column whose values must be in ``allowed`` (any case, surrounding spaces
    ignored); the values come out spelled as in ``allowed`` (or as read, when some are not)."""
    categories = out.cat.categories
    bad, target = _allowed_spelling(categories, allowed)
    if bad:
        problems.rows(table, col, out.isin(bad).to_numpy(), f"must be one of {', '.join(allowed)}", raw)
        return out
    if target == list(categories):
        return out
    dtype = category_dtype(set(target))
    lookup = np.r_[dtype.categories.get_indexer(pd.Index(target, dtype=STRING_DTYPE)), -1]
    codes = lookup[out.cat.codes.to_numpy()]  # code -1 (missing) takes the last entry
    return pd.Series(pd.Categorical.from_codes(codes, dtype=dtype), index=out.index)


def _allowed_spelling(values: Sequence[str], allowed: Sequence[str]) -> tuple[list[str], list[str]]:
    """The distinct ``values`` not in ``allowed`` (any case, surrounding spaces ignored), and when
    there is none, each value spelled as in ``allowed``."""
    spelled = {a.lower(): a for a in allowed}
    normal = [str(c).strip().lower() for c in values]
    bad = [c for c, v in zip(values, normal, strict=True) if v not in spelled]
    return bad, ([] if bad else [spelled[v] for v in normal])


def _check_contact_groups(df: pd.DataFrame, problems: _Problems) -> None:
    """Refuse a customer in both the treatment and the control group of one campaign."""
    keys = ["customer_id", "campaign_id"]
    groups = df.groupby(keys, observed=True, sort=False)["group"].transform("nunique")
    both = (groups > 1).to_numpy(dtype=bool)
    if both.any():
        n = int(both.sum())
        problems.add(
            "contacts",
            "group",
            f"puts a customer in both the treatment and the control group of one campaign ({_count(n, 'row')})",
            _render_rows(df.loc[both, [*keys, "group"]], MAX_ROWS_SHOWN),
        )
