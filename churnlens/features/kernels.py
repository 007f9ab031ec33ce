"""Per-customer array kernels of the feature builders: cutoffs, grouping rows by customer, windowed sums.

The builders keep pandas frames at the API and compute group-wise aggregates with numpy
underneath. Validated tables are sorted by (customer_id, timestamp), so a customer's rows
before a cutoff are one contiguous run: :class:`Segments` records where each run starts and
builders walk the table in chunks of whole customers, so their temporaries stay small
(tens of MB) whatever the table size, and sums are taken in time order (deterministic).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from churnlens.errors import InputError

US_PER_DAY = 86_400_000_000.0


def parse_cutoff(cutoff: str | pd.Timestamp, *, name: str = "cutoff") -> pd.Timestamp:
    """A cutoff as a timezone-naive UTC Timestamp (microseconds): the one parser of cutoffs.

    Parameters
    ----------
    cutoff : str or Timestamp or datetime
        Naive values are taken as UTC; aware ones are converted to UTC.
    name : str
        How the caller calls the value in messages (``--cutoff`` on the command line).

    Raises
    ------
    InputError
        When the cutoff is not a date.
    """
    problem = InputError(f"{name} {cutoff!r} is not a date (expected YYYY-MM-DD, e.g. 2024-06-01)")
    try:
        ts = pd.Timestamp(cutoff)
    except (TypeError, ValueError, OverflowError) as exc:
        raise problem from exc
    if ts is pd.NaT or pd.isna(ts):
        raise problem
    if ts.tz is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.as_unit("us")


#: Kept for the builders' imports.
normalize_cutoff = parse_cutoff


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


#: Rows per chunk when builders walk a table customer block by customer block: temporaries
#: stay a few dozen MB whatever the table size (and chunks fit the CPU caches better).
CHUNK_ROWS = 1 << 18


def time_values(frame: pd.DataFrame) -> np.ndarray:
    """The ``timestamp`` column as int64 epoch microseconds (NaT = int64 min).

    A read-only view of the column when it is already ``datetime64[us]`` (validated tables).
    """
    return frame["timestamp"].to_numpy(dtype="datetime64[us]").view("int64")


def float_values(column: pd.Series) -> np.ndarray:
    """A column as float64 with NaN for missing; a read-only view when it is float64 already."""
    if column.dtype == np.float64:
        return column.to_numpy()
    return column.to_numpy(dtype="float64", na_value=np.nan)


def sorted_blocks(ids: pd.Series, ts: np.ndarray) -> tuple[np.ndarray, pa.Array] | None:
    """Each customer's block when rows are sorted by (customer_id, timestamp).

    Returns the first row of each block and the customer id of each block (Arrow), or
    None when the rows are not so sorted (the caller then sorts).
    """
    n = len(ids)
    arr = _arrow_ids(ids)
    if arr.null_count:
        return None
    if n <= 1:
        return np.arange(n, dtype=np.int64), arr.combine_chunks()
    head, tail = arr.slice(0, n - 1), arr.slice(1)
    new = np.ones(n, dtype=bool)
    new[1:] = pc.not_equal(head, tail).to_numpy(zero_copy_only=False)
    block = np.flatnonzero(new)
    block_ids = arr.take(pa.array(block)).combine_chunks()
    # sorted by id <=> the ids of consecutive blocks increase (one comparison per customer)
    if len(block) > 1 and not pc.all(pc.less(block_ids.slice(0, len(block) - 1), block_ids.slice(1))).as_py():
        return None
    # time order inside each block, compared chunk by chunk (no whole-table temporary)
    for a in range(0, n - 1, CHUNK_ROWS):
        b = min(a + CHUNK_ROWS, n - 1)
        if np.any((ts[a + 1 : b + 1] < ts[a:b]) & ~new[a + 1 : b + 1]):
            return None
    return block, block_ids


#: Up to this many customers :class:`Segments` indexes them from the ids' own array (cheaper for a
#: few; for many, Arrow's take is).
_FEW_CUSTOMERS = 1024


class Segments:
    """Rows of an event table before a cutoff, grouped by customer without sorting twice.

    Validated tables are sorted by (customer_id, timestamp), so each customer's rows form
    one contiguous block whose rows before the cutoff are a prefix of it: then nothing
    row-sized is kept, only where each customer's rows start and how many there are, and
    builders walk the table in chunks of whole customers (:meth:`chunks`), gathering the
    columns they need chunk by chunk. Other orders (or rows without a customer or a time)
    are sorted once here and the row positions kept.

    Attributes
    ----------
    index : Index
        Customer ids with at least one row before the cutoff (sorted, string dtype).
    counts : ndarray of int64
        Number of rows before the cutoff of each customer.
    starts : ndarray of int64
        Position of each customer's first row among the rows before the cutoff (grouped by
        customer, time-ordered within a customer).
    memo : dict
        Results derived from these rows that several builders need (shared with the
        grouping inside :func:`shared_segments`).
    """

    def __init__(self, frame: pd.DataFrame, cutoff: pd.Timestamp) -> None:
        ids = frame["customer_id"]
        ts = time_values(frame)
        self._ts = ts
        self._cut = int(np.datetime64(cutoff.to_datetime64(), "us").astype("int64"))
        self._rows: np.ndarray | None = None  # kept row positions, only when not sorted
        self._row_start = np.zeros(0, dtype=np.int64)  # first row of each customer, when sorted
        self.memo: dict[str, object] = {}
        no_time = ts == np.iinfo(np.int64).min
        if not isinstance(ids.dtype, pd.StringDtype) or _arrow_ids(ids).null_count or no_time.any():
            missing = ids.isna().to_numpy() | no_time
        else:
            missing = no_time  # nothing missing (the usual case, told without a pass over the ids)
        found = None if missing.any() else sorted_blocks(ids, ts)
        if found is not None:
            block, block_ids = found
            # a block's rows before the cutoff are a prefix of it: they end at the block's first
            # row at or after the cutoff, or at the next block
            late = np.flatnonzero(ts >= self._cut)
            after = np.searchsorted(late, block)
            end = np.r_[block[1:], len(ts)]
            if len(late):
                end = np.minimum(
                    end, late[np.minimum(after, len(late) - 1)], where=after < len(late), out=end
                )
            kept = end - block
            has = np.flatnonzero(kept)
            self._row_start = block[has]
            self.counts = kept[has]
            if ids.dtype == "string" and len(has) <= _FEW_CUSTOMERS:  # no round trip through Arrow
                self.index = pd.Index(ids.array.take(block[has]), name="customer_id")
            else:
                kept_ids = block_ids if len(has) == len(block) else block_ids.take(pa.array(has))
                self.index = pd.Index(pd.array(kept_ids, dtype="string"), name="customer_id")
        else:
            # rows without a customer or a time belong to no one; the rest is sorted once
            base = np.flatnonzero(~missing) if missing.any() else None
            sub_ids = ids if base is None else ids.iloc[base]
            sub_ts = ts if base is None else ts[base]
            codes = pd.factorize(sub_ids, sort=True)[0]
            order = np.lexsort((sub_ts, codes))
            kept = np.flatnonzero(sub_ts[order] < self._cut)
            kept_codes = codes[order[kept]]
            first = np.ones(len(kept), dtype=bool)
            np.not_equal(kept_codes[1:], kept_codes[:-1], out=first[1:])
            starts = np.flatnonzero(first)
            self.counts = np.diff(np.r_[starts, len(kept)]).astype(np.int64)
            rows = order[kept]
            self._rows = rows if base is None else base[rows]
            self.index = pd.Index(ids.iloc[self._rows[starts]].array, dtype="string", name="customer_id")
        self.starts = np.zeros(len(self.counts), dtype=np.int64)
        np.cumsum(self.counts[:-1], out=self.starts[1:])
        self.n_rows = int(self.counts.sum())

    @property
    def n(self) -> int:
        """Number of customers."""
        return len(self.counts)

    def chunks(self, max_rows: int | None = None) -> Iterator[Chunk]:
        """The customers in order, in chunks of whole customers of about ``max_rows`` rows
        (default :data:`CHUNK_ROWS`; a customer with more rows is a chunk of its own)."""
        max_rows = CHUNK_ROWS if max_rows is None else int(max_rows)
        ends = self.starts + self.counts
        lo = 0
        while lo < self.n:
            hi = int(np.searchsorted(ends, self.starts[lo] + max_rows, side="right"))
            hi = max(hi, lo + 1)
            yield Chunk(self, lo, hi)
            lo = hi


class Chunk:
    """Customers ``lo:hi`` of a :class:`Segments` and their rows before the cutoff.

    Attributes
    ----------
    lo, hi : int
        Customer (segment) numbers covered: ``lo`` to ``hi - 1``.
    n : int
        ``hi - lo``.
    seg : ndarray of int32
        Local segment number (0 .. n - 1) of each row.
    starts : ndarray of int64
        Position of each customer's first row in the chunk.
    ts : ndarray of int64
        Epoch microseconds of the rows, time-ordered within a customer.
    """

    def __init__(self, segs: Segments, lo: int, hi: int) -> None:
        self.lo, self.hi, self.n = lo, hi, hi - lo
        counts = segs.counts[lo:hi]
        self.starts = segs.starts[lo:hi] - segs.starts[lo]
        self.seg = np.repeat(np.arange(self.n, dtype=np.int32), counts)
        self._rows: np.ndarray | None = None
        self._span = slice(0, 0)
        self._mask: np.ndarray | None = None
        if segs._rows is not None:
            k0 = int(segs.starts[lo])
            self._rows = segs._rows[k0 : k0 + len(self.seg)]
        else:
            # sorted table: the chunk's rows lie in one span of it; inside the span only rows
            # after the cutoff (ends of blocks, customers with none before it) are left out
            r0 = int(segs._row_start[lo])
            r1 = int(segs._row_start[hi - 1] + counts[-1])
            self._span = slice(r0, r1)
            mask = segs._ts[r0:r1] < segs._cut
            self._mask = None if mask.all() else mask
        self.ts = self.take(segs._ts)

    def take(self, values: np.ndarray) -> np.ndarray:
        """The chunk's rows of a whole-table column (may be a read-only view: do not modify)."""
        if self._rows is not None:
            return values[self._rows]
        part = values[self._span]
        return part if self._mask is None else part[self._mask]

    def levels(self, cutoff: pd.Timestamp, windows: tuple[int, ...]) -> np.ndarray:
        """For each row, how many of the (ascending) windows contain it (0..len(windows))."""
        levels = np.zeros(len(self.ts), dtype=np.int8)
        for w in windows:
            start = np.datetime64((cutoff - pd.Timedelta(days=int(w))).to_datetime64(), "us").astype("int64")
            levels += self.ts >= start
        return levels


