"""The validated tables every later stage works on.

After :func:`churnlens.data.load_tables` every table has these dtypes:

- ``customer_id``: pandas string dtype;
- ``timestamp`` (and ``signup_at``): ``datetime64[us]``, timezone-naive, in UTC;
- numbers: ``float64``; flags: pandas nullable ``boolean``; text: string dtype;
- low-cardinality text (``purchases.channel``/``category``, ``program_events.event_type``/
  ``tier``, ``support_interactions.channel``/``topic``, ``contacts.campaign_id``/``action``/
  ``group``/``channel``): pandas ``category``, categories the
  values present, sorted, of string dtype (``order_id`` and customers' attributes stay text).

Tables are sorted by (customer_id, timestamp) and have a fresh RangeIndex.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from functools import cached_property

import numpy as np
import pandas as pd

#: Table names in the contract, required one first.
TABLE_NAMES: tuple[str, ...] = (
    "purchases",
    "customers",
    "program_events",
    "support_interactions",
    "cancellations",
    "contacts",
)
EVENT_TABLES: tuple[str, ...] = (
    "purchases",
    "program_events",
    "support_interactions",
    "cancellations",
    "contacts",
)


#: Late events count as isolated only when this few: at most 0.1% of all events (so none in a
#: data set of fewer than 1000 events, too small to tell an outlier from a sparse history), and 1000.
ISOLATED_SHARE = 0.001
ISOLATED_MAX = 1000
#: ... and when they come after every other event by more than this gap, and more than this
#: share of the span of the rest of the data.
ISOLATION_GAP = pd.Timedelta(days=90)
ISOLATION_SPAN_SHARE = 0.1


def isolated_limit(n_events: int) -> int:
    """How many late events at most can be left out of the data end, for ``n_events`` events."""
    return min(ISOLATED_MAX, int(n_events * ISOLATED_SHARE))


def top_values(values: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` largest of ``values`` (any order), in linear time."""
    if len(values) <= k:
        return values
    if values.dtype.kind == "M":  # numpy selects datetime64 ~100x slower than int64; same order without NaT
        return np.partition(values.view("i8"), len(values) - k)[len(values) - k :].view(values.dtype)
    return np.partition(values, len(values) - k)[len(values) - k :]


def observed_end(latest: np.ndarray, n_events: int, start: pd.Timestamp) -> pd.Timestamp:
    """The data end, leaving out a few events that stand alone long after all the others.

    Parameters
    ----------
    latest : array of datetime64
        At least the ``isolated_limit(n_events) + 1`` latest event timestamps (any order; more is fine).
    n_events : int
        Number of events in the data.
    start : Timestamp
        The first event.

    Returns
    -------
    Timestamp
        The latest event that is not isolated. Events after it are isolated: at most
        :func:`isolated_limit` of them, and separated from every earlier event by a gap larger
        than both :data:`ISOLATION_GAP` and :data:`ISOLATION_SPAN_SHARE` of the data's span before
        the gap. A new season starting after a long pause is not isolated (it has more events),
        and neither is a steady stream of events.
    """
    limit = isolated_limit(n_events)
    ts = np.sort(np.asarray(latest, dtype="datetime64[us]"))[-(limit + 1) :]
    begin = np.datetime64(pd.Timestamp(start).as_unit("us").asm8)
    for j in range(1, len(ts)):
        gap = ts[j] - ts[j - 1]
        if gap > ISOLATION_GAP.to_timedelta64() and gap > (ts[j - 1] - begin) * ISOLATION_SPAN_SHARE:
            return pd.Timestamp(ts[j - 1])
    return pd.Timestamp(ts[-1])


@dataclass(frozen=True)
class Tables:
    """The input tables of one data set; optional tables are None when absent."""

    purchases: pd.DataFrame
    customers: pd.DataFrame | None = None
    program_events: pd.DataFrame | None = None
    support_interactions: pd.DataFrame | None = None
    cancellations: pd.DataFrame | None = None
    contacts: pd.DataFrame | None = None

    def present(self) -> dict[str, pd.DataFrame]:
        """Return the tables that exist, by name, in contract order."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}

    def replace(self, **tables: pd.DataFrame | None) -> Tables:
        """Return a copy with some tables replaced."""
        return replace(self, **tables)

    @property
    def data_start(self) -> pd.Timestamp:
        """Earliest event timestamp over all event tables."""
        return min(time_bounds(t["timestamp"])[0] for n, t in self.present().items() if n in EVENT_TABLES and len(t))

    @property
    def last_event(self) -> pd.Timestamp:
        """Latest event timestamp over all event tables, isolated ones included."""
        return max(time_bounds(t["timestamp"])[1] for n, t in self.present().items() if n in EVENT_TABLES and len(t))

    @cached_property
    def data_end(self) -> pd.Timestamp:
        """The end of observed history: the latest event, leaving out a few isolated late ones.

        Every default follows it (the scoring cutoff, the latest training cutoff), so one event
        dated years after the rest (a typo) must not move it: see :func:`observed_end`.
        """
        events = [t["timestamp"].to_numpy(dtype="datetime64[us]") for n, t in self.present().items()
                  if n in EVENT_TABLES and len(t)]  # fmt: skip
        n_events = sum(len(t) for t in events)
        k = isolated_limit(n_events) + 1
        # when more than k events lie within the isolation gap of the last one, the k latest are
        # too close together to leave any of them isolated: the end is the last event (one
        # counting pass instead of selecting the k latest of every table)
        last = max(t.max() for t in events)
        recent = last - ISOLATION_GAP.to_timedelta64()
        if sum(int(np.count_nonzero(t > recent)) for t in events) >= k:
            return pd.Timestamp(last)
        latest = np.concatenate([top_values(t, k) for t in events])
        return observed_end(latest, n_events, self.data_start)

    def customer_ids(self) -> pd.Index:
        """All customer ids seen in any table, sorted."""
        ids = pd.Index([], dtype="string")
        for table in self.present().values():
            ids = ids.union(pd.Index(table["customer_id"].unique(), dtype="string"))
        return ids.sort_values()


def time_bounds(column: pd.Series) -> tuple[pd.Timestamp, pd.Timestamp]:
    """``(column.min(), column.max())`` of a timestamp column (NaT skipped; NaT when none), in one
    pass over its array: pandas' reductions cost tens of microseconds each on a few rows."""
    if not (isinstance(column.dtype, np.dtype) and column.dtype.kind == "M"):  # tz-aware or other: pandas
        return column.min(), column.max()
    values = column.to_numpy()
    missing = np.isnat(values)
    if missing.any():
        values = values[~missing]
    if len(values) == 0:
        return pd.NaT, pd.NaT
    return pd.Timestamp(values.min()), pd.Timestamp(values.max())
