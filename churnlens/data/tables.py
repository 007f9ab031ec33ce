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
        return min(t["timestamp"].min() for n, t in self.present().items() if n in EVENT_TABLES and len(t))

    @property
    def data_end(self) -> pd.Timestamp:
        """Latest event timestamp over all event tables (the end of observed history)."""
        return max(t["timestamp"].max() for n, t in self.present().items() if n in EVENT_TABLES and len(t))

    def customer_ids(self) -> pd.Index:
        """All customer ids seen in any table, sorted."""
        ids = pd.Index([], dtype="string")
        for table in self.present().values():
            ids = ids.union(pd.Index(table["customer_id"].unique(), dtype="string"))
        return ids.sort_values()
