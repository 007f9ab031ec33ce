"""Request and answer models of the HTTP API (``churnlens.serving.api``).

``POST /v1/score`` takes a list of customers, each given one of two ways:

- **raw events** (DESIGN §6): ``customer_id`` plus any of ``purchases``, ``program_events``,
  ``support_interactions``, ``cancellations``, ``contacts`` (lists of events in the table contract, without
  the customer_id) and ``attributes`` (the customer's row of the ``customers`` table). The
  events go through the same validation and feature builders as files do.
- **ready features**: ``customer_id`` plus ``features``, a mapping feature name -> value
  (at least every feature of the model; other snapshot columns may be added and are used
  by the reason sentences).

The two shapes are told apart by the presence of the ``features`` key (``kind`` may also
be given explicitly: ``"events"`` or ``"features"``). One request may mix both.

Numbers and booleans are strict: a number field takes a JSON number (an integer is fine) and
refuses a string (``"12.5"``), a boolean, NaN and infinities; a boolean field takes only
``true`` or ``false``. Nothing is converted silently: the answer is 422 naming the field.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import AllowInfNan, BaseModel, ConfigDict, Discriminator, Field, Strict, StrictBool, StrictInt, Tag

Scalar = str | float | int | bool | None
#: A finite JSON number; an integer is fine, a string or a boolean is refused (422), never converted.
Number = Annotated[float, Strict(), AllowInfNan(False)]
#: ``true`` or ``false`` only: ``"yes"``, ``1`` or ``"true"`` are refused (422).
Flag = StrictBool
MAX_REASONS = 20


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Purchase(_Strict):
    """One row of the ``purchases`` table."""

    timestamp: str = Field(description="ISO 8601 (2024-05-02, 2024-05-02T10:00:00, +02:00 offsets).")
    amount: Number = Field(description="Amount; negative for refunds and returns.")
    order_id: str | None = None
    quantity: Number | None = None
    channel: str | None = None
    category: str | None = None


class ProgramEvent(_Strict):
    """One row of the ``program_events`` table."""

    timestamp: str
    event_type: str = Field(description="enrolled, points_earned, points_redeemed, tier_changed, login, ...")
    points: Number | None = None
    tier: str | None = None


class SupportInteraction(_Strict):
    """One row of the ``support_interactions`` table."""

    timestamp: str
    channel: str | None = None
    topic: str | None = None
    resolved: Flag | None = None
    first_contact_resolution: Flag | None = None
    handle_minutes: Number | None = None
    complaint: Flag | None = None
    csat: Number | None = Field(None, description="1-5")
    nps: Number | None = Field(None, description="0-10")
    ces: Number | None = Field(None, description="1-7")


class Cancellation(_Strict):
    """One row of the ``cancellations`` table (membership ended)."""

    timestamp: str


class Contact(_Strict):
    """One row of the ``contacts`` table (a retention campaign's contact, or a held-out control)."""

    timestamp: str
    campaign_id: str
    action: str
    group: Literal["treatment", "control"]
    channel: str | None = None
    cost: Number | None = None


class EventsCustomer(_Strict):
    """A customer given as raw events."""

    kind: Literal["events"] = "events"
    customer_id: str = Field(min_length=1, max_length=256)
    purchases: list[Purchase] = Field(default_factory=list)
    program_events: list[ProgramEvent] = Field(default_factory=list)
    support_interactions: list[SupportInteraction] = Field(default_factory=list)
    cancellations: list[Cancellation] = Field(default_factory=list)
    contacts: list[Contact] = Field(default_factory=list)
    attributes: dict[str, Scalar] = Field(
        default_factory=dict,
        description="The customer's static attributes (row of the customers table, e.g. signup_at, country).",
    )

    def n_events(self) -> int:
        """Number of events over all event lists."""
        return (
            len(self.purchases)
            + len(self.program_events)
            + len(self.support_interactions)
            + len(self.cancellations)
            + len(self.contacts)
        )


class FeaturesCustomer(_Strict):
    """A customer given as a ready feature row (a snapshot row)."""

    kind: Literal["features"] = "features"
    customer_id: str = Field(min_length=1, max_length=256)
    features: dict[str, Scalar] = Field(
        description="Feature name -> value (null = missing); every model feature is required."
    )


def _customer_kind(value: Any) -> str:
    if isinstance(value, dict):
        kind = value.get("kind")
        if kind in ("events", "features"):
            return kind
        return "features" if "features" in value else "events"
    return getattr(value, "kind", "events")


Customer = Annotated[
    Annotated[EventsCustomer, Tag("events")] | Annotated[FeaturesCustomer, Tag("features")],
    Discriminator(_customer_kind),
]


class ScoreRequest(_Strict):
    """Body of ``POST /v1/score``."""

    cutoff: dt.date | None = Field(
        None,
        description="Exclusive cutoff for raw events (history = events strictly before it); "
        "default, as everywhere in churnlens: the day after the data's end, here the day after the "
        "latest event posted in this request (every posted event counts). Ignored for ready feature rows.",
    )
    lang: Literal["en", "fr"] = "en"
    reasons: StrictInt = Field(3, ge=1, le=MAX_REASONS, description="Reasons per customer.")
    customers: list[Customer] = Field(min_length=1)

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "cutoff": "2024-06-01",
                    "lang": "fr",
                    "reasons": 3,
                    "customers": [
                        {
                            "customer_id": "c1",
                            "purchases": [{"timestamp": "2024-05-02T10:00:00", "amount": 42.5}],
                            "program_events": [{"timestamp": "2024-05-03", "event_type": "login"}],
                            "support_interactions": [
                                {"timestamp": "2024-05-04", "csat": 2, "resolved": False}
                            ],
                            "attributes": {"country": "FR"},
                        },
                        {"customer_id": "c2", "features": {"days_since_last_purchase": 142}},
                    ],
                }
            ]
        },
    )


