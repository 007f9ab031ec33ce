"""The input table contract (DESIGN §2) declared as data.

Each column has a kind that fixes its dtype after validation:

- ``id``: customer identifier, pandas string dtype;
- ``time``: timestamp, ``datetime64[us]`` naive UTC;
- ``number``: float64 (optionally bounded);
- ``flag``: nullable boolean;
- ``text``: pandas string dtype;
- ``category``: low-cardinality text (channels, categories, event types, tiers, topics):
  pandas ``category`` whose categories are the distinct values present, sorted, with the
  ``string`` dtype (1-2 byte codes per row instead of a string each).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

ColumnKind = Literal["id", "time", "number", "flag", "text", "category"]


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a contract table."""

    name: str
    kind: ColumnKind
    required: bool = False
    min_value: float | None = None
    max_value: float | None = None
    #: the only values allowed (``category`` columns; compared ignoring case and surrounding spaces)
    allowed: tuple[str, ...] | None = None


@dataclass(frozen=True)
class TableSpec:
    """One table of the contract."""

    name: str
    required: bool
    columns: tuple[ColumnSpec, ...]
    #: extra columns are kept and typed by content (customers' static attributes)
    open_columns: bool = False

    @property
    def required_columns(self) -> list[str]:
        return [c.name for c in self.columns if c.required]

    def column(self, name: str) -> ColumnSpec | None:
        return self._by_name.get(name)

    @cached_property
    def _by_name(self) -> dict[str, ColumnSpec]:
        """Columns by name, the first of a name (looked up per column and per request: no scan)."""
        by_name: dict[str, ColumnSpec] = {}
        for c in self.columns:
            by_name.setdefault(c.name, c)
        return by_name


KNOWN_EVENT_TYPES: tuple[str, ...] = (
    "enrolled",
    "points_earned",
    "points_redeemed",
    "tier_changed",
    "login",
    "offer_received",
    "offer_viewed",
    "offer_completed",
)

#: Tier names in ascending order; the simulator uses them and features rank them.
TIER_ORDER: tuple[str, ...] = ("basic", "silver", "gold", "platinum")

#: Values of ``contacts.group``: contacted, or held out at random (the campaign's control group).
CONTACT_GROUPS: tuple[str, ...] = ("treatment", "control")

TABLE_SPECS: dict[str, TableSpec] = {
    "purchases": TableSpec(
        "purchases",
        required=True,
        columns=(
            ColumnSpec("customer_id", "id", required=True),
            ColumnSpec("timestamp", "time", required=True),
            ColumnSpec("amount", "number", required=True),
            ColumnSpec("order_id", "text"),
            ColumnSpec("quantity", "number"),
            ColumnSpec("channel", "category"),
            ColumnSpec("category", "category"),
        ),
    ),
    "customers": TableSpec(
        "customers",
        required=False,
        columns=(
            ColumnSpec("customer_id", "id", required=True),
            ColumnSpec("signup_at", "time"),
        ),
        open_columns=True,
    ),
    "program_events": TableSpec(
        "program_events",
        required=False,
        columns=(
            ColumnSpec("customer_id", "id", required=True),
            ColumnSpec("timestamp", "time", required=True),
            ColumnSpec("event_type", "category", required=True),
            ColumnSpec("points", "number"),
            ColumnSpec("tier", "category"),
        ),
    ),
    "support_interactions": TableSpec(
        "support_interactions",
        required=False,
        columns=(
            ColumnSpec("customer_id", "id", required=True),
            ColumnSpec("timestamp", "time", required=True),
            ColumnSpec("channel", "category"),
            ColumnSpec("topic", "category"),
            ColumnSpec("resolved", "flag"),
            ColumnSpec("first_contact_resolution", "flag"),
            ColumnSpec("handle_minutes", "number", min_value=0),
            ColumnSpec("complaint", "flag"),
            ColumnSpec("csat", "number", min_value=1, max_value=5),
            ColumnSpec("nps", "number", min_value=0, max_value=10),
            ColumnSpec("ces", "number", min_value=1, max_value=7),
        ),
    ),
    "cancellations": TableSpec(
        "cancellations",
        required=False,
        columns=(
            ColumnSpec("customer_id", "id", required=True),
            ColumnSpec("timestamp", "time", required=True),
        ),
    ),
    "contacts": TableSpec(
        "contacts",
        required=False,
        columns=(
            ColumnSpec("customer_id", "id", required=True),
            ColumnSpec("timestamp", "time", required=True),
            ColumnSpec("campaign_id", "category", required=True),
            ColumnSpec("action", "category", required=True),
            ColumnSpec("group", "category", required=True, allowed=CONTACT_GROUPS),
            ColumnSpec("channel", "category"),
            ColumnSpec("cost", "number", min_value=0),
        ),
    ),
}