def windowed(
    chunk: Chunk,
    key: np.ndarray,
    n_keys: int,
    levels: np.ndarray,
    n_windows: int,
    weights: Sequence[np.ndarray | None] = (None,),
) -> list[np.ndarray]:
    """Per customer of the chunk, key and window: counts (weights None) or sums of weights.

    One float64 array (chunk.n, n_keys, n_windows + 1) per entry of ``weights``: windows in
    ascending length order, then all history before the cutoff. ``key`` is 0..n_keys-1 and
    ``levels`` the window level of each row (:meth:`Chunk.levels`).
    """
    nl = n_windows + 1
    flat = chunk.seg.astype(np.int64)
    flat *= n_keys
    flat += key
    flat *= nl
    # level L (inside the L shortest windows) goes to slot nl-1-L: slot j then sums to "in window j"
    flat += nl - 1
    flat -= levels
    size = chunk.n * n_keys * nl
    out = []
    for w in weights:
        sums = (
            np.bincount(flat, weights=w, minlength=size)
            .reshape(chunk.n, n_keys, nl)
            .astype(np.float64, copy=False)
        )
        for j in range(1, nl):  # running sum over the slots
            sums[:, :, j] += sums[:, :, j - 1]
        out.append(sums)
    return out


def latest_positions(seg: np.ndarray, ts: np.ndarray, rank: np.ndarray, n: int) -> np.ndarray:
    """Per segment, the position of the latest row (ties: highest rank); -1 when none."""
    out = np.full(n, -1, dtype=np.int64)
    if len(seg) == 0:
        return out
    # rows come grouped by customer and time-ordered; only ties in time need a sort
    tie = (seg[1:] == seg[:-1]) & (ts[1:] == ts[:-1])
    order = np.lexsort((rank, ts, seg)) if tie.any() else np.arange(len(seg))
    last = np.r_[seg[order][1:] != seg[order][:-1], True]
    out[seg[order][last]] = order[last]
    return out


