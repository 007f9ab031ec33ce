"""Write a scored campaign into PostgreSQL tables, as one transaction.

``--out postgresql://user@host/db?schema=S&table=PREFIX`` writes, in schema ``S``:

=====================  =======================================  ===============================
table                  rows                                     primary key
=====================  =======================================  ===============================
``PREFIX_campaign``    the campaign list (one per scored        (campaign_id, customer_id)
                       customer)
``PREFIX_reasons``     the reasons, one per customer and rank   (campaign_id, customer_id, rank)
``PREFIX_rejects``     customers not scored, with the reason    (campaign_id, customer_id)
``PREFIX_contacts``    the contact plan (with a campaign id)    (campaign_id, customer_id)
``PREFIX_drift``       the drift report, one per feature        (campaign_id, feature)
``PREFIX_runs``        the run's summary (JSON text)            (campaign_id)
=====================  =======================================  ===============================

Every row starts with ``run_id``, ``campaign_id``, ``model_version``, ``cutoff`` and
``scored_at``; the primary keys are the indexes on ``(campaign_id, customer_id)``. A run without
a campaign id is its own campaign: its ``campaign_id`` is its run id.

The write is one transaction: the run's rows appear together or not at all (a failed or
killed write leaves none). Writing a campaign id again replaces that campaign's rows and
leaves the other campaigns alone. Missing tables (and the schema) are created; a table
missing a column this run has gets it added; a column whose type cannot take this run's
values is refused, naming the table and the column. Concurrent writers of the same tables
take turns (a transaction-level advisory lock).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from churnlens.data.tables import Tables
from churnlens.errors import InputError
from churnlens.warehouse.connection import connect, driver_error, errors
from churnlens.warehouse.uri import WarehouseURI, mask_uri, quote_identifier

#: Output parts and their primary keys (after campaign_id).
PART_KEYS: dict[str, tuple[str, ...]] = {
    "campaign": ("customer_id",),
    "reasons": ("customer_id", "rank"),
    "rejects": ("customer_id",),
    "contacts": ("customer_id",),
    "drift": ("feature",),
    "runs": (),
}
#: Columns every output row starts with.
RUN_COLUMNS: tuple[str, ...] = ("run_id", "campaign_id", "model_version", "cutoff", "scored_at")
#: Arrow type -> PostgreSQL type of the columns churnlens creates (and the driver writes).
PG_TYPES: dict[pa.DataType, str] = {
    pa.string(): "text",
    pa.int64(): "bigint",
    pa.float64(): "double precision",
    pa.bool_(): "boolean",
    pa.timestamp("us"): "timestamp without time zone",
    pa.timestamp("us", tz="UTC"): "timestamp with time zone",
}
_ARROW_OF: dict[str, pa.DataType] = {pg: arrow for arrow, pg in PG_TYPES.items()}


@dataclass(frozen=True)
class WarehouseWrite:
    """What :func:`write_campaign` wrote.

    Attributes
    ----------
    target : str
        The URI, password masked.
    run_id, campaign_id : str
    rows : dict of str to int
        Rows written per table (qualified name).
    """

    target: str
    run_id: str
    campaign_id: str
    rows: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target, "run_id": self.run_id, "campaign_id": self.campaign_id, "rows": self.rows}


def output_uri(uri: str) -> WarehouseURI:
    """Parse an ``--out`` URI; it must name the tables' prefix (``&table=PREFIX``)."""
    parsed = WarehouseURI.parse(uri)
    if parsed.table is None:
        raise InputError(
            f"--out {parsed.shown} names no output tables: add &table=PREFIX "
            "(tables PREFIX_campaign, PREFIX_reasons ...)"
        )
    return parsed


