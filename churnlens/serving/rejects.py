"""Customers present in the input but not scored, each with the reason why.

The scored population at cutoff C is DESIGN §3's active population: a purchase in
``[C - active_window, C)`` and no cancellation before C. Every other customer seen in any
input table is listed with the first reason that applies, in this order:

1. ``cancelled before the cutoff``
2. ``no event in any table (listed in customers only)``
3. ``first event after the cutoff`` (every event at or after C)
4. ``no purchase before the cutoff`` (only program, support ... events before C)
5. ``no purchase in the N days before the cutoff``

Refunds (negative amounts) are not purchases here, as in the active-population rule.
6. ``not in the active population at the cutoff`` (anything else; should not happen)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from churnlens.data.tables import EVENT_TABLES, Tables
from churnlens.features.kernels import sorted_blocks

REJECT_COLUMNS = ["customer_id", "reason_code", "reason", "last_purchase_at", "first_event_at"]
#: Stable code of each reason (machine-readable; ``reason`` is the text, in the run's language).
CODES = ("cancelled", "no_events", "first_event_after", "no_purchase_before", "inactive", "other")
CANCELLED = "cancelled before the cutoff"
NO_EVENTS = "no event in any table (listed in customers only)"
FIRST_EVENT_AFTER = "first event after the cutoff"
NO_PURCHASE_BEFORE = "no purchase before the cutoff"
INACTIVE = "no purchase in the {days} days before the cutoff"
OTHER = "not in the active population at the cutoff"


class _Blocks:
    """Each customer's block of rows of a table sorted by (customer_id, timestamp), found once.

    Tables that are not so sorted (never the case for validated tables) are grouped instead.
    """

    def __init__(self, frame: pd.DataFrame) -> None:
        self.frame = frame
        self.ts = frame["timestamp"].to_numpy(dtype="datetime64[us]")
        ids = frame["customer_id"]
        found = None if ids.isna().any() or len(frame) == 0 else sorted_blocks(ids, self.ts.view("int64"))
        if found is not None:
            self.starts: np.ndarray | None = found[0]
            self.ids = pd.Index(pd.array(found[1], dtype="string"), name="customer_id")
        else:
            self.starts = None
            self.ids = pd.Index(ids.dropna().unique(), dtype="string").sort_values()

    def first(self, ids: pd.Index) -> pd.Series:
        """Each customer's first timestamp, for ``ids`` (NaT when none)."""
        if self.starts is not None:
            return pd.Series(self.ts[self.starts], index=self.ids).reindex(ids)
        return self._grouped(np.ones(len(self.ts), dtype=bool), ids, "min")

    def last_where(self, mask: np.ndarray, ids: pd.Index) -> pd.Series:
        """Each customer's last timestamp among the rows in ``mask``, for ``ids`` (NaT when none)."""
        if self.starts is not None:
            if len(self.starts) == 0:
                return pd.Series(pd.NaT, index=ids, dtype="datetime64[us]")
            at = np.maximum.reduceat(np.where(mask, np.arange(len(mask)), -1), self.starts)
            values = np.where(at >= 0, self.ts[np.maximum(at, 0)], np.datetime64("NaT", "us"))
            return pd.Series(values, index=self.ids).reindex(ids)
        return self._grouped(mask, ids, "max")

    def _grouped(self, mask: np.ndarray, ids: pd.Index, how: str) -> pd.Series:
        rows = self.frame.loc[mask, ["customer_id", "timestamp"]]
        grouped = rows.groupby("customer_id", sort=False, observed=True)["timestamp"]
        stat = grouped.min() if how == "min" else grouped.max()
        stat.index = stat.index.astype("string")
        return stat.reindex(ids).astype("datetime64[us]")


def _arrow(ids: pd.Series) -> pa.ChunkedArray:
    """A column of ids as Arrow strings (no copy when it is Arrow-backed already)."""
    arr = ids.array
    out = pa.array(arr) if not isinstance(arr, pa.ChunkedArray) else arr
    out = pa.chunked_array([out]) if isinstance(out, pa.Array) else out
    return out if pa.types.is_string(out.type) or pa.types.is_large_string(out.type) else out.cast(pa.large_string())


