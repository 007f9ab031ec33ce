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

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from churnlens.data.tables import EVENT_TABLES, Tables

REJECT_COLUMNS = ["customer_id", "reason", "last_purchase_at", "first_event_at"]
CANCELLED = "cancelled before the cutoff"
NO_EVENTS = "no event in any table (listed in customers only)"
FIRST_EVENT_AFTER = "first event after the cutoff"
NO_PURCHASE_BEFORE = "no purchase before the cutoff"
INACTIVE = "no purchase in the {days} days before the cutoff"
OTHER = "not in the active population at the cutoff"


def _sorted_runs(frame: pd.DataFrame) -> tuple[pd.Index, np.ndarray] | None:
    """Distinct ids and the start row of each id's run, when ``frame`` is sorted by
    (customer_id, timestamp) as validated tables are; None otherwise."""
    ids = pa.array(frame["customer_id"].array)
    if len(ids) == 0 or ids.null_count:
        return None
    if not pc.all(pc.less_equal(ids[:-1], ids[1:])).as_py():
        return None
    change = pc.not_equal(ids[1:], ids[:-1]).to_numpy(zero_copy_only=False)
    starts = np.flatnonzero(np.r_[True, change])
    ts = frame["timestamp"].to_numpy(dtype="datetime64[us]").view("int64")
    step = np.diff(ts)
    step[starts[1:] - 1] = 0  # run boundaries may go backwards in time
    if (step < 0).any():
        return None
    return pd.Index(ids.take(pa.array(starts)).to_pandas(), dtype="string"), starts


def _by_customer(frame: pd.DataFrame, ids: pd.Index, how: str, mask: np.ndarray | None = None) -> pd.Series:
    """Per-customer first ("min") or last ("max") timestamp of ``frame`` rows in ``mask``, for ``ids``.

    Sorted tables take a fast path (run boundaries, no hashing of every row); others group.
    """
    rows = frame if mask is None else frame.loc[mask, ["customer_id", "timestamp"]]
    runs = _sorted_runs(rows)
    if runs is not None:
        distinct, starts = runs
        ts = rows["timestamp"].to_numpy(dtype="datetime64[us]")
        pick = starts if how == "min" else np.r_[starts[1:], len(rows)] - 1
        stat = pd.Series(ts[pick], index=distinct)
    else:
        keep = rows["customer_id"].isin(ids).to_numpy()
        grouped = rows.loc[keep].groupby("customer_id", sort=False, observed=True)["timestamp"]
        stat = grouped.min() if how == "min" else grouped.max()
        stat.index = stat.index.astype("string")
    return stat.reindex(ids)


def _all_ids(tables: Tables) -> pd.Index:
    """Every customer id of every table (per-table distinct ids from sorted runs when possible)."""
    parts = []
    for frame in tables.present().values():
        runs = _sorted_runs(frame) if "timestamp" in frame.columns else None
        parts.append(
            runs[0] if runs is not None else pd.Index(frame["customer_id"].dropna().unique(), dtype="string")
        )
    out = parts[0]
    for part in parts[1:]:
        out = out.union(part)
    return out.sort_values()


def find_rejects(
    tables: Tables, cutoff: pd.Timestamp | str, scored_ids: pd.Index, *, active_window_days: int = 365
) -> pd.DataFrame:
    """Every customer id in ``tables`` not in ``scored_ids``, with the reason it was not scored.

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

    Returns
    -------
    DataFrame
        Columns customer_id, reason, last_purchase_at (last purchase before C, if any),
        first_event_at (first event in any table, if any); sorted by customer_id.
    """
    cutoff = pd.Timestamp(cutoff)
    all_ids = _all_ids(tables)
    ids = all_ids.difference(pd.Index(scored_ids, dtype="string")).sort_values()
    if len(ids) == 0:
        return pd.DataFrame(
            {
                "customer_id": pd.Series([], dtype="string"),
                "reason": pd.Series([], dtype="string"),
                "last_purchase_at": pd.Series([], dtype="datetime64[us]"),
                "first_event_at": pd.Series([], dtype="datetime64[us]"),
            }
        )
    present = tables.present()
    purchases = present["purchases"]
    bought = ((purchases["timestamp"] < cutoff) & (purchases["amount"] >= 0)).to_numpy(
        dtype=bool, na_value=False
    )
    last_purchase = _by_customer(purchases, ids, "max", bought)
    firsts = [
        _by_customer(present[n], ids, "min").astype("datetime64[us]") for n in EVENT_TABLES if n in present
    ]
    first_event = pd.concat(firsts, axis=1).min(axis=1).astype("datetime64[us]")
    cancelled = pd.Series(False, index=ids)
    if "cancellations" in present:
        c = present["cancellations"]
        cancelled = _by_customer(c, ids, "min", (c["timestamp"] < cutoff).to_numpy()).notna()
    window_start = cutoff - pd.Timedelta(days=active_window_days)
    reasons = np.select(
        [
            cancelled.to_numpy(),
            first_event.isna().to_numpy(),
            (first_event >= cutoff).to_numpy(),
            last_purchase.isna().to_numpy(),
            (last_purchase < window_start).to_numpy(),
        ],
        [
            CANCELLED,
            NO_EVENTS,
            FIRST_EVENT_AFTER,
            NO_PURCHASE_BEFORE,
            INACTIVE.format(days=active_window_days),
        ],
        default=OTHER,
    )
    return pd.DataFrame(
        {
            "customer_id": pd.array(ids, dtype="string"),
            "reason": pd.array(reasons, dtype="string"),
            "last_purchase_at": last_purchase.to_numpy(dtype="datetime64[us]"),
            "first_event_at": first_event.to_numpy(dtype="datetime64[us]"),
        }
    )
