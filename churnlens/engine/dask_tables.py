"""Input tables on Dask: read in chunks, shuffle into customer buckets, validate per bucket.

Every customer's rows of every table land in the same bucket (a stable hash of the
customer id, normalised exactly as the validator normalises it), so everything the local
code computes per customer can run per bucket unchanged:

1. *split*: each chunk of each input file (a Parquet row group batch, or a whole CSV
   file) is read on a worker and written as one Parquet piece per bucket
   (``raw/<table>/b=00007/c=00012.parquet``);
2. *validate*: each bucket's pieces are read in chunk order, validated and repaired by
   :func:`churnlens.data.validate.validate_frames` (the local validator) and written as
   ``valid/<table>/b=00007.parquet``; the per-bucket reports are merged.

Later stages (snapshots, training sets, scoring) read validated buckets with
:func:`load_bucket`. The shuffle goes through disk so a worker never holds more than one
chunk or one bucket.
"""

from __future__ import annotations

import math
import os
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pa_ds
import pyarrow.parquet as pq

from churnlens.data.bounds import InputBounds
from churnlens.data.errors import DataValidationError
from churnlens.data.io import arrow_to_pandas, find_table_files, read_table_file, table_format, table_parts
from churnlens.data.report import REPAIR_KINDS, Repair, TableSummary, ValidationReport
from churnlens.data.tables import EVENT_TABLES, ISOLATED_MAX, TABLE_NAMES, Tables, observed_end, top_values
from churnlens.data.validate import (
    check_column_mapping,
    resolve_columns,
    string_categories,
    text_column,
    validate_frames,
)
from churnlens.errors import InputError

#: Target input rows (all tables) per bucket: a bucket's snapshot then needs well under 1 GB.
ROWS_PER_BUCKET = 3_000_000
#: Target rows per split chunk (Parquet row groups are grouped up to this).
ROWS_PER_CHUNK = 2_000_000
#: Task retries after a worker is lost: every task rewrites only its own files, atomically.
RETRIES = 2


def bucket_of(customer_id: pd.Series, n_buckets: int) -> np.ndarray:
    """Bucket (0..n_buckets-1) of each customer id; stable across processes and machines.

    Ids are first normalised like the validator does (``7``, ``7.0`` and ``"7"`` are one
    customer), then hashed with pandas' keyed SipHash of the text. Each distinct id is hashed
    once (event tables repeat ids many times). Missing ids go to bucket 0.
    """
    codes, uniques = pd.factorize(customer_id.reset_index(drop=True), use_na_sentinel=True)
    text = text_column(pd.Series(uniques)).fillna("")
    hashes = pd.util.hash_pandas_object(text.astype(object), index=False).to_numpy()
    per_id = (hashes % np.uint64(n_buckets)).astype(np.int32)
    return np.where(codes >= 0, per_id[np.maximum(codes, 0)] if len(per_id) else 0, 0).astype(np.int32)