class FloatColumns:
    """The float64 columns of a feature frame, written into one block as they are computed.

    A frame built from a dict of arrays copies them all into a new block (twice the memory
    at that moment); here each column is copied in when computed and its temporary freed.
    """

    def __init__(self, names: Sequence[str], index: pd.Index) -> None:
        self.names = list(names)
        self.index = index
        self._pos = {name: i for i, name in enumerate(self.names)}
        self._block = np.empty((len(self.names), len(index)))

    def __setitem__(self, name: str, values: np.ndarray) -> None:
        self._block[self._pos[name]] = values

    def __getitem__(self, name: str) -> np.ndarray:
        return self._block[self._pos[name]]

    def rows(self, lo: int, hi: int) -> FloatColumns:
        """The same columns for rows ``lo:hi`` only (writes go to this block)."""
        part = FloatColumns.__new__(FloatColumns)
        part.names, part.index, part._pos = self.names, self.index[lo:hi], self._pos
        part._block = self._block[:, lo:hi]
        return part

    def frame(self, columns: Sequence[str] | None = None, **others: object) -> pd.DataFrame:
        """The frame (no copy of the block), with ``others`` (non-float columns) inserted so the
        columns follow ``columns`` (default: the float names, then the others)."""
        frame = pd.DataFrame(self._block.T, index=self.index, columns=self.names, copy=False)
        order = list(columns) if columns is not None else self.names + list(others)
        for loc, name in enumerate(order):
            if name in others:
                frame.insert(loc, name, others[name])
        return frame