class Reason(BaseModel):
    """One reason: a feature pushing churn risk up, its value, its effect and its sentence."""

    feature: str
    value: float | str | None = Field(description="The customer's value (number, or the category).")
    contribution: float = Field(description="Exact SHAP contribution in log-odds.")
    effect: float = Field(
        description="Change of the churn probability this reason explains (0.06 = +6 percentage points); "
        "the effects of all factors add up to the customer's probability minus the average customer's."
    )
    text: str


class Result(BaseModel):
    """The answer for one customer."""

    customer_id: str
    status: Literal["scored", "not_scored"]
    churn_probability: float | None = None
    risk_band: Literal["high", "medium", "low"] | None = None
    reasons: list[Reason] = Field(default_factory=list)
    reason: str | None = Field(None, description="Why the customer was not scored.")


class ModelRef(BaseModel):
    """Which model answered."""

    name: str
    version: str | None


class ScoreResponse(BaseModel):
    """Answer of ``POST /v1/score``: one result per requested customer, in request order."""

    model: ModelRef
    cutoff: dt.date | None = Field(description="Cutoff used for raw-event customers.")
    results: list[Result]


class ModelInfo(BaseModel):
    """Answer of ``GET /v1/model``."""

    name: str
    version: str | None
    uri: str
    run_id: str | None = None
    trained_at: str | None = None
    trained_through: str | None = Field(None, description="Latest label day of the rows the model was fitted on.")
    horizon_days: int | None = None
    label_mode: str | None = None
    catalog_version: str | None = None
    test_cutoff: str | None = None
    features: list[str]
    test_metrics: dict[str, Any]
    risk_bands: dict[str, float]


class Health(BaseModel):
    """Answer of ``GET /health`` (``ok``: the server is up) and ``GET /ready`` (``ready``: its model is loaded)."""

    status: Literal["ok", "ready"]
    model: ModelRef


class ErrorItem(BaseModel):
    """One problem: where (``loc``, e.g. ``["body", "customers", 0, "purchases"]``) and what."""

    loc: list[str | int]
    msg: str
    type: str


class ErrorResponse(BaseModel):
    """Every 4xx answer."""

    detail: list[ErrorItem]
