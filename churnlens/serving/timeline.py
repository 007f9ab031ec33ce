"""A customer's last 12 months at a glance: purchases, program events and support contacts.

:func:`customer_timeline` lays out one customer's events before the cutoff on three lanes
(drawn as inline SVG by the card's template). Events of one kind on one day are one mark
whose tooltip says how many. Each kind has its own shape, so nothing rests on colour: a
filled circle is a purchase and a ring a return; a diamond points, a triangle an offer, a
tick a login, a square a tier change, a cross an enrolment; a square a support contact, a
cross a complaint and an open square an unresolved contact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnlens.data.tables import Tables
from churnlens.i18n import Words

WIDTH = 760
LEFT, RIGHT = 110, 744
LANE = 34
TOP = 8
MONTHS = 12

#: Shape and colour (Okabe–Ito) of each kind of mark, by lane.
KINDS: dict[str, tuple[str, str, str]] = {
    # kind: (lane, shape, colour)
    "purchase": ("purchases", "circle", "#009E73"),
    "return": ("purchases", "ring", "#009E73"),
    "points": ("program", "diamond", "#E69F00"),
    "offer": ("program", "triangle", "#CC79A7"),
    "login": ("program", "tick", "#56B4E9"),
    "tier": ("program", "square", "#0072B2"),
    "enrolled": ("program", "cross", "#0072B2"),
    "other": ("program", "dot", "#555555"),
    "contact": ("support", "square", "#555555"),
    "complaint": ("support", "cross", "#D55E00"),
    "unresolved": ("support", "ring-square", "#D55E00"),
}
LANES = ("purchases", "program", "support")
_PROGRAM_KINDS = {
    "points_earned": "points",
    "points_redeemed": "points",
    "offer_received": "offer",
    "offer_viewed": "offer",
    "offer_completed": "offer",
    "login": "login",
    "tier_changed": "tier",
    "enrolled": "enrolled",
}


@dataclass(frozen=True)
class Mark:
    """One mark: where, which shape and colour, and its tooltip."""

    x: float
    y: float
    shape: str
    colour: str
    title: str


@dataclass(frozen=True)
class Timeline:
    """Everything the SVG template draws; all texts already in the reader's language."""

    width: int
    height: int
    lanes: tuple[tuple[str, float], ...]
    months: tuple[tuple[float, str], ...]
    marks: tuple[Mark, ...]
    legend: tuple[tuple[float, float, str, str, str], ...]
    title: str
    desc: str
    empty: bool
    left: int = LEFT
    right: int = RIGHT


def _window(frame: pd.DataFrame | None, start: pd.Timestamp, cutoff: pd.Timestamp) -> pd.DataFrame:
    if frame is None or frame.empty:
        return pd.DataFrame({"timestamp": pd.Series([], dtype="datetime64[us]")})
    ts = frame["timestamp"]
    return frame.loc[((ts >= start) & (ts < cutoff)).to_numpy(dtype=bool)]


def _flag(frame: pd.DataFrame, column: str, value: bool) -> np.ndarray:
    if column not in frame.columns:
        return np.zeros(len(frame), dtype=bool)
    return (frame[column] == value).fillna(False).to_numpy(dtype=bool)


def window_start(cutoff: pd.Timestamp, months: int = MONTHS) -> pd.Timestamp:
    """The first day the timeline shows: ``months`` calendar months before the cutoff."""
    return pd.Timestamp(cutoff) - pd.DateOffset(months=months)


