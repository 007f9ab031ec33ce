"""Shared plumbing of the feature builders: cutoffs, DuckDB queries over pandas frames.

The builders keep pandas frames at the API and let DuckDB run the group-wise aggregates
underneath (it scans the frames in place, on two threads, within a memory limit).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: DuckDB settings for feature queries (this project's reference machine has two cores).
DUCKDB_THREADS = 2
DUCKDB_MEMORY_LIMIT = "3GB"

US_PER_DAY = 86_400_000_000.0


def normalize_cutoff(cutoff: str | pd.Timestamp) -> pd.Timestamp:
    """The cutoff as a timezone-naive UTC Timestamp (microseconds).

    Parameters
    ----------
    cutoff : str or Timestamp or datetime
        Naive values are taken as UTC; aware ones are converted to UTC.

    Raises
    ------
    ValueError
        When the cutoff is not a date.
    """
    try:
        ts = pd.Timestamp(cutoff)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"cutoff {cutoff!r} is not a date (expected e.g. 2024-06-01)") from exc
    if ts is pd.NaT or pd.isna(ts):
        raise ValueError(f"cutoff {cutoff!r} is not a date (expected e.g. 2024-06-01)")
    if ts.tz is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.as_unit("us")


def sql_ts(ts: pd.Timestamp) -> str:
    """A DuckDB TIMESTAMP literal."""
    return f"TIMESTAMP '{ts.strftime('%Y-%m-%d %H:%M:%S.%f')}'"


def days_before(cutoff: pd.Timestamp, expr: str) -> str:
    """SQL for the (fractional) number of days from ``expr`` to the cutoff."""
    return f"(epoch_us({sql_ts(cutoff)}) - epoch_us({expr})) / {US_PER_DAY}"


def window_start(cutoff: pd.Timestamp, days: int) -> pd.Timestamp:
    """First instant of the trailing window ``[cutoff - days, cutoff)``."""
    return cutoff - pd.Timedelta(days=int(days))


_BASE: duckdb.DuckDBPyConnection | None = None
_BASE_LOCK = threading.Lock()


def connect() -> duckdb.DuckDBPyConnection:
    """A cursor on a shared in-memory DuckDB database with the project's limits.

    The database is created on first use (not at import); each call gets its own cursor,
    so concurrent callers (e.g. API workers) do not share registered views.
    """
    global _BASE
    with _BASE_LOCK:
        if _BASE is None:
            _BASE = duckdb.connect(
                config={
                    "threads": DUCKDB_THREADS,
                    "memory_limit": DUCKDB_MEMORY_LIMIT,
                    "preserve_insertion_order": False,
                }
            )
        return _BASE.cursor()


def query(sql: str, frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Run ``sql`` over pandas frames; return a frame indexed by a sorted string ``customer_id``.

    Parameters
    ----------
    sql : str
        Must return a ``customer_id`` column.
    frames : mapping of str to DataFrame
        Registered under their keys as views.
    """
    con = connect()
    try:
        for name, frame in frames.items():
            con.register(name, frame)
        out = con.execute(sql).df()
    finally:
        con.close()
    return set_customer_index(out)


def set_customer_index(frame: pd.DataFrame) -> pd.DataFrame:
    """Index by ``customer_id`` (string dtype), sorted."""
    frame = frame.set_index(frame["customer_id"].astype("string")).drop(columns="customer_id")
    frame.index.name = "customer_id"
    return frame.sort_index()


def customer_index(values: object) -> pd.Index:
    """A sorted, unique string Index named ``customer_id``."""
    index = pd.Index(pd.array(pd.unique(pd.Series(values, dtype="string")), dtype="string"))
    index = index.dropna().sort_values()
    index.name = "customer_id"
    return index


def _arrow_ids(ids: pd.Series) -> pa.ChunkedArray:
    arr = pa.array(ids.array) if not isinstance(ids.array, pa.ChunkedArray) else ids.array
    if isinstance(arr, pa.Array):
        arr = pa.chunked_array([arr])
    return arr


def sorted_segments(ids: pd.Series, ts: np.ndarray) -> np.ndarray | None:
    """Start flags of each customer's block when rows are sorted by (customer_id, timestamp).

    Returns None when the rows are not so sorted (the caller then sorts).
    """
    n = len(ids)
    new = np.ones(n, dtype=bool)
    if n <= 1:
        return new
    arr = _arrow_ids(ids)
    if arr.null_count:
        return None
    head, tail = arr.slice(0, n - 1), arr.slice(1)
    new[1:] = pc.not_equal(head, tail).to_numpy(zero_copy_only=False)
    # sorted by id <=> ids only ever increase where they change (one comparison per customer)
    change = pa.array(np.flatnonzero(new[1:]))
    if len(change) and not pc.all(pc.less(head.take(change), tail.take(change))).as_py():
        return None
    same = ~new[1:]
    if np.any(np.diff(ts)[same] < 0):
        return None
    return new


