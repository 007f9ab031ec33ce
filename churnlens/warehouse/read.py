"""Read the contract tables from PostgreSQL into validated :class:`~churnlens.data.Tables`.

The tables of a schema that carry the contract names (``purchases``, ``customers`` ...) are read,
or what ``[warehouse.tables]`` maps each contract table to: a table or a view (``sales.orders``,
schema-qualified or in the URI's schema) or a query (``SELECT ...``). Only the columns the
contract needs are read (the column mapping ``[columns.<table>]`` applies as for files); the
rest stays in the database and is reported as ignored. Everything is read in one read-only
``REPEATABLE READ`` transaction, so the tables are one consistent snapshot of the database.

Values keep the types the driver gives (text, numbers, booleans, timestamps); types the contract
has no use for are converted on the server (``numeric`` to ``double precision`` for number
columns, else to text; ``char(n)`` to text without its padding; uuid, json, enums ... to text).
Validation and repairs are then exactly those of files
(:func:`churnlens.data.validate.validate_frames`): the same tables, the same errors naming the
table, the column and the offending rows (numbered in the order the database returned them).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from churnlens.data.bounds import InputBounds
from churnlens.data.errors import DataValidationError
from churnlens.data.io import arrow_to_pandas
from churnlens.data.report import ValidationReport
from churnlens.data.schema import TABLE_SPECS
from churnlens.data.tables import TABLE_NAMES, Tables
from churnlens.data.validate import check_column_mapping, resolve_columns, validate_frames
from churnlens.errors import InputError
from churnlens.warehouse.connection import connect, driver_error, driver_message, errors, is_user_error
from churnlens.warehouse.uri import WarehouseURI, quote_identifier

#: PostgreSQL types the driver hands over as Arrow types validation reads as they are.
NATIVE_TYPES = frozenset({
    "bool", "int2", "int4", "int8", "float4", "float8", "text", "varchar", "name",
    "timestamp", "timestamptz", "date",
})  # fmt: skip
_QUERY = re.compile(r"^\s*\(?\s*(select|with|values|table)\b", re.IGNORECASE)
_TYPE_KEY = b"POSTGRESQL:type"


@dataclass(frozen=True)
class TableSource:
    """Where one contract table is read from: a relation (table, view ...) or a query.

    Attributes
    ----------
    table : str
        Contract table name.
    sql : str
        What goes after ``FROM``: a quoted relation name or ``(query)``.
    label : str
        How the report names it (``loyalty.purchases``, ``query in [warehouse.tables]``).
    """

    table: str
    sql: str
    label: str


def is_query(value: str) -> bool:
    """True when a ``[warehouse.tables]`` value is a query rather than a table or view name."""
    return bool(_QUERY.match(value))


def find_sources(cur, uri: WarehouseURI, mapping: Mapping[str, str] | None) -> dict[str, TableSource]:
    """The contract tables present in the database, mapped or found by name in the URI's schema.

    Raises
    ------
    DataValidationError
        A mapping names no contract table, or a mapped relation does not exist, or there is no purchases table.
    InputError
        The URI's schema does not exist.
    """
    mapping = dict(mapping or {})
    for table, value in mapping.items():
        if table not in TABLE_SPECS:
            raise DataValidationError(
                table, None, f"[warehouse.tables] names no known table; known tables: {', '.join(TABLE_NAMES)}"
            )
        if not isinstance(value, str) or not value.strip():
            raise DataValidationError(table, None, f"[warehouse.tables] {table} must be a table, view or SELECT")
    schema = uri.schema or "public"
    cur.execute("SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname = $1", (schema,))
    if cur.fetchall()[0][0] == 0:
        raise InputError(f"schema {schema!r} does not exist in {uri.shown}")
    sources: dict[str, TableSource] = {}
    for table in TABLE_NAMES:
        value = mapping.get(table)
        if value is not None and is_query(value):
            sources[table] = TableSource(table, f"({value.strip().rstrip(';')})", "query in [warehouse.tables]")
            continue
        name = value.strip() if value is not None else f"{quote_identifier(schema)}.{quote_identifier(table)}"
        cur.execute("SELECT to_regclass($1)::text", (name,))
        found = cur.fetchall()[0][0]
        if found is None:
            if value is not None:
                raise DataValidationError(
                    table, None, f"is mapped in [warehouse.tables] to {value!r}, which is no table or view of "
                    f"{uri.shown} (schema {schema!r} searched first)",
                )  # fmt: skip
            continue
        label = found if "." in found else f"{schema}.{found}"
        sources[table] = TableSource(table, found, label)
    if "purchases" not in sources:
        raise DataValidationError(
            "purchases", None, f"is required but schema {schema!r} of {uri.shown} has no purchases table or view; "
            "name it purchases or map it in [warehouse.tables]",
        )  # fmt: skip
    return sources


def _pg_type(field: pa.Field) -> str:
    return (field.metadata or {}).get(_TYPE_KEY, b"").decode()


def select_sql(source: TableSource, schema: pa.Schema, keep: list[str], mapping: Mapping[str, str]) -> str:
    """The SELECT reading the ``keep`` columns of ``source``, converting on the server what needs it."""
    spec = TABLE_SPECS[source.table]
    items = []
    for name in keep:
        column = quote_identifier(name)
        pg_type = _pg_type(schema.field(name))
        cspec = spec.column(mapping.get(name, name))
        if pg_type in NATIVE_TYPES:
            items.append(column)
        elif pg_type == "numeric" and (cspec is None or cspec.kind == "number"):
            items.append(f"{column}::float8 AS {column}")  # customers' numeric attributes are numbers too
        else:
            items.append(f"{column}::text AS {column}")
    return f"SELECT {', '.join(items)} FROM {source.sql} AS src"


@dataclass(frozen=True)
class ReadPlan:
    """How one contract table is read: the SELECT, the renaming to contract names, what is left out."""

    source: TableSource
    sql: str
    rename: dict[str, str]
    ignored: list[str]
    categories: list[str]


def plan_read(cur, source: TableSource, uri: WarehouseURI, mapping: Mapping[str, str] | None) -> ReadPlan:
    """Describe ``source`` (a query returning no row) and plan the read of its contract columns.

    Raises
    ------
    DataValidationError
        The relation or query cannot be read, or its columns do not fit the contract (as for files).
    """
    mapping = dict(mapping or {})
    try:
        cur.execute(f"SELECT * FROM {source.sql} AS src LIMIT 0")
        schema = cur.fetch_arrow_table().schema
    except errors() as exc:
        raise _table_error(exc, uri, source) from None
    rename, keep, ignored = resolve_columns(source.table, schema.names, mapping)
    spec = TABLE_SPECS[source.table]
    categories = [n for n in keep if (c := spec.column(mapping.get(n, n))) is not None and c.kind == "category"]
    return ReadPlan(source, select_sql(source, schema, keep, mapping), rename, ignored, categories)


def fetch_planned(cur, plan: ReadPlan, uri: WarehouseURI) -> pa.Table:
    """Run a planned read into Arrow (what the reader thread does: the driver releases the GIL).

    The driver hands over batches whose columns share one allocation: a column kept from a
    batch keeps the whole batch alive (the text of every column, read and no longer needed).
    So each batch is copied as it arrives into arrays of its own and let go: low-cardinality
    (``category``) columns dictionary-encoded, the others as they are. The driver's memory is
    then one batch at a time, whatever the table's size.
    """
    try:
        cur.execute(plan.sql)
        reader = cur.fetch_record_batch()
        names = reader.schema.names
        batches = []
        for batch in reader:
            columns = []
            for name, column in zip(names, batch.columns, strict=True):
                column = _plain(column)
                if name in plan.categories and pa.types.is_string(column.type):
                    columns.append(pc.dictionary_encode(column))
                else:
                    columns.append(column)
            del batch, column
            batches.append(pa.RecordBatch.from_arrays(columns, names=names))
            del columns
        schema = batches[0].schema if batches else _plain_schema(reader.schema, plan)
        return pa.Table.from_batches(batches, schema=schema)
    except errors() as exc:
        raise _table_error(exc, uri, plan.source) from None


def planned_frame(data: pa.Table, plan: ReadPlan) -> pd.DataFrame:
    """A fetched table as pandas with contract column names, converted a column at a time (each
    column's Arrow memory is let go once converted: never the whole table twice).

    Low-cardinality columns arrive dictionary-encoded, as Parquet files written from validated
    tables hold them: validation then normalises their few distinct values instead of every row
    (the same result, see :func:`churnlens.data.validate._to_category`).
    """
    names = data.column_names
    columns: dict[str, pd.Series] = {}
    for name in names:
        column = data.column(name)
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            column = column.combine_chunks()  # text of its own: the driver's batches can then go
        columns[name] = arrow_to_pandas(pa.table([column], names=[name]))[name]
        data = data.drop_columns([name])
        del column
    return pd.DataFrame(columns, copy=False).rename(columns=plan.rename)


def read_planned(cur, plan: ReadPlan, uri: WarehouseURI) -> pd.DataFrame:
    """Run a planned read: the table as pandas with contract column names."""
    return planned_frame(fetch_planned(cur, plan, uri), plan)


def read_order(cur, sources: Mapping[str, TableSource]) -> list[str]:
    """The order to read the tables in: ``purchases``, then the others from the largest by the
    planner's row estimate (``pg_class.reltuples``; views and queries, with none, last, in
    contract order).

    Validation works on a table while the next one arrives, and the next one starts arriving
    only when this one is handed out (one ahead): a small table read right after a large one
    would arrive long before the work on the large one ends, and the reader would wait idle.
    What validation reports does not depend on the order (see
    :func:`churnlens.data.validate.validate_frames`).
    """
    estimates: dict[str, float] = {}
    for name, source in sources.items():
        if not source.sql.startswith("("):  # a relation (a query has no estimate)
            cur.execute("SELECT reltuples::float8 FROM pg_catalog.pg_class WHERE oid = $1::regclass", (source.sql,))
            estimates[name] = float(cur.fetchall()[0][0] or 0.0)
    names = list(sources)
    return sorted(names, key=lambda n: (n != "purchases", -max(estimates.get(n, 0.0), 0.0), names.index(n)))


class ArrivingFrames(Mapping[str, pd.DataFrame]):
    """The planned tables, each read by a background thread while validation works on the one before.

    Validation asks for the tables in contract order and reads each once. A table is read one
    ahead: when a table is handed out, the next one starts arriving, so the database read of
    one overlaps the conversion to pandas and the validation of the other, and at most one raw
    table waits in memory (reading them all ahead would hold every raw table at once). The
    thread only fetches (:func:`fetch_planned`, into Arrow: the driver releases the GIL); a
    table is converted (:func:`planned_frame`) when handed out, after the next read started.
    A handed-out table is forgotten here, so its raw frame is freed as soon as validation is
    done with it. :meth:`close` cancels what is still being read.
    """

    def __init__(self, cur, plans: dict[str, ReadPlan], uri: WarehouseURI) -> None:
        self._cur = cur
        self._plans = plans
        self._uri = uri
        self._names = list(plans)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="churnlens-warehouse")
        self._pending: dict[str, Future] = {}
        self._started = 0
        self._start_next()

    def _start_next(self) -> None:
        if self._started < len(self._names):
            name = self._names[self._started]
            self._pending[name] = self._pool.submit(fetch_planned, self._cur, self._plans[name], self._uri)
            self._started += 1

    def __getitem__(self, name: str) -> pd.DataFrame:
        if name not in self._names:
            raise KeyError(name)
        while name not in self._pending and self._started <= self._names.index(name):
            self._start_next()  # asked out of order: the ones before it are read first, and kept
        future = self._pending.pop(name, None)
        if future is None:
            raise RuntimeError(f"table {name} was already handed out")
        data = future.result()
        self._start_next()
        return planned_frame(data, self._plans[name])  # converted here, while the next one arrives

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def close(self) -> None:
        """Stop reading: the table being read is cancelled on the server, the others are not read."""
        for future in self._pending.values():
            future.cancel()
        if any(f.running() for f in self._pending.values()):
            try:
                self._cur.adbc_cancel()
            except (errors() + (AttributeError,)):  # nothing left to cancel, or a driver without cancel
                pass
        self._pool.shutdown(wait=True)
        self._pending.clear()


def _plain(column: pa.Array) -> pa.Array:
    """Extension arrays (the driver's opaque types) as their storage; others unchanged."""
    return column.storage if isinstance(column.type, pa.ExtensionType) else column


def _plain_schema(schema: pa.Schema, plan: ReadPlan) -> pa.Schema:
    """The schema :func:`fetch_planned` gives a table without rows."""
    fields = []
    for field in schema:
        kind = field.type.storage_type if isinstance(field.type, pa.ExtensionType) else field.type
        if field.name in plan.categories and pa.types.is_string(kind):
            kind = pa.dictionary(pa.int32(), kind)
        fields.append(pa.field(field.name, kind))
    return pa.schema(fields)


def _table_error(exc: BaseException, uri: WarehouseURI, source: TableSource) -> Exception:
    if is_user_error(exc, uri):
        reason = driver_message(exc, uri)
        return DataValidationError(source.table, None, f"cannot be read from {source.label}: {reason}")
    return driver_error(exc, uri, f"cannot read {source.table} from {source.label}")


def read_warehouse(
    uri: str | WarehouseURI,
    *,
    tables: Mapping[str, str] | None = None,
    columns: Mapping[str, Mapping[str, str]] | None = None,
    data_end: pd.Timestamp | str | None = None,
    drop_missing_customer: bool = False,
    bounds: InputBounds | None = None,
    now: pd.Timestamp | str | None = None,
) -> tuple[Tables, ValidationReport]:
    """Read, validate, type and repair the contract tables of a PostgreSQL database.

    Parameters
    ----------
    uri : str or WarehouseURI
        ``postgresql://user@host:port/database?schema=NAME`` (``schema`` default ``public``).
    tables : mapping of str to str, optional
        ``[warehouse.tables]``: contract table -> table, view or query.
    columns, data_end, drop_missing_customer, bounds, now
        As for :func:`churnlens.data.load_tables`.

    Returns
    -------
    tables : Tables
    report : ValidationReport
        Its sources name the relation (``schema.table``) or the query each table came from.

    Raises
    ------
    DataValidationError
        As for files (missing column, bad value ...), and for a mapped table that does not exist.
    InputError
        Bad credentials, unknown database or schema.
    WarehouseUnavailableError
        The server cannot be reached.
    """
    uri = uri if isinstance(uri, WarehouseURI) else WarehouseURI.parse(uri)
    if uri.table is not None:
        raise InputError(f"{uri.shown}: table= names the output tables of --out, not input tables")
    columns = check_column_mapping(columns)
    with connect(uri) as conn, conn.cursor() as cur:
        try:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            sources = find_sources(cur, uri, tables)
        except errors() as exc:
            raise driver_error(exc, uri, "cannot list the tables") from None
        plans = {name: plan_read(cur, source, uri, columns.get(name)) for name, source in sources.items()}
        try:
            order = read_order(cur, sources)
        except errors() as exc:
            raise driver_error(exc, uri, "cannot list the tables") from None
        frames = ArrivingFrames(cur, {name: plans[name] for name in order}, uri)
        try:
            return validate_frames(
                frames,
                sources={name: source.label for name, source in sources.items()},
                ignored={name: plan.ignored for name, plan in plans.items()},
                data_end=data_end,
                drop_missing_customer=drop_missing_customer,
                bounds=bounds,
                now=now,
            )
        finally:
            frames.close()
            pa.default_memory_pool().release_unused()