class _SortedBlocks:
    """A table sorted by (customer_id, timestamp): each customer's block of rows, read for some customers only.

    ``block_of[code]`` is the block of the customer with that id code (-1: none), set by the caller.
    """

    def __init__(self, ts: np.ndarray, starts: np.ndarray, ids: pa.Array) -> None:
        self.ts, self.starts = ts, starts
        self.ids = pa.chunked_array([ids]) if isinstance(ids, pa.Array) else ids
        self.ends = np.append(starts[1:], len(ts))
        self.block_of = np.zeros(0, dtype=np.int64)

    def first(self, codes: np.ndarray) -> np.ndarray:
        """Each customer's first timestamp (NaT when none)."""
        block = self.block_of[codes]
        out = np.full(len(block), np.datetime64("NaT", "us"))
        has = block >= 0
        out[has] = self.ts[self.starts[block[has]]]
        return out

    def last_where(self, codes: np.ndarray, mask_of: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """Each customer's last timestamp among its rows where ``mask_of(rows)`` holds (NaT when none).

        Only the rows of these customers' blocks are read.
        """
        block = self.block_of[codes]
        out = np.full(len(block), np.datetime64("NaT", "us"))
        has = np.flatnonzero(block >= 0)
        if len(has) == 0:
            return out
        starts, ends = self.starts[block[has]], self.ends[block[has]]
        lengths = ends - starts
        offsets = np.cumsum(lengths) - lengths
        rows = np.arange(int(lengths.sum()), dtype=np.int64) + np.repeat(starts - offsets, lengths)
        at = np.maximum.reduceat(np.where(mask_of(rows), rows, -1), offsets)  # blocks are never empty
        found = at >= 0
        out[has[found]] = self.ts[at[found]]
        return out


def _no_rejects() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": pd.Series([], dtype="string"),
            "reason_code": pd.Series([], dtype="string"),
            "reason": pd.Series([], dtype="string"),
            "last_purchase_at": pd.Series([], dtype="datetime64[us]"),
            "first_event_at": pd.Series([], dtype="datetime64[us]"),
        }
    )


def _all_ids(tables: Tables, blocks: dict[str, _Blocks]) -> pd.Index:
    """Every customer id of every table."""
    parts = [b.ids for b in blocks.values()]
    if tables.customers is not None:
        parts.append(pd.Index(tables.customers["customer_id"].dropna().unique(), dtype="string"))
    out = parts[0]
    for part in parts[1:]:
        out = out.union(part)
    return out.sort_values()


def reject_text(code: str, lang: str = "en", active_window_days: int = 365) -> str:
    """The reason of reject ``code`` in ``lang`` (English texts are the module's constants)."""
    from churnlens.i18n import Words

    return Words(lang)("reject", code=code, days=active_window_days)


def find_rejects(
    tables: Tables,
    cutoff: pd.Timestamp | str,
    scored_ids: pd.Index,
    *,
    active_window_days: int = 365,
    lang: str = "en",
) -> pd.DataFrame:
    """Every customer id in ``tables`` not in ``scored_ids``, with the reason it was not scored.

    Validated tables (rows sorted by customer and time) are read block by block, and only the
    blocks of the customers not scored: the cost follows the rejected customers' rows, not the
    whole base's. Other tables are grouped (:func:`rejects_by_index`, the same answer).

    Parameters
    ----------
    tables : Tables
        Validated input tables.
    cutoff : Timestamp or str
        Exclusive cutoff C.
    scored_ids : Index
        Customers that were scored.
    active_window_days : int
        The active window of the model's feature configuration.
    lang : {"en", "fr"}
        Language of the ``reason`` texts (``reason_code`` is the same in every language).

    Returns
    -------
    DataFrame
        Columns customer_id, reason_code, reason, last_purchase_at (last purchase before C, if any),
        first_event_at (first event in any table, if any); sorted by customer_id.
    """
    cutoff = pd.Timestamp(cutoff)
    present = tables.present()
    blocks: dict[str, _SortedBlocks] = {}
    for name in EVENT_TABLES:
        if name in present:
            frame = present[name]
            ts = frame["timestamp"].to_numpy(dtype="datetime64[us]")
            ids = frame["customer_id"]
            found = None if ids.isna().any() or len(frame) == 0 else sorted_blocks(ids, ts.view("int64"))
            if found is None:
                if len(frame):
                    return rejects_by_index(tables, cutoff, scored_ids, active_window_days=active_window_days,
                                            lang=lang)  # fmt: skip
                continue
            blocks[name] = _SortedBlocks(ts, found[0], found[1])
    if "purchases" not in blocks:
        return rejects_by_index(tables, cutoff, scored_ids, active_window_days=active_window_days, lang=lang)
    # every id once as an integer code (one hashing pass), then sets and lookups are integer arrays
    sources = [b.ids for b in blocks.values()]
    if tables.customers is not None:
        sources.append(_arrow(tables.customers["customer_id"]).drop_null())
    scored = _arrow(pd.Series(pd.Index(scored_ids, dtype="string")))
    kind = sources[0].type
    parts = [a.cast(kind) for a in (*sources, scored)]
    encoded = pc.dictionary_encode(pa.chunked_array([c for a in parts for c in a.chunks], type=kind)).combine_chunks()
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    bounds = np.cumsum([0, *(len(a) for a in parts)])
    known = np.zeros(len(encoded.dictionary), dtype=bool)
    known[codes[: bounds[-2]]] = True  # in some table
    known[codes[bounds[-2] :]] = False  # scored
    rest = np.flatnonzero(known)
    if len(rest) == 0:
        return _no_rejects()
    names = encoded.dictionary.take(pa.array(rest))
    order = pc.sort_indices(names).to_numpy()
    rest, names = rest[order], names.take(pa.array(order))
    for k, b in enumerate(blocks.values()):  # each table's block of each code (-1: none)
        b.block_of = np.full(len(known), -1, dtype=np.int64)
        b.block_of[codes[bounds[k] : bounds[k + 1]]] = np.arange(bounds[k + 1] - bounds[k])
    purchases = blocks["purchases"]
    amount = present["purchases"]["amount"].to_numpy(dtype="float64", na_value=np.nan)
    limit = np.datetime64(cutoff.as_unit("us").to_datetime64(), "us")
    last_purchase = purchases.last_where(rest, lambda rows: (purchases.ts[rows] < limit) & (amount[rows] >= 0))
    nat, big = np.iinfo(np.int64).min, np.iinfo(np.int64).max
    firsts = np.stack([b.first(rest).view("int64") for b in blocks.values()])
    firsts = np.where(firsts == nat, big, firsts).min(axis=0)
    first_event = np.where(firsts == big, nat, firsts).view("datetime64[us]")
    cancelled = np.zeros(len(rest), dtype=bool)
    if "cancellations" in blocks:
        c = blocks["cancellations"]
        cancelled = ~np.isnat(c.last_where(rest, lambda rows: c.ts[rows] < limit))
    window_start = np.datetime64((cutoff - pd.Timedelta(days=active_window_days)).as_unit("us").to_datetime64(), "us")
    code = np.select(
        [cancelled, np.isnat(first_event), first_event >= limit, np.isnat(last_purchase),
         last_purchase < window_start],
        np.arange(5),
        default=5,
    )  # fmt: skip
    texts = np.array([reject_text(c, lang, active_window_days) for c in CODES], dtype=object)
    return pd.DataFrame(
        {
            "customer_id": pd.array(names.to_numpy(zero_copy_only=False).astype(object), dtype="string"),
            "reason_code": pd.array(np.asarray(CODES, dtype=object)[code], dtype="string"),
            "reason": pd.array(texts[code], dtype="string"),
            "last_purchase_at": last_purchase,
            "first_event_at": first_event,
        }
    )


