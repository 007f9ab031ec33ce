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