class Segments:
    """Rows of an event table before a cutoff, grouped by customer without sorting twice.

    Validated tables are sorted by (customer_id, timestamp), so each customer's rows form
    one contiguous block and group-wise sums are single ``bincount``/``reduceat`` passes;
    other orders are sorted once here.

    Attributes
    ----------
    index : Index
        Customer ids with at least one row before the cutoff (sorted, string dtype).
    rows : ndarray
        Positions (in the original table) of the rows before the cutoff, grouped by customer
        and in time order within a customer.
    seg : ndarray of int32
        Segment (customer) number of each of ``rows``.
    starts : ndarray
        Position in ``rows`` of each customer's first row.
    """

    def __init__(self, frame: pd.DataFrame, cutoff: pd.Timestamp) -> None:
        ids = frame["customer_id"]
        ts = frame["timestamp"].to_numpy(dtype="datetime64[us]").view("int64")
        base = None
        missing = ids.isna().to_numpy() | np.isnat(frame["timestamp"].to_numpy(dtype="datetime64[us]"))
        if missing.any():  # rows without a customer or a time belong to no one
            base = np.flatnonzero(~missing)
            ids, ts = ids.iloc[base], ts[base]
        new = sorted_segments(ids, ts)
        order = None
        if new is None:
            codes = pd.factorize(ids, sort=True)[0]
            order = np.lexsort((ts, codes))
            ids, ts = ids.iloc[order], ts[order]
            new = sorted_segments(ids, ts)
            assert new is not None
        keep = ts < np.datetime64(cutoff.to_datetime64(), "us").astype("int64")
        rows = np.flatnonzero(keep)
        seg_all = np.cumsum(new, dtype=np.int32)
        seg_all -= 1
        seg = seg_all[rows]
        del seg_all
        first = np.empty(len(rows), dtype=bool)
        if len(rows):
            first[0] = True
            np.not_equal(seg[1:], seg[:-1], out=first[1:])
        self.starts = np.flatnonzero(first)
        # renumber segments 0..n-1 over the kept rows only
        self.seg = (np.cumsum(first, dtype=np.int32) - 1).astype(np.int32, copy=False)
        self.index = pd.Index(ids.iloc[rows[self.starts]].array, dtype="string", name="customer_id")
        self.ts = ts[rows]
        rows = rows if order is None else order[rows]
        self.rows = rows if base is None else base[rows]

    @property
    def n(self) -> int:
        """Number of customers."""
        return len(self.starts)

    def column(self, frame: pd.DataFrame, name: str, dtype: str = "float64") -> np.ndarray:
        """Values of a column for the kept rows, in segment order (missing -> NaN)."""
        col = frame[name]
        if dtype == "float64":
            values = col.to_numpy(dtype="float64", na_value=np.nan)
        else:
            values = col.to_numpy()
        return values[self.rows]

    def levels(self, cutoff: pd.Timestamp, windows: tuple[int, ...]) -> np.ndarray:
        """For each kept row, how many of the (ascending) windows contain it (0..len(windows))."""
        levels = np.zeros(len(self.ts), dtype=np.int8)
        for w in windows:
            start = np.datetime64((cutoff - pd.Timedelta(days=int(w))).to_datetime64(), "us").astype("int64")
            levels += self.ts >= start
        return levels

    def windowed(
        self,
        key: np.ndarray,
        n_keys: int,
        levels: np.ndarray,
        n_windows: int,
        weights: Sequence[np.ndarray | None] = (None,),
    ) -> list[np.ndarray]:
        """Per customer, key and window: counts (weights None) or sums of weights of rows in the window.

        One array (customers, n_keys, n_windows + 1) per entry of ``weights``: windows in
        ascending length order, then all history before the cutoff.
        """
        n_levels = n_windows + 1
        flat = self.seg.astype(np.int64)
        flat *= n_keys
        flat += key
        flat *= n_levels
        flat += levels
        size = self.n * n_keys * n_levels
        out = []
        for w in weights:
            counts = np.bincount(flat, weights=w, minlength=size).reshape(self.n, n_keys, n_levels)
            # a row with level L is inside the windows j >= n_windows - L (ascending lengths)
            out.append(np.cumsum(counts[:, :, ::-1], axis=2).astype(np.float64, copy=False))
        return out


def positions(target: pd.Index, source: pd.Index) -> np.ndarray:
    """Position in ``source`` of each customer id of ``target`` (-1 when absent), hashed by Arrow."""
    if len(target) == 0:
        return np.zeros(0, dtype=np.int64)
    t = pa.array(pd.array(target, dtype="string"))
    s = pa.array(pd.array(source, dtype="string"))
    found = pc.index_in(t, value_set=s)
    return pc.fill_null(found, -1).to_numpy().astype(np.int64, copy=False)


def align(frame: pd.DataFrame, index: pd.Index) -> pd.DataFrame:
    """``frame.reindex(index)`` for customer-id indexes (missing rows become NaN / NA), fast."""
    if frame.index.equals(index):
        return frame.set_axis(index)
    pos = positions(index, frame.index)
    data = {c: frame[c].array.take(pos, allow_fill=True) for c in frame.columns}
    return pd.DataFrame(data, index=index, columns=frame.columns)


_SEGMENTS: ContextVar[dict[tuple[int, int], tuple[pd.DataFrame, Segments]] | None] = ContextVar(
    "churnlens_segments", default=None
)


@contextlib.contextmanager
def shared_segments() -> Iterator[None]:
    """Within this block, :func:`segments_for` reuses the grouping of a table at a cutoff.

    Used by :func:`churnlens.features.build_snapshot` so the purchases table is grouped once
    for all families; outside the block nothing is cached.
    """
    token = _SEGMENTS.set({})
    try:
        yield
    finally:
        _SEGMENTS.reset(token)


def segments_for(frame: pd.DataFrame, cutoff: pd.Timestamp) -> Segments:
    """``Segments(frame, cutoff)``, shared inside a :func:`shared_segments` block."""
    cache = _SEGMENTS.get()
    if cache is None:
        return Segments(frame, cutoff)
    key = (id(frame), int(cutoff.value))
    hit = cache.get(key)
    if hit is not None and hit[0] is frame:
        return hit[1]
    segs = Segments(frame, cutoff)
    cache[key] = (frame, segs)
    return segs