def rejects_by_index(
    tables: Tables,
    cutoff: pd.Timestamp | str,
    scored_ids: pd.Index,
    *,
    active_window_days: int = 365,
    lang: str = "en",
) -> pd.DataFrame:
    """:func:`find_rejects` for any tables (any row order), through pandas indexes."""
    cutoff = pd.Timestamp(cutoff)
    present = tables.present()
    blocks = {name: _Blocks(present[name]) for name in EVENT_TABLES if name in present}
    all_ids = _all_ids(tables, blocks)
    ids = all_ids.difference(pd.Index(scored_ids, dtype="string")).sort_values()
    if len(ids) == 0:
        return pd.DataFrame(
            {
                "customer_id": pd.Series([], dtype="string"),
                "reason_code": pd.Series([], dtype="string"),
                "reason": pd.Series([], dtype="string"),
                "last_purchase_at": pd.Series([], dtype="datetime64[us]"),
                "first_event_at": pd.Series([], dtype="datetime64[us]"),
            }
        )
    purchases = present["purchases"]
    bought = ((purchases["timestamp"] < cutoff) & (purchases["amount"] >= 0)).to_numpy(
        dtype=bool, na_value=False
    )
    last_purchase = blocks["purchases"].last_where(bought, ids)
    first_event = pd.concat([b.first(ids) for b in blocks.values()], axis=1).min(axis=1).astype("datetime64[us]")
    cancelled = pd.Series(False, index=ids)
    if "cancellations" in blocks:
        c = present["cancellations"]
        cancelled = blocks["cancellations"].last_where((c["timestamp"] < cutoff).to_numpy(), ids).notna()
    window_start = cutoff - pd.Timedelta(days=active_window_days)
    code = np.select(
        [
            cancelled.to_numpy(),
            first_event.isna().to_numpy(),
            (first_event >= cutoff).to_numpy(),
            last_purchase.isna().to_numpy(),
            (last_purchase < window_start).to_numpy(),
        ],
        np.arange(5),
        default=5,
    )
    texts = np.array([reject_text(c, lang, active_window_days) for c in CODES], dtype=object)
    return pd.DataFrame(
        {
            "customer_id": pd.array(ids, dtype="string"),
            "reason_code": pd.array(np.asarray(CODES, dtype=object)[code], dtype="string"),
            "reason": pd.array(texts[code], dtype="string"),
            "last_purchase_at": last_purchase.to_numpy(dtype="datetime64[us]"),
            "first_event_at": first_event.to_numpy(dtype="datetime64[us]"),
        }
    )
