"""Read and write a data directory: one ``<table>.csv`` / ``<table>.parquet`` file per table.

A data directory holds, per contract table, one of:

- ``<table>.csv`` (UTF-8, comma-separated, header line; ``.csv.gz`` / ``.csv.bz2`` /
  ``.csv.zst`` compressed also accepted);
- ``<table>.parquet`` (or ``.pq``);
- ``<table>/``, ``<table>.parquet/`` or ``<table>.csv/``: a folder of parts, as Spark, Dask or
  pyarrow write them: Parquet files, or CSV files each with the same header line (hive-style
  ``key=value`` sub-folders allowed). Hidden entries and markers (``_SUCCESS``, ``.crc`` files,
  anything starting with ``.`` or ``_``) are not parts; any other file that is not a part of
  the folder's format is refused, naming it, and so is a folder with no part.

Files whose name matches no table but look like data (``purchase.csv``, ``orders.parquet``,
a ``.xlsx`` or ``.json`` file ...) are refused, naming the file and the known tables, so a
typo cannot silently drop a table. Other files (``README.md``, ``config.toml``), hidden
entries (starting with ``.`` or ``_``) and the simulator's ground truth (``truth.parquet``,
see :data:`AUXILIARY_FILES`) are ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.dataset as pa_ds

from churnlens.data.bounds import InputBounds
from churnlens.data.errors import DataValidationError
from churnlens.data.report import ValidationReport
from churnlens.data.schema import TABLE_SPECS
from churnlens.data.tables import TABLE_NAMES, Tables
from churnlens.data.validate import check_column_mapping, resolve_columns, validate_frames
from churnlens.errors import InputError, MissingInputError

CSV_SUFFIXES: tuple[str, ...] = (".csv", ".csv.gz", ".csv.bz2", ".csv.zst")
PARQUET_SUFFIXES: tuple[str, ...] = (".parquet", ".pq")
#: Extensions that look like a data file: refused when the name matches no table.
_DATA_LIKE = {
    ".csv", ".tsv", ".txt", ".parquet", ".pq", ".xlsx", ".xls", ".xlsm", ".ods", ".json", ".jsonl",
    ".ndjson", ".feather", ".arrow", ".orc", ".avro", ".gz", ".bz2", ".zst", ".zip",
}  # fmt: skip
_KNOWN = ", ".join(TABLE_NAMES)
#: Files that may sit in a data directory without being a table: ``churnlens simulate`` writes
#: the true churn labels (and true drivers, true campaign uplift) beside the tables, and
#: ``churnlens train`` reads them from there.
AUXILIARY_FILES: tuple[str, ...] = ("truth.parquet", "truth_drivers.parquet", "truth_uplift.parquet")


def load_tables(
    data_dir: str | Path,
    *,
    columns: Mapping[str, Mapping[str, str]] | None = None,
    data_end: pd.Timestamp | str | None = None,
    drop_missing_customer: bool = False,
    bounds: InputBounds | None = None,
    now: pd.Timestamp | str | None = None,
    warehouse_tables: Mapping[str, str] | None = None,
) -> tuple[Tables, ValidationReport]:
    """Read every table of a data directory (or a PostgreSQL schema), validate, type and repair it.

    Parameters
    ----------
    data_dir : str or Path
        Directory with ``purchases.csv|parquet`` and optionally the other tables, or a
        PostgreSQL URI ``postgresql://user@host:port/db?schema=NAME``
        (:func:`churnlens.warehouse.read_warehouse`: the same validation, repairs and errors).
    columns : mapping, optional
        Per table, user column name -> contract column name (``ChurnConfig.columns``, i.e.
        the TOML section ``[columns.purchases] CustomerID = "customer_id"``).
    data_end : Timestamp or str, optional
        Events strictly after it are dropped and reported (naive = UTC).
    drop_missing_customer : bool, default False
        Drop (and report) event rows without a customer_id instead of raising.
    bounds : InputBounds, optional
        Allowed time range and largest amount; default 1900-01-01 to the load time + 1 day,
        amounts up to 1e12 (:class:`~churnlens.data.bounds.InputBounds`).
    now : Timestamp or str, optional
        The load time the upper time bound counts from; default the clock.
    warehouse_tables : mapping of str to str, optional
        With a PostgreSQL URI: ``[warehouse.tables]``, contract table -> table, view or query.

    Returns
    -------
    tables : Tables
        Validated tables with the dtypes documented in :mod:`churnlens.data.tables`.
    report : ValidationReport
        Row counts before/after, date ranges and every repair made.

    Raises
    ------
    DataValidationError
        On any hard problem (missing or unreadable file, unknown table, missing column,
        bad value ...), naming the table, the column and up to five offending rows.
    MissingInputError
        When ``data_dir`` is not a directory (an InputError and a FileNotFoundError).

    Examples
    --------
    >>> tables, report = load_tables("data/", columns={"purchases": {"CustomerID": "customer_id"}})
    ... # doctest: +SKIP
    """
    from churnlens.warehouse.uri import is_warehouse_uri  # here: churnlens.warehouse reads through this module

    if is_warehouse_uri(data_dir):
        from churnlens.warehouse.read import read_warehouse

        return read_warehouse(
            str(data_dir), tables=warehouse_tables, columns=columns, data_end=data_end,
            drop_missing_customer=drop_missing_customer, bounds=bounds, now=now,
        )  # fmt: skip
    paths = find_table_files(data_dir)
    columns = check_column_mapping(columns)
    frames: dict[str, pd.DataFrame] = {}
    ignored: dict[str, list[str]] = {}
    for name, path in paths.items():
        frames[name], ignored[name] = read_table_file(path, name, mapping=columns.get(name))
    try:
        return validate_frames(
            frames,
            sources={name: path.name + ("/" if path.is_dir() else "") for name, path in paths.items()},
            ignored=ignored,
            data_end=data_end,
            drop_missing_customer=drop_missing_customer,
            bounds=bounds,
            now=now,
        )
    finally:
        del frames
        # Arrow's allocator keeps the freed buffers of reading and typing (at 1M customers
        # ~2.5 GB, more than the validated tables themselves) until asked to give them back
        pa.default_memory_pool().release_unused()


def find_table_files(data_dir: str | Path) -> dict[str, Path]:
    """Map each table present in ``data_dir`` to its file or Parquet directory.

    Raises
    ------
    DataValidationError
        A data-like file matches no table, a table file has an unsupported type, a table has
        several files, or ``purchases`` is missing.
    FileNotFoundError
        When ``data_dir`` is not a directory.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise MissingInputError(f"data directory {root} does not exist or is not a directory")
    found: dict[str, list[Path]] = {}
    for entry in sorted(root.iterdir()):
        if entry.name.startswith((".", "_")) or entry.name in AUXILIARY_FILES:
            continue
        stem, _, rest = entry.name.partition(".")
        suffix = "." + rest.lower() if rest else ""
        if entry.is_dir():
            if stem in TABLE_NAMES and suffix in FOLDER_SUFFIXES:
                table_parts(entry, stem)  # refuses a folder without parts, or with strays
                found.setdefault(stem, []).append(entry)
            elif stem in TABLE_NAMES:
                raise DataValidationError(
                    stem, None, f"folder {entry.name}/ has an unsupported type; name it {stem}.csv/ or {stem}.parquet/"
                )
            elif any(_is_data_like(p) for p in _visible_files(entry)):
                raise DataValidationError(
                    entry.name,
                    None,
                    f"folder {entry.name}/ holds data files but matches no known table; known tables: {_KNOWN}",
                )
            continue
        if stem in TABLE_NAMES:
            if suffix in CSV_SUFFIXES or suffix in PARQUET_SUFFIXES:
                found.setdefault(stem, []).append(entry)
            else:
                raise DataValidationError(
                    stem,
                    None,
                    f"file {entry.name} has an unsupported type '{suffix or '(none)'}'; "
                    f"save it as {stem}.csv or {stem}.parquet",
                )
        elif _is_data_like(entry):
            raise DataValidationError(
                stem,
                None,
                f"file {entry.name} matches no known table; known tables: {_KNOWN} "
                "(rename it, or move it out of the data directory)",
            )
    for name, entries in found.items():
        if len(entries) > 1:
            names = ", ".join(e.name for e in entries)
            raise DataValidationError(name, None, f"has several files ({names}); keep exactly one")
    if "purchases" not in found:
        raise DataValidationError(
            "purchases", None, f"is required but {root} has no purchases.csv or purchases.parquet file"
        )
    return {name: found[name][0] for name in TABLE_NAMES if name in found}