def write_parquet_atomic(table: pa.Table | pd.DataFrame, path: Path, compression: str = "snappy") -> None:
    """Write Parquet to a temp name then rename: a retried or killed task leaves no torn file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        if isinstance(table, pd.DataFrame):
            table.to_parquet(tmp, index=False, compression=compression)
        else:
            pq.write_table(table, tmp, compression=compression)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------- split


@dataclass(frozen=True)
class Chunk:
    """One unit of input read by one task: a CSV file, or row groups of one Parquet file."""

    table: str
    path: str
    number: int
    row_groups: tuple[int, ...] | None = None
    dataset_root: str | None = None


def _plan_chunks(table: str, path: Path, start: int) -> list[Chunk]:
    if table_format(path) == "csv":  # a CSV file, or each non-empty part of a CSV table folder
        parts = [p for p in table_parts(path, table) if p.stat().st_size > 0] if path.is_dir() else [path]
        root = str(path) if path.is_dir() else None  # a part's partition keys come from its folders
        return [Chunk(table, str(part), start + i, None, root) for i, part in enumerate(parts)]
    files = table_parts(path, table) if path.is_dir() else [path]
    chunks: list[Chunk] = []
    for file in files:
        meta = pq.ParquetFile(file).metadata
        groups: list[int] = []
        rows = 0
        for g in range(meta.num_row_groups):
            groups.append(g)
            rows += meta.row_group(g).num_rows
            if rows >= ROWS_PER_CHUNK:
                chunks.append(Chunk(table, str(file), start + len(chunks), tuple(groups), str(path)))
                groups, rows = [], 0
        if groups or meta.num_row_groups == 0:
            chunks.append(Chunk(table, str(file), start + len(chunks), tuple(groups), str(path)))
    return chunks


def _read_chunk(chunk: Chunk, mapping: Mapping[str, str] | None) -> pd.DataFrame:
    """The chunk's rows with contract column names, typed as the local reader types them."""
    if chunk.row_groups is None:  # a CSV file or part
        frame, _ = read_table_file(chunk.path, chunk.table, mapping=mapping, folder=chunk.dataset_root)
        return frame
    root = Path(chunk.dataset_root or chunk.path)
    try:
        dataset = pa_ds.dataset(root, format="parquet", partitioning="hive")
        names = list(dataset.schema.names)
        rename, keep, _ = resolve_columns(chunk.table, names, mapping)
        fragment = next(f for f in dataset.get_fragments() if Path(f.path) == Path(chunk.path))
        pieces = [
            piece.to_table(schema=dataset.schema, columns=keep)
            for piece in fragment.split_by_row_group()
            if piece.row_groups[0].id in chunk.row_groups
        ]
        data = pa.concat_tables(pieces) if pieces else dataset.schema.empty_table().select(keep)
    except DataValidationError:
        raise
    except (pa.ArrowException, OSError, StopIteration) as exc:
        raise DataValidationError(
            chunk.table, None, f"{Path(chunk.path).name} is not a readable Parquet file ({exc})"
        ) from None
    return arrow_to_pandas(data)[keep].rename(columns=rename)


def _split_chunk(chunk: Chunk, raw_root: str, n_buckets: int, mapping: Mapping[str, str] | None) -> int:
    """Write the chunk's rows as one Parquet piece per bucket; return the rows read."""
    frame = _read_chunk(chunk, mapping)
    if "customer_id" not in frame.columns:
        # the validator names the missing column; it needs one bucket to see the rows
        buckets = np.zeros(len(frame), dtype=np.int32)
    else:
        buckets = bucket_of(frame["customer_id"], n_buckets)
    table = pa.Table.from_pandas(frame, preserve_index=False)
    order = np.argsort(buckets, kind="stable")  # keeps input order inside a bucket
    sorted_buckets = buckets[order]
    table = table.take(pa.array(order))
    bounds = np.searchsorted(sorted_buckets, np.arange(n_buckets + 1))
    for b in range(n_buckets):
        lo, hi = int(bounds[b]), int(bounds[b + 1])
        if hi > lo:
            path = Path(raw_root) / chunk.table / f"b={b:05d}" / f"c={chunk.number:06d}.parquet"
            write_parquet_atomic(table.slice(lo, hi - lo), path, compression="lz4")  # scratch: fast
    return len(frame)


# --------------------------------------------------------------------------- validate


@dataclass(frozen=True)
class StagedData:
    """Validated tables split into customer buckets on a shared directory.

    Attributes
    ----------
    root : str
        Directory holding ``valid/<table>/b=NNNNN.parquet`` (and ``_empty.parquet`` per table).
    n_buckets : int
    tables : tuple of str
        Tables present in the input, contract order.
    data_start, data_end : Timestamp
        Earliest and latest event of the validated tables (over all buckets).
    report : ValidationReport
        The merged validation report of all buckets.
    """

    root: str
    n_buckets: int
    tables: tuple[str, ...]
    data_start: pd.Timestamp
    data_end: pd.Timestamp
    report: ValidationReport = field(compare=False)
    rows: dict[str, int] = field(default_factory=dict, compare=False)


def bucket_file(root: str | Path, table: str, bucket: int) -> Path:
    return Path(root) / "valid" / table / f"b={bucket:05d}.parquet"