def arrow_column(values: pd.Series) -> pa.Array:
    """A frame column as one of the Arrow types of :data:`PG_TYPES` (null when entirely missing)."""
    dtype = values.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        values = values.astype("string")
        dtype = values.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        return pa.array(values.dt.tz_convert("UTC"), from_pandas=True).cast(pa.timestamp("us", tz="UTC"))
    if pd.api.types.is_datetime64_dtype(dtype):
        return pa.array(values, from_pandas=True).cast(pa.timestamp("us"))
    if pd.api.types.is_bool_dtype(dtype):
        return pa.array(values, from_pandas=True, type=pa.bool_())
    if pd.api.types.is_integer_dtype(dtype):
        return pa.array(values, from_pandas=True).cast(pa.int64())
    if pd.api.types.is_float_dtype(dtype):
        return pa.array(values, from_pandas=True).cast(pa.float64())
    if pd.api.types.is_string_dtype(dtype) and not pd.api.types.is_object_dtype(dtype):
        return pa.array(values, from_pandas=True).cast(pa.string())
    # object: text, numbers, or nothing at all; anything else is written as its JSON text
    present = values.dropna()
    if present.empty:
        return pa.nulls(len(values))
    kinds = {type(v) for v in present}
    if kinds <= {bool, np.bool_}:
        return pa.array(values.astype("boolean"), from_pandas=True, type=pa.bool_())
    if kinds <= {float, int, np.floating, np.integer} or all(issubclass(k, int | float | np.number) for k in kinds):
        return pa.array(values.astype("Float64"), from_pandas=True).cast(pa.float64())
    if kinds <= {str}:
        return pa.array(values, from_pandas=True, type=pa.string())
    text = [None if v is None or (isinstance(v, float) and np.isnan(v)) else
            (v if isinstance(v, str) else json.dumps(v, default=str)) for v in values.tolist()]  # fmt: skip
    return pa.array(text, type=pa.string())


def frame_to_arrow(frame: pd.DataFrame, keys: Mapping[str, Any]) -> pa.Table:
    """``frame`` with the run's key columns in front, every column a :data:`PG_TYPES` type (or null)."""
    n = len(frame)
    arrays: dict[str, pa.Array] = {
        "run_id": pa.array([keys["run_id"]] * n, pa.string()),
        "campaign_id": pa.array([keys["campaign_id"]] * n, pa.string()),
        "model_version": pa.array([keys["model_version"]] * n, pa.string()),
        "cutoff": pa.array([keys["cutoff"]] * n, pa.timestamp("us")),
        "scored_at": pa.array([keys["scored_at"]] * n, pa.timestamp("us", tz="UTC")),
    }
    for column in frame.columns:
        name = str(column)
        if name in RUN_COLUMNS:
            values = frame[column].astype("string")
            if name == "campaign_id" and not (values == keys["campaign_id"]).all():
                raise InputError(f"the output rows hold another campaign_id than the run's {keys['campaign_id']!r}")
            continue
        arrays[name] = arrow_column(frame[column])
    return pa.table(arrays)


def result_frames(result: Any) -> dict[str, pd.DataFrame]:
    """The parts of a :class:`~churnlens.serving.batch.BatchResult` to write, by part name."""
    summary = result.summary.to_dict()
    frames = {
        "campaign": result.campaign,
        "reasons": result.reasons,
        "rejects": result.rejects,
        "drift": result.drift.astype({"psi": "float64"}) if "psi" in result.drift else result.drift,
    }
    if result.contacts is not None:
        frames["contacts"] = result.contacts
    frames["runs"] = pd.DataFrame({
        "model_name": [summary.get("model_name")],
        "scored": [int(summary.get("scored") or 0)],
        "rejected": [int(summary.get("rejected") or 0)],
        "selected": [int(summary.get("selected") or 0)],
        "summary": [json.dumps(summary, default=str)],
    })  # fmt: skip
    return frames


def lock_key(schema: str, prefix: str) -> int:
    """A stable 64-bit advisory lock key for the tables ``schema.prefix_*``."""
    digest = hashlib.sha256(f"churnlens:{schema}.{prefix}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _qualified(schema: str, name: str) -> str:
    return f"{quote_identifier(schema)}.{quote_identifier(name)}"


def _table_columns(cur, schema: str, name: str) -> dict[str, str]:
    cur.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
        (schema, name),
    )
    return {str(c): str(t) for c, t in cur.fetchall()}


def _column_type(array: pa.Array) -> str:
    return "text" if pa.types.is_null(array.type) else PG_TYPES[array.type]


def _create_sql(schema: str, name: str, data: pa.Table, key: tuple[str, ...]) -> str:
    columns = []
    for field_name, column in zip(data.column_names, data.columns, strict=True):
        required = " NOT NULL" if field_name in ("run_id", "campaign_id", "cutoff", "scored_at", *key) else ""
        columns.append(f"{quote_identifier(field_name)} {_column_type(column)}{required}")
    pk = ", ".join(quote_identifier(c) for c in ("campaign_id", *key))
    return f"CREATE TABLE {_qualified(schema, name)} ({', '.join(columns)}, PRIMARY KEY ({pk}))"