#: Name endings of a table folder (``purchases/``, ``purchases.parquet/``, ``purchases.csv/``).
FOLDER_SUFFIXES: tuple[str, ...] = ("", ".csv", ".parquet", ".pq")


def _is_data_like(path: Path) -> bool:
    return path.suffix.lower() in _DATA_LIKE


def _visible_files(folder: Path) -> list[Path]:
    """Files below ``folder`` whose path has no hidden or marker part (``.x``, ``_SUCCESS``), sorted."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not any(part.startswith((".", "_")) for part in p.relative_to(folder).parts)
    )


def _part_format(path: Path) -> str | None:
    name = path.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if name.endswith(CSV_SUFFIXES):
        return "csv"
    return None


def table_format(path: str | Path) -> str:
    """``"csv"`` or ``"parquet"``: the format of a table file, or of a table folder's parts."""
    path = Path(path)
    if not path.is_dir():
        return _part_format(path) or "csv"
    return _part_format(table_parts(path, path.name.partition(".")[0])[0]) or "csv"


def table_parts(folder: str | Path, table: str) -> list[Path]:
    """The part files of a table folder, sorted (the order their rows are numbered in).

    Raises
    ------
    DataValidationError
        The folder holds no part, parts of both formats, parts of another format than its name
        says, or a file that is not a part (naming it): nothing in a table folder is skipped
        silently. Hidden entries and markers (``.x``, ``_SUCCESS``) are not parts.
    """
    folder = Path(folder)
    files = _visible_files(folder)
    named = _part_format(Path(folder.name)) if "." in folder.name else None
    formats = {_part_format(p) for p in files}
    strays = [p for p in files if _part_format(p) is None]
    if strays:
        raise DataValidationError(
            table,
            None,
            f"folder {folder.name}/ holds {strays[0].relative_to(folder)}, which is not a .csv or .parquet part "
            "(move it out of the folder)",
        )
    if not files:
        raise DataValidationError(table, None, f"folder {folder.name}/ holds no readable part (.csv or .parquet file)")
    if len(formats) > 1 or (named is not None and formats != {named}):
        raise DataValidationError(
            table,
            None,
            f"folder {folder.name}/ mixes formats or holds parts of another format than its name "
            f"({', '.join(sorted(f for f in formats if f))}); keep one format per table",
        )
    return files


