"""Write tables atomically as CSV or Parquet (temp file in the same directory, then rename)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from churnlens.errors import InputError

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def output_format(path: str | Path) -> str:
    """``"csv"`` or ``"parquet"`` from a file name, or a ValueError naming the accepted extensions."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise InputError(
            f"output file {path} must end in .csv or .parquet (got {suffix or 'no extension'!r})"
        )
    return FORMATS[suffix]


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then move it over ``path``.

    Readers never see a half-written file; on failure the temporary file is removed and an
    existing ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _arrow(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False)


def write_table(frame: pd.DataFrame, path: str | Path, fmt: str | None = None) -> Path:
    """Write ``frame`` (index dropped) atomically as CSV or Parquet (by ``fmt`` or the extension)."""
    fmt = fmt or output_format(path)
    table = _arrow(frame)
    if fmt == "csv":
        return atomic_write(path, lambda tmp: pa_csv.write_csv(table, tmp))
    if fmt == "parquet":
        return atomic_write(path, lambda tmp: pq.write_table(table, tmp))
    raise InputError(f"unknown output format {fmt!r}: expected csv or parquet")


def sibling(out: str | Path, part: str, suffix: str | None = None) -> Path:
    """``<stem>.<part><suffix>`` beside ``out`` (``campaign.csv`` -> ``campaign.reasons.csv``)."""
    out = Path(out)
    return out.with_name(f"{out.stem}.{part}{suffix if suffix is not None else out.suffix}")