class FeatureBlock(NamedTuple):
    """A family's features before they become a frame: what a builder computes, which
    :func:`churnlens.features.build_snapshot` copies straight into the snapshot (a frame per
    family and taking it apart again cost more than the arithmetic for a few customers).

    Attributes
    ----------
    numbers : FloatColumns
        The float64 columns, indexed by customer.
    columns : list of str
        Every column of the family, in order.
    others : dict
        The non-float columns (text arrays, one value per customer), by name.
    """

    numbers: FloatColumns
    columns: list[str]
    others: dict[str, Any]

    @property
    def index(self) -> pd.Index:
        """The customers (rows)."""
        return self.numbers.index

    def frame(self) -> pd.DataFrame:
        """The family's feature frame (what its ``build_*_features`` returns)."""
        return self.numbers.frame(self.columns, **self.others)


def empty_block() -> FeatureBlock:
    """The block of a family whose table is absent: no customers, no columns."""
    return FeatureBlock(FloatColumns([], pd.Index([], dtype="string", name="customer_id")), [], {})


def positions(target: pd.Index, source: pd.Index) -> np.ndarray:
    """Position in ``source`` of each customer id of ``target`` (-1 when absent), hashed by Arrow."""
    if len(target) == 0:
        return np.zeros(0, dtype=np.int64)
    t = pa.array(pd.array(target, dtype="string"))
    s = pa.array(pd.array(source, dtype="string"))
    found = pc.index_in(t, value_set=s)
    return pc.fill_null(found, -1).to_numpy().astype(np.int64, copy=False)


_SEGMENTS: ContextVar[dict[tuple[Any, int], tuple[pd.DataFrame, Any]] | None] = ContextVar(
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


def shared_value(frame: pd.DataFrame, what: str, compute: Callable[[], Any]) -> Any:
    """``compute()`` about ``frame``, computed once per frame inside a :func:`shared_segments`
    block (several builders ask the same question of a table); outside it, every time."""
    cache = _SEGMENTS.get()
    if cache is None:
        return compute()
    key = (what, id(frame))
    hit = cache.get(key)  # type: ignore[call-overload]
    if hit is not None and hit[0] is frame:
        return hit[1]
    value = compute()
    cache[key] = (frame, value)  # type: ignore[index]
    return value