def read_table_file(
    path: str | Path, table: str, *, mapping: Mapping[str, str] | None = None, folder: str | Path | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """Read one table file, apply the column mapping, and read only contract columns.

    Values are returned as stored (strings stay strings); typing is
    :func:`churnlens.data.validate_tables`' job.

    Parameters
    ----------
    path : str or Path
        A ``.csv``/``.parquet`` file or a table folder of CSV or Parquet parts.
    table : str
        Contract table name.
    mapping : mapping of str to str, optional
        User column name -> contract column name.
    folder : str or Path, optional
        The table folder ``path`` is a CSV part of (its hive partition keys are then read too).

    Returns
    -------
    frame : DataFrame
        Columns renamed to contract names.
    ignored : list of str
        Columns of the file outside the contract, not read.
    """
    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        raise DataValidationError(table, None, f"file {path.name} is empty (0 bytes)")
    if table_format(path) == "parquet":
        frame, names = _read_parquet(path, table, mapping)
    elif path.is_dir():
        parts = [p for p in table_parts(path, table) if p.stat().st_size > 0]  # Spark's empty partitions
        if not parts:
            raise DataValidationError(table, None, f"folder {path.name}/ holds no readable part (every part is empty)")
        frame, names = _read_csv(parts, table, mapping, root=path)
    else:
        frame, names = _read_csv([path], table, mapping, root=None if folder is None else Path(folder))
    rename, keep, ignored = resolve_columns(table, names, mapping)
    return frame[keep].rename(columns=rename), ignored


def arrow_to_pandas(table: pa.Table) -> pd.DataFrame:
    """An Arrow table as pandas the way every reader converts it (booleans nullable, timestamps kept)."""
    return table.to_pandas(date_as_object=False, types_mapper={pa.bool_(): pd.BooleanDtype()}.get)


def _read_parquet(path: Path, table: str, mapping: Mapping[str, str] | None) -> tuple[pd.DataFrame, list[str]]:
    try:
        dataset = pa_ds.dataset(path, format="parquet", partitioning="hive")
        names = list(dataset.schema.names)
        _, keep, _ = resolve_columns(table, names, mapping)
        data = dataset.to_table(columns=keep)
    except DataValidationError:
        raise
    except (pa.ArrowException, OSError) as exc:
        raise DataValidationError(table, None, f"{path.name} is not a readable Parquet file ({exc})") from None
    return arrow_to_pandas(data), names


def _csv_header(path: Path, table: str) -> list[str]:
    try:
        return list(pa_csv.open_csv(path).schema.names)
    except (pa.ArrowException, OSError) as exc:
        raise DataValidationError(table, None, f"{_shown_name(path)} is not a readable CSV file ({exc})") from None


def _shown_name(path: Path) -> str:
    """A file's name, with its folder's for a part (``customers.csv/part-0.csv``)."""
    return f"{path.parent.name}/{path.name}" if _part_format(path.parent) else path.name


def _partition_keys(part: Path, root: Path | None) -> list[tuple[str, str | None]]:
    """Hive partition columns of a part from its folders (``country=FR/part-0.csv``), as Spark writes them."""
    if root is None:
        return []
    keys = []
    for folder in part.relative_to(root).parts[:-1]:
        key, sep, value = folder.partition("=")
        if sep:
            keys.append((key, None if value == "__HIVE_DEFAULT_PARTITION__" else unquote(value)))
    return keys


def _read_csv(
    paths: list[Path], table: str, mapping: Mapping[str, str] | None, root: Path | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """Read one CSV file, or the CSV parts of a table folder ``root``: every part with the same
    header and the same hive partition keys, which become text columns."""
    spec = TABLE_SPECS[table]
    mapping = dict(mapping or {})
    header = _csv_header(paths[0], table)
    key_names = [k for k, _ in _partition_keys(paths[0], root)]
    for part in paths[1:]:
        other = _csv_header(part, table)
        if other != header:
            raise DataValidationError(
                table,
                None,
                f"part {_shown_name(part)} has the header {other}, not the header of "
                f"{_shown_name(paths[0])} {header}; every part must have the same columns",
            )
        if [k for k, _ in _partition_keys(part, root)] != key_names:
            raise DataValidationError(
                table, None, f"part {part.relative_to(root or part.parent)} has other partition folders than the rest"
            )
    clash = set(key_names) & set(header)
    if clash:
        raise DataValidationError(table, sorted(clash)[0], "is both a partition folder and a column of the parts")
    names = header + key_names
    _, keep, _ = resolve_columns(table, names, mapping)
    # ids and text stay strings ("007" must not become 7); other columns are inferred by
    # Arrow (fast path). Arrow infers types from the first block only, so a bad value further
    # down makes it fail: then everything is re-read as strings and typed by the validator,
    # which finds and names the bad rows.
    as_text = {}
    for name in keep:
        cspec = spec.column(mapping.get(name, name))
        if cspec is not None and cspec.kind in ("id", "text", "category"):
            as_text[name] = pa.string()
    in_file = [name for name in keep if name in header]

    def read(part: Path, types: dict[str, pa.DataType]) -> pa.Table:
        data = _read_csv_arrow(part, in_file, types)
        for key, value in _partition_keys(part, root):
            if key in keep:
                data = data.append_column(key, pa.array([value] * data.num_rows, type=pa.string()))
        return data.select(keep)

    current = paths[0]
    try:
        try:
            data = _concat([read(current := p, as_text) for p in paths])
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            data = _concat([read(current := p, {name: pa.string() for name in in_file}) for p in paths])
    except (pa.ArrowException, OSError) as exc:
        raise DataValidationError(table, None, f"{_shown_name(current)} is not a readable CSV file ({exc})") from None
    return arrow_to_pandas(data), names


def _concat(tables: list[pa.Table]) -> pa.Table:
    # parts typed apart (ints in one, floats in another) are promoted to one type
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="permissive")


def _read_csv_arrow(path: Path, keep: list[str], types: dict[str, pa.DataType]) -> pa.Table:
    return pa_csv.read_csv(
        path,
        convert_options=pa_csv.ConvertOptions(
            include_columns=keep,
            column_types=types,
            # only empty fields are missing: an id or a category may well be "NA" (North America);
            # null words ("NA", "null" ...) in number/time/flag columns are handled by the validator
            null_values=[""],
            strings_can_be_null=True,
        ),
    )


def write_tables(tables: Tables, out_dir: str | Path, *, fmt: str = "parquet") -> dict[str, Path]:
    """Write each present table as ``<out_dir>/<name>.<fmt>``.

    Parameters
    ----------
    tables : Tables
        Tables to write (typically validated or simulated).
    out_dir : str or Path
        Created if missing. Existing files of the same name are overwritten.
    fmt : {"parquet", "csv"}
        File format. CSV timestamps are written as ISO 8601 (``2024-05-02 10:00:00``),
        flags as True/False, missing values as empty fields.

    Returns
    -------
    dict of str to Path
        The files written, by table name.

    Raises
    ------
    ValueError
        Unknown format, or ``out_dir`` already holds the same table in another format (it
        would make the directory ambiguous to :func:`load_tables`).
    """
    if fmt not in ("parquet", "csv"):
        raise InputError(f"fmt must be 'parquet' or 'csv', got {fmt!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name, df in tables.present().items():
        path = out / f"{name}.{fmt}"
        others = [out / f"{name}{s}" for s in CSV_SUFFIXES + PARQUET_SUFFIXES] + [out / name]
        clash = [p for p in others if p != path and p.exists()]
        if clash:
            raise InputError(f"{clash[0]} already exists; writing {path.name} beside it would make {out} ambiguous")
        if fmt == "parquet":
            df.to_parquet(path, index=False)
        else:
            df.to_csv(path, index=False)
        written[name] = path
    return written