def _fit(data: pa.Table, existing: dict[str, str], qualified: str) -> pa.Table:
    """``data`` cast to the types of the existing table's columns (nulls to any type, numbers and
    anything to text); a column that cannot be cast is refused, naming it."""
    arrays = []
    for name, column in zip(data.column_names, data.columns, strict=True):
        want = existing.get(name)
        have = _column_type(column)
        if want is None or want == have and not pa.types.is_null(column.type):
            arrays.append(column)
            continue
        target = _ARROW_OF.get(want)
        ok = target is not None and (
            pa.types.is_null(column.type) or target == pa.string()
            or (target == pa.float64() and pa.types.is_integer(column.type))
        )  # fmt: skip
        if not ok:
            raise InputError(
                f"column {name!r} of {qualified} is {want}, but this run writes {have} values there: "
                "rename the output tables (table=...) or change the column"
            )
        arrays.append(pc.cast(column, target))
    return pa.table(arrays, names=data.column_names)


def write_campaign(
    result: Any,
    uri: str | WarehouseURI,
    *,
    run_id: str | None = None,
    scored_at: pd.Timestamp | None = None,
) -> WarehouseWrite:
    """Write a batch result into PostgreSQL, replacing the rows of its campaign id, in one transaction.

    Parameters
    ----------
    result : BatchResult
        What :func:`churnlens.serving.score_base` returned.
    uri : str or WarehouseURI
        ``postgresql://...?schema=S&table=PREFIX`` (schema default ``public``).
    run_id : str, optional
        Identifier of this run (default a new random one), in every row.
    scored_at : Timestamp, optional
        When the run scored (default now), in every row.

    Returns
    -------
    WarehouseWrite

    Raises
    ------
    InputError
        No ``table=`` in the URI, bad credentials, a column whose type cannot take the values.
    WarehouseUnavailableError
        The server cannot be reached or failed; nothing of the run was written.
    """
    with campaign_transaction(result, uri, run_id=run_id, scored_at=scored_at) as written:
        pass
    return written


@contextmanager
def campaign_transaction(
    result: Any,
    uri: str | WarehouseURI,
    *,
    run_id: str | None = None,
    scored_at: pd.Timestamp | None = None,
) -> Iterator[WarehouseWrite]:
    """:func:`write_campaign` with the commit held until the ``with`` block ends without an error.

    Every row is in the database (invisible to others) when the block starts; an exception in
    the block rolls the whole run back. ``churnlens run`` commits its campaign files inside
    such a block, so a failed file write leaves no row in the database either.
    """
    target = uri if isinstance(uri, WarehouseURI) else output_uri(uri)
    if target.table is None:
        target = output_uri(target.conninfo)  # raises, naming the missing table=
    schema, prefix = target.schema or "public", target.table
    run_id = run_id or uuid.uuid4().hex
    summary = result.summary
    plan = summary.plan or {}
    campaign_id = str(plan.get("campaign_id") or run_id)
    stamp = pd.Timestamp.now(tz="UTC") if scored_at is None else pd.Timestamp(scored_at)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    keys = {
        "run_id": run_id,
        "campaign_id": campaign_id,
        "model_version": None if summary.model_version is None else str(summary.model_version),
        "cutoff": pd.Timestamp(summary.cutoff).to_pydatetime(),
        "scored_at": stamp.to_pydatetime(),
    }
    parts = {part: frame_to_arrow(frame, keys) for part, frame in result_frames(result).items()}
    rows: dict[str, int] = {}
    with connect(target) as conn, conn.cursor() as cur:
        doing = f"cannot write the campaign {campaign_id} to PostgreSQL"
        try:
            _insert_parts(cur, parts, schema, prefix, campaign_id, rows)
        except errors() as exc:
            raise driver_error(exc, target, doing) from None
        yield WarehouseWrite(target=target.shown, run_id=run_id, campaign_id=campaign_id, rows=rows)
        try:
            conn.commit()
        except errors() as exc:
            raise driver_error(exc, target, doing) from None