def customer_events(tables: Tables, cutoff: pd.Timestamp, months: int = MONTHS) -> pd.DataFrame:
    """One customer's events in the ``months`` before ``cutoff``: timestamp, kind, amount (purchases).

    ``tables`` holds that customer only. Kinds are the keys of :data:`KINDS`.
    """
    start = window_start(cutoff, months)
    parts = []
    purchases = _window(tables.purchases, start, cutoff)
    if len(purchases):
        amount = purchases["amount"].to_numpy(dtype="float64")
        parts.append(pd.DataFrame({"timestamp": purchases["timestamp"].to_numpy(),
                                   "kind": np.where(amount < 0, "return", "purchase"), "amount": amount}))
    program = _window(tables.program_events, start, cutoff)
    if len(program):
        kinds = program["event_type"].astype("string").map(_PROGRAM_KINDS).fillna("other")
        parts.append(pd.DataFrame({"timestamp": program["timestamp"].to_numpy(),
                                   "kind": kinds.to_numpy(dtype=object), "amount": np.nan}))
    support = _window(tables.support_interactions, start, cutoff)
    if len(support):
        unresolved = _flag(support, "resolved", False)
        complaint = _flag(support, "complaint", True)
        kinds = np.where(unresolved, "unresolved", np.where(complaint, "complaint", "contact"))
        parts.append(pd.DataFrame({"timestamp": support["timestamp"].to_numpy(), "kind": kinds,
                                   "amount": np.nan}))
    if not parts:
        return pd.DataFrame({"timestamp": pd.Series([], dtype="datetime64[us]"), "kind": pd.Series([], dtype=object),
                             "amount": pd.Series([], dtype="float64")})
    return pd.concat(parts, ignore_index=True).sort_values("timestamp", kind="stable").reset_index(drop=True)


def customer_timeline(tables: Tables, cutoff: pd.Timestamp, fmt: Words, months: int = MONTHS) -> Timeline:
    """Lay out one customer's last ``months`` months before ``cutoff`` (``tables``: that customer only)."""
    t = Words(fmt.lang)
    cutoff = pd.Timestamp(cutoff)
    start = window_start(cutoff, months)
    events = customer_events(tables, cutoff, months)
    lanes = tuple((lane, TOP + LANE * (i + 0.5)) for i, lane in enumerate(LANES))
    lane_y = dict(lanes)

    def x(when: pd.Timestamp) -> float:
        return round(LEFT + (RIGHT - LEFT) * (when - start) / (cutoff - start), 1)

    marks = []
    if len(events):
        events = events.assign(day=events["timestamp"].dt.floor("D"))
        grouped = events.groupby(["day", "kind"], sort=True, observed=True).agg(
            n=("kind", "size"), amount=("amount", "sum")
        )
        for (day, kind), row in grouped.iterrows():
            lane, shape, colour = KINDS[kind]
            what = t(f"ev_{kind}")
            if kind in ("purchase", "return"):
                what += f" {fmt.money(row['amount'])}"
            if row["n"] > 1:
                what += f" ({t('ev_times', n=int(row['n']))})"
            marks.append(Mark(x(day + pd.Timedelta(hours=12)), lane_y[lane], shape, colour,
                              f"{fmt.date(day.date())} — {what}"))
    months = []
    month = start.normalize() if start.day == 1 else (start + pd.offsets.MonthBegin(1)).normalize()
    while month < cutoff:
        months.append((x(month), fmt.month(month.date())))
        month += pd.offsets.MonthBegin(1)
    count = events["kind"].value_counts() if len(events) else pd.Series(dtype="int64")

    def n(*kinds: str) -> int:
        return int(sum(count.get(k, 0) for k in kinds))

    def counted(key: str, value: int) -> str:
        return t(key, n=value)

    desc = t(
        "timeline_desc", date=fmt.date(cutoff.date()),
        purchases=counted("n_purchases", n("purchase", "return")), returns=counted("n_returns", n("return")),
        program=counted("n_program", n(*(k for k, v in KINDS.items() if v[0] == "program"))),
        support=counted("n_support", n("contact", "complaint", "unresolved")),
        complaints=counted("n_complaints", n("complaint")), unresolved=counted("n_unresolved", n("unresolved")),
    )  # fmt: skip
    axis_y = TOP + LANE * len(LANES)
    legend = []
    lx, ly = float(LEFT), axis_y + 40
    for kind, (_, shape, colour) in KINDS.items():
        label = t(f"ev_{kind}")
        width = 26 + 7 * len(label)
        if lx + width > RIGHT:
            lx, ly = float(LEFT), ly + 20
        legend.append((lx, ly, shape, colour, label))
        lx += width
    return Timeline(
        width=WIDTH,
        height=int(ly + 16),
        lanes=tuple((t(f"lane_{lane}"), y) for lane, y in lanes),
        months=tuple(months),
        marks=tuple(marks),
        legend=tuple(legend),
        title=t("timeline"),
        desc=desc,
        empty=not marks,
    )


__all__ = ["KINDS", "Mark", "Timeline", "customer_events", "customer_timeline"]
