"""A fingerprint of the input tables: row counts, date range and a content hash."""

from __future__ import annotations

import hashlib
from typing import Any

import pandas as pd

from churnlens.data.tables import Tables


def data_fingerprint(tables: Tables) -> dict[str, Any]:
    """Row counts per table, first and last event, and a SHA-256 of every table's content.

    The hash is order-sensitive over validated (sorted) tables, so the same data gives the
    same fingerprint however the files were laid out.
    """
    return {
        "rows": {name: int(len(table)) for name, table in tables.present().items()},
        "start": str(tables.data_start),
        "end": str(tables.data_end),
        "hash": tables_digest(tables),
    }


def tables_digest(tables: Tables) -> str:
    """SHA-256 of every present table's name, columns and content, in contract order."""
    digest = hashlib.sha256()
    for name, table in tables.present().items():
        digest.update(name.encode())
        digest.update(",".join(map(str, table.columns)).encode())
        digest.update(pd.util.hash_pandas_object(table, index=False).to_numpy().tobytes())
    return digest.hexdigest()