def _validate_bucket(
    bucket: int,
    raw_root: str,
    valid_root: str,
    tables: tuple[str, ...],
    data_end: pd.Timestamp | None,
    drop_missing_customer: bool,
    bounds: InputBounds | None = None,
    now: pd.Timestamp | None = None,
) -> dict[str, Any]:
    """Validate one bucket with the local validator and write its typed tables."""
    frames: dict[str, pd.DataFrame] = {}
    for name in tables:
        folder = Path(raw_root) / name / f"b={bucket:05d}"
        files = sorted(folder.glob("c=*.parquet")) if folder.is_dir() else []
        if files:
            frames[name] = arrow_to_pandas(pa_ds.dataset([str(f) for f in files], format="parquet").to_table())
    if "purchases" not in frames:
        if not frames:
            return {"bucket": bucket, "empty": True}
        raise InputError(
            f"customer bucket {bucket} has customers but no purchases; use fewer partitions "
            f"(--partitions) for a base this small"
        )
    validated, report = validate_frames(
        frames,
        sources={n: f"{n} (bucket {bucket})" for n in frames},
        data_end=data_end,
        drop_missing_customer=drop_missing_customer,
        bounds=bounds,
        now=now,
    )
    for name, frame in validated.present().items():
        write_parquet_atomic(frame, bucket_file(valid_root, name, bucket))
    events = [
        f["timestamp"].to_numpy(dtype="datetime64[us]") for n, f in validated.present().items() if n in EVENT_TABLES
    ]
    # enough of the latest events for the data end of the whole base (observed_end)
    latest = np.concatenate([top_values(ts, ISOLATED_MAX + 1) for ts in events])
    return {"bucket": bucket, "empty": False, "report": report, "latest": latest, "events": sum(map(len, events))}


def _merge_reports(reports: list[ValidationReport], data_end: pd.Timestamp | None) -> ValidationReport:
    merged = ValidationReport(data_end=data_end)
    repairs: dict[tuple[str, str], list[Repair]] = {}
    for report in reports:
        for repair in report.repairs:
            repairs.setdefault((repair.table, repair.kind), []).append(repair)
    for (table, kind), found in repairs.items():
        if kind == "ignored_columns":
            merged.repairs.append(found[0])
            continue
        n = sum(r.rows_affected for r in found)
        examples = tuple(e for r in found for e in r.example_rows)[:5]
        merged.repairs.append(Repair(table, kind, n, f"{n:,}: {REPAIR_KINDS.get(kind, kind)}", examples))
    for name in TABLE_NAMES:
        parts = [r.tables[name] for r in reports if name in r.tables]
        if not parts:
            continue
        starts = [p.start for p in parts if p.start is not None and not pd.isna(p.start)]
        ends = [p.end for p in parts if p.end is not None and not pd.isna(p.end)]
        merged.tables[name] = TableSummary(
            name=name,
            source=name,
            rows_in=sum(p.rows_in for p in parts),
            rows_out=sum(p.rows_out for p in parts),
            customers=sum(p.customers for p in parts),
            start=min(starts) if starts else None,
            end=max(ends) if ends else None,
        )
    return merged


def default_buckets(total_rows: int, n_workers: int) -> int:
    """Buckets for a base: about :data:`ROWS_PER_BUCKET` input rows each, at least two per worker."""
    return max(2 * max(n_workers, 1), math.ceil(total_rows / ROWS_PER_BUCKET))