def _insert_parts(cur, parts: dict[str, pa.Table], schema: str, prefix: str, campaign_id: str,
                  rows: dict[str, int]) -> None:  # fmt: skip
    """Replace ``campaign_id``'s rows of every part table (created or widened as needed); no commit."""
    cur.execute("SELECT pg_advisory_xact_lock($1)", (lock_key(schema, prefix),))
    cur.fetchall()
    cur.execute("SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname = $1", (schema,))
    if cur.fetchall()[0][0] == 0:
        cur.execute(f"CREATE SCHEMA {quote_identifier(schema)}")
    for part, data in parts.items():
        name = f"{prefix}_{part}"
        qualified = _qualified(schema, name)
        existing = _table_columns(cur, schema, name)
        if not existing:
            cur.execute(_create_sql(schema, name, data, PART_KEYS[part]))
        else:
            data = _fit(data, existing, f"{schema}.{name}")
            for column_name, column in zip(data.column_names, data.columns, strict=True):
                if column_name not in existing:
                    cur.execute(f"ALTER TABLE {qualified} ADD COLUMN {quote_identifier(column_name)} "
                                f"{_column_type(column)}")  # fmt: skip
        cur.execute(f"DELETE FROM {qualified} WHERE campaign_id = $1", (campaign_id,))
        if data.num_rows:
            data = _fit(data, _table_columns(cur, schema, name), f"{schema}.{name}")
            cur.adbc_ingest(name, data, mode="append", db_schema_name=schema)
        rows[f"{schema}.{name}"] = data.num_rows


def export_tables(tables: Tables, uri: str | WarehouseURI, *, replace: bool = False) -> dict[str, int]:
    """Write validated tables into a schema under their contract names (``schema.purchases`` ...).

    For loading a warehouse from files (demos, tests, benchmarks): categorical columns become
    text, timestamps ``timestamp``, flags ``boolean``, numbers ``double precision``.

    Parameters
    ----------
    tables : Tables
    uri : str or WarehouseURI
        ``postgresql://...?schema=S`` (default ``public``; created when missing).
    replace : bool, default False
        Replace tables that exist (else they are an error).

    Returns
    -------
    dict of str to int
        Rows written per table.
    """
    target = uri if isinstance(uri, WarehouseURI) else WarehouseURI.parse(uri)
    schema = target.schema or "public"
    written: dict[str, int] = {}
    with connect(target) as conn, conn.cursor() as cur:
        try:
            cur.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_identifier(schema)}")
            for name, frame in tables.present().items():
                data = pa.table({str(c): arrow_column(frame[c]) for c in frame.columns})
                data = pa.table([c.cast(pa.string()) if pa.types.is_null(c.type) else c for c in data.columns],
                                names=data.column_names)  # fmt: skip
                cur.adbc_ingest(name, data, mode="replace" if replace else "create", db_schema_name=schema)
                written[name] = data.num_rows
            conn.commit()
        except errors() as exc:
            raise driver_error(exc, target, f"cannot export tables to {mask_uri(target.shown)}") from None
    return written


def read_campaign(uri: str | WarehouseURI, campaign_id: str) -> tuple[pd.DataFrame, dict[str, Any]] | None:
    """A campaign written by :func:`write_campaign`: its list and its run's summary, or None when absent.

    Returns
    -------
    (DataFrame, dict) or None
        The ``PREFIX_campaign`` rows of ``campaign_id`` (the run columns dropped) and the
        ``summary`` JSON of its ``PREFIX_runs`` row.
    """
    target = uri if isinstance(uri, WarehouseURI) else output_uri(uri)
    schema = target.schema or "public"
    runs, campaign = _qualified(schema, f"{target.table}_runs"), _qualified(schema, f"{target.table}_campaign")
    with connect(target) as conn, conn.cursor() as cur:
        try:
            cur.execute("SELECT to_regclass($1), to_regclass($2)", (runs, campaign))
            if any(v is None for v in cur.fetchall()[0]):
                return None
            cur.execute(f"SELECT summary FROM {runs} WHERE campaign_id = $1", (campaign_id,))
            found = cur.fetchall()
            if not found:
                return None
            cur.execute(f"SELECT * FROM {campaign} WHERE campaign_id = $1", (campaign_id,))
            frame = cur.fetch_arrow_table().to_pandas()
        except errors() as exc:
            raise driver_error(exc, target, f"cannot read campaign {campaign_id}") from None
    frame = frame.drop(columns=[c for c in RUN_COLUMNS if c in frame.columns])
    frame["customer_id"] = frame["customer_id"].astype("string")
    return frame, json.loads(found[0][0])
