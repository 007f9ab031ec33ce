"""The customers' event tables, loaded once, and one customer's rows found by binary search.

Validated :class:`~churnlens.data.tables.Tables` are sorted by customer id, so each table's
rows of one customer are a contiguous block. :class:`CustomerTables` records, per table, the
distinct ids (sorted) and where each one's block starts; looking a customer up is a binary
search in those ids, never a mask over the whole table.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from churnlens.data.tables import Tables


@dataclass(frozen=True)
class Blocks:
    """Where each customer's rows are in one table sorted by customer id."""

    ids: np.ndarray
    starts: np.ndarray

    @classmethod
    def of(cls, column: pd.Series) -> Blocks:
        """The blocks of a sorted customer-id column (one pass, no per-row Python)."""
        values = pa.array(column)  # arrow-backed strings: no copy to Python objects
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        n = len(values)
        if n == 0:
            return cls(np.array([], dtype=str), np.array([0], dtype=np.int64))
        changed = pc.not_equal(values.slice(1), values.slice(0, n - 1)).to_numpy(zero_copy_only=False)
        starts = np.concatenate([[0], np.flatnonzero(changed) + 1, [n]]).astype(np.int64)
        ids = np.asarray(values.take(pa.array(starts[:-1])).to_numpy(zero_copy_only=False), dtype=str)
        if len(ids) > 1 and not (ids[1:] > ids[:-1]).all():
            raise ValueError("customer ids are not sorted: the tables were not validated by churnlens.data")
        return cls(ids, starts)

    def rows(self, customer_id: str) -> slice:
        """The rows of ``customer_id`` (an empty slice when absent)."""
        i = int(np.searchsorted(self.ids, customer_id))
        if i < len(self.ids) and self.ids[i] == customer_id:
            return slice(int(self.starts[i]), int(self.starts[i + 1]))
        return slice(0, 0)


class CustomerTables:
    """Validated tables with a per-customer index.

    Parameters
    ----------
    tables : Tables
        Validated tables (sorted by customer id).
    source : str
        Where they came from (shown when something is missing).
    """

    def __init__(self, tables: Tables, source: str) -> None:
        self.tables = tables
        self.source = source
        self.blocks = {name: Blocks.of(frame["customer_id"]) for name, frame in tables.present().items()}

    def customer(self, customer_id: str) -> Tables:
        """The tables restricted to one customer (empty tables when they have no rows)."""
        out = {}
        for name, frame in self.tables.present().items():
            out[name] = frame.iloc[self.blocks[name].rows(customer_id)].reset_index(drop=True)
        return self.tables.replace(**out)

    def has(self, customer_id: str) -> bool:
        """Whether the customer has any row in any table."""
        return any(b.rows(customer_id).stop > b.rows(customer_id).start for b in self.blocks.values())


class DataStore:
    """Data directories loaded once each (on first use, or at startup with :meth:`preload`).

    Parameters
    ----------
    columns : dict
        ``[columns.<table>]`` mappings of the config, as ``churnlens score`` used them.
    override : Path, optional
        ``--data``: this directory for every campaign, whatever their summaries record.
    """

    def __init__(self, columns: dict[str, dict[str, str]] | None = None, override: Path | None = None) -> None:
        self.columns = columns or {}
        self.override = override
        self._loaded: dict[str, CustomerTables] = {}
        self._lock = threading.Lock()

    def source_of(self, summary: dict) -> str | None:
        """The data directory of a campaign: ``--data``, else what its summary records."""
        if self.override is not None:
            return str(self.override)
        source = summary.get("data_source")
        return str(source) if source else None

    def get(self, source: str) -> CustomerTables:
        """The tables of ``source``, loaded and validated once.

        Raises
        ------
        InputError
            When the directory is missing or its tables are invalid.
        """
        from churnlens.data import load_tables

        with self._lock:
            if source not in self._loaded:
                tables, _ = load_tables(Path(source), columns=self.columns)
                self._loaded[source] = CustomerTables(tables, source)
            return self._loaded[source]

    def preload(self, summaries: list[dict]) -> list[str]:
        """Load the data of these campaigns now; returns the sources loaded."""
        sources = list(dict.fromkeys(s for s in (self.source_of(x) for x in summaries) if s))
        for source in sources:
            self.get(source)
        return sources


__all__ = ["Blocks", "CustomerTables", "DataStore"]