def stage_tables(
    client: Any,
    data_dir: str | Path,
    work_dir: str | Path,
    *,
    n_buckets: int | None = None,
    columns: Mapping[str, Mapping[str, str]] | None = None,
    data_end: pd.Timestamp | str | None = None,
    drop_missing_customer: bool = False,
    bounds: InputBounds | None = None,
) -> StagedData:
    """Read, bucket and validate a data directory on a Dask cluster.

    Parameters
    ----------
    client : distributed.Client
    data_dir : str or Path
        A data directory as for :func:`churnlens.data.load_tables` (CSV files, Parquet files
        or partitioned Parquet directories). Workers must see the same path.
    work_dir : str or Path
        Shared scratch directory (created; the caller removes it).
    n_buckets : int, optional
        Customer buckets (partitions); default :func:`default_buckets`.
    columns : mapping, optional
        Column mapping, as for :func:`churnlens.data.load_tables`.
    data_end : Timestamp or str, optional
        Events after it are dropped and reported.
    drop_missing_customer : bool
    bounds : InputBounds, optional
        As for :func:`churnlens.data.load_tables`; the load time is taken once, for every bucket.

    Returns
    -------
    StagedData

    Raises
    ------
    DataValidationError
        As the local loader: the first bucket with a hard problem names table, column, rows.
    """
    paths = find_table_files(data_dir)
    mapping = check_column_mapping(columns)
    work = Path(work_dir).resolve()
    raw_root, valid_root = work / "raw", work
    chunks: list[Chunk] = []
    for name, path in paths.items():
        chunks += _plan_chunks(name, path, len(chunks))
    total = 0
    for name, path in paths.items():
        files = table_parts(path, name) if path.is_dir() else [path]
        if table_format(path) == "parquet":
            total += sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        else:
            total += sum(max(f.stat().st_size // 60, 1) for f in files)  # ~60 bytes per CSV row
    n_workers = len(client.scheduler_info(n_workers=-1).get("workers", {})) or 1
    n = int(n_buckets or default_buckets(total, n_workers))
    if n < 1:
        raise InputError(f"the number of partitions must be >= 1, got {n}")
    end = None if data_end is None else pd.Timestamp(data_end)
    if end is not None and end.tz is not None:
        end = end.tz_convert("UTC").tz_localize(None)
    split = [
        client.submit(_split_chunk, c, str(raw_root), n, mapping.get(c.table), pure=False, retries=RETRIES)
        for c in chunks
    ]
    rows_in = client.gather(split)
    present = tuple(name for name in TABLE_NAMES if name in paths)
    results = client.gather(
        client.map(
            _validate_bucket,
            range(n),
            raw_root=str(raw_root),
            valid_root=str(valid_root),
            tables=present,
            data_end=end,
            drop_missing_customer=drop_missing_customer,
            bounds=bounds,
            now=pd.Timestamp.now(tz="UTC"),
            pure=False,
            retries=RETRIES,
        )
    )
    shutil.rmtree(raw_root, ignore_errors=True)
    reports = [r["report"] for r in results if not r["empty"]]
    report = _merge_reports(reports, end)
    # an empty typed frame per table, for buckets where a present table has no rows
    for name in present:
        first = next(
            (
                bucket_file(valid_root, name, r["bucket"])
                for r in results
                if not r["empty"] and bucket_file(valid_root, name, r["bucket"]).is_file()
            ),
            None,
        )
        if first is not None:
            write_parquet_atomic(pd.read_parquet(first).iloc[:0], Path(valid_root) / "valid" / name / "_empty.parquet")
    starts = [s.start for s in report.tables.values() if s.start is not None and s.name in EVENT_TABLES]
    filled = [r for r in results if not r["empty"]]
    # the data end as Tables.data_end defines it, over every bucket's latest events
    data_end = observed_end(
        np.concatenate([r["latest"] for r in filled]), sum(r["events"] for r in filled), min(starts)
    )
    return StagedData(
        root=str(valid_root),
        n_buckets=n,
        tables=present,
        data_start=min(starts),
        data_end=data_end,
        report=report,
        rows={"input": int(sum(rows_in))},
    )


def load_bucket(staged: StagedData, bucket: int) -> Tables:
    """The validated tables of one bucket (a present table with no rows here is empty, typed)."""
    frames: dict[str, pd.DataFrame] = {}
    for name in staged.tables:
        path = bucket_file(staged.root, name, bucket)
        if not path.is_file():
            path = Path(staged.root) / "valid" / name / "_empty.parquet"
        frames[name] = string_categories(pd.read_parquet(path))
    return Tables(**frames)


def bucket_has_data(staged: StagedData, bucket: int) -> bool:
    """Whether the bucket holds any purchase (an empty bucket gives empty results)."""
    return bucket_file(staged.root, "purchases", bucket).is_file()
