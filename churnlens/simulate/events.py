"""Turn daily step results into event rows, then into the five contract tables.

Rows are buffered as numpy arrays (customer number, time in microseconds, codes) and only
become strings once, at the end, through pyarrow.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from churnlens.data.schema import KNOWN_EVENT_TYPES, TIER_ORDER
from churnlens.data.validate import category_from_codes
from churnlens.simulate import params as P
from churnlens.simulate.params import SimulationSettings
from churnlens.simulate.population import Population, customer_ids
from churnlens.simulate.process import State, StepResult
from churnlens.simulate.rng import TAG_EMIT, stream

DAY_US = 86_400_000_000
HOUR_US = 3_600_000_000
EVENT_CODE = {name: i for i, name in enumerate(KNOWN_EVENT_TYPES)}


def _pick(rng: np.random.Generator, weights: tuple[float, ...], n: int) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return np.searchsorted(np.cumsum(w / w.sum()), rng.random(n), side="right").astype(np.int8)


def _tod(rng: np.random.Generator, n: int, lo_h: float = 0.5, hi_h: float = 23.5) -> np.ndarray:
    return rng.integers(int(lo_h * HOUR_US), int(hi_h * HOUR_US), n)


class EventRecorder:
    """Collects the events of one customer block, day by day (days ``>= 0`` only)."""

    def __init__(self, settings: SimulationSettings, pop: Population, block: int, offset: int) -> None:
        self.settings = settings
        self.pop = pop
        self.block = block
        self.offset = offset
        self.start_us = settings.start_ts.value // 1000
        self.buf: dict[str, dict[str, list[np.ndarray]]] = defaultdict(lambda: defaultdict(list))

    def _add(self, family: str, **cols: np.ndarray) -> None:
        cols["cust"] = cols["cust"].astype(np.int32)
        for k, v in cols.items():
            self.buf[family][k].append(v)

    def __call__(self, t: int, r: StepResult, st: State) -> None:
        if t < 0:
            return
        rng = stream(self.settings.seed, TAG_EMIT, self.block + 1, t)
        day_us = self.start_us + t * DAY_US
        pop = self.pop
        sp = self.settings.params

        # purchases (+ refunds on some purchase days)
        i = r.buy_idx
        new = pop.forced_day[i] == t
        tod = np.where(
            new, pop.signup_tod_us[i] + rng.integers(60, 1800, i.size) * 1_000_000, _tod(rng, i.size)
        )
        amount = np.round(r.amount, 2)
        channel = np.where(rng.random(i.size) < 0.75, pop.pref_channel[i], _pick(rng, (1, 1, 1), i.size))
        self._add(
            "purchases",
            cust=i,
            time=day_us + tod,
            amount=amount,
            quantity=1.0 + rng.poisson(amount / 45.0),
            channel=channel.astype(np.int8),
            category=_pick(rng, P.CATEGORY_WEIGHTS, i.size),
        )
        ref = rng.random(i.size) < np.where(st.d[i] > 0.5, sp.refund_prob_dissatisfied, sp.refund_prob)
        j = i[ref]
        if j.size:
            self._add(
                "purchases",
                cust=j,
                time=day_us + _tod(rng, j.size),
                amount=-np.round(amount[ref] * rng.uniform(0.2, 0.9, j.size), 2),
                quantity=-np.ones(j.size),
                channel=channel[ref].astype(np.int8),
                category=_pick(rng, P.CATEGORY_WEIGHTS, j.size),
            )
        ptime = np.zeros(pop.n, dtype=np.int64)
        ptime[i] = tod

        # program events
        def prog(k: np.ndarray, event: str, tod_us: np.ndarray, points: np.ndarray | None = None) -> None:
            if not k.size:
                return
            self._add(
                "program_events",
                cust=k,
                time=day_us + tod_us,
                event=np.full(k.size, EVENT_CODE[event], dtype=np.int8),
                points=np.full(k.size, np.nan) if points is None else points.astype(np.float64),
                tier=st.tier[k],
            )

        enrolled = r.newly_idx[pop.member[r.newly_idx]]
        prog(enrolled, "enrolled", np.maximum(ptime[enrolled] - 30_000_000, 0))
        prog(r.earned_idx, "points_earned", ptime[r.earned_idx] + 1_000_000, r.earned_points)
        prog(r.completed_idx, "offer_completed", ptime[r.completed_idx] + 2_000_000)
        prog(r.tier_idx, "tier_changed", rng.integers(0, HOUR_US // 2, r.tier_idx.size))
        rec_tod = np.zeros(pop.n, dtype=np.int64)
        rec_tod[r.received_idx] = _tod(rng, r.received_idx.size, 7, 10)
        prog(r.received_idx, "offer_received", rec_tod[r.received_idx])
        k = r.viewed_idx
        prog(k, "offer_viewed", rec_tod[k] + rng.integers(60 * 1_000_000, 13 * HOUR_US, k.size))
        prog(r.login_idx, "login", _tod(rng, r.login_idx.size))
        prog(r.redeem_idx, "points_redeemed", _tod(rng, r.redeem_idx.size), -r.redeem_points)

        # support interactions: noisy read-outs of engagement, dissatisfaction and quality
        c = r.contact_idx
        if c.size:
            q = r.quality
            e = r.contact_engagement
            d = st.d[c].astype(np.float64)
            m = c.size
            csat = np.clip(np.round(3.6 + 0.9 * q + 0.35 * e - 0.3 * d + 0.8 * rng.standard_normal(m)), 1, 5)
            nps = np.clip(np.round(6.8 + 1.0 * q + 1.2 * e - 0.6 * d + 1.4 * rng.standard_normal(m)), 0, 10)
            ces = np.clip(np.round(3.0 - 1.0 * q - 0.2 * e + 0.9 * rng.standard_normal(m)), 1, 7)
            handle = np.round(
                np.exp(np.log(7.0) - 0.25 * q + 0.5 * rng.standard_normal(m)) + 3.0 * r.followup, 1
            )
            self._add(
                "support_interactions",
                cust=c,
                time=day_us + _tod(rng, m, 8, 20),
                channel=_pick(rng, P.SUPPORT_CHANNEL_WEIGHTS, m),
                topic=_pick(rng, P.SUPPORT_TOPIC_WEIGHTS, m),
                resolved=r.resolved,
                fcr=r.fcr,
                handle=handle,
                complaint=r.complaint,
                csat=np.where(rng.random(m) < 0.6, csat, np.nan),
                nps=np.where(rng.random(m) < 0.4, nps, np.nan),
                ces=np.where(rng.random(m) < 0.45, ces, np.nan),
            )

        k = r.cancel_idx
        if k.size:
            self._add("cancellations", cust=k, time=day_us + _tod(rng, k.size))

    def arrays(self) -> dict[str, dict[str, np.ndarray]]:
        """Buffered columns per family, concatenated, with global customer numbers."""
        out: dict[str, dict[str, np.ndarray]] = {}
        for family in list(self.buf):
            cols = self.buf.pop(family)
            out[family] = {k: np.concatenate(cols.pop(k)) for k in list(cols)}
            out[family]["cust"] += np.int32(self.offset)
        return out


# ---------------------------------------------------------------------------------------------
# tables


def _strings(levels: tuple[str, ...] | list[str] | pa.Array, codes: np.ndarray) -> pd.Series:
    dictionary = levels if isinstance(levels, pa.Array) else pa.array(list(levels), type=pa.string())
    arr = pc.take(dictionary, pa.array(codes))
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return pd.Series(pd.arrays.ArrowStringArray(arr), dtype="string")


def _category(levels: tuple[str, ...], codes: np.ndarray) -> pd.Series:
    """A low-cardinality text column typed as validation types it (``category``)."""
    return pd.Series(category_from_codes(levels, codes))


def _sorted(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    order = np.lexsort((cols["time"], cols["cust"]))
    return {k: cols.pop(k)[order] for k in list(cols)}


def _empty(family: str) -> dict[str, np.ndarray]:
    base = {"cust": np.zeros(0, np.int32), "time": np.zeros(0, np.int64)}
    extra = {
        "purchases": {"amount": 0.0, "quantity": 0.0, "channel": np.int8(0), "category": np.int8(0)},
        "program_events": {"event": np.int8(0), "points": 0.0, "tier": np.int8(0)},
        "support_interactions": {
            "channel": np.int8(0),
            "topic": np.int8(0),
            "resolved": False,
            "fcr": False,
            "handle": 0.0,
            "complaint": False,
            "csat": 0.0,
            "nps": 0.0,
            "ces": 0.0,
        },
        "cancellations": {},
    }[family]
    return base | {k: np.zeros(0, dtype=np.asarray(v).dtype) for k, v in extra.items()}


def build_event_tables(
    recorders: list[dict[str, dict[str, np.ndarray]]], n_customers: int
) -> dict[str, pd.DataFrame]:
    """Assemble the four event tables from the recorders' arrays of all blocks.

    Returns
    -------
    dict
        purchases, program_events, support_interactions, cancellations — typed per
        ``churnlens.data.tables`` and sorted by (customer_id, timestamp).
    """
    ids = pa.array(customer_ids(n_customers), type=pa.string())

    def merged(family: str) -> dict[str, np.ndarray]:
        """Concatenate (and release) one family's arrays over blocks, sorted by customer, time."""
        parts = [r.pop(family) for r in recorders if family in r]
        if not parts:
            return _empty(family)
        cols = {k: np.concatenate([p.pop(k) for p in parts]) for k in list(parts[0])}
        return _sorted(cols)

    def base(cols: dict[str, np.ndarray]) -> dict[str, object]:
        return {
            "customer_id": _strings(ids, cols["cust"]),
            "timestamp": pd.Series(cols["time"].astype("datetime64[us]")),
        }

    def flag(v: np.ndarray) -> pd.Series:
        return pd.Series(pd.array(v.astype(bool), dtype="boolean"))

    pu = merged("purchases")
    order_no = pa.array(np.arange(1, pu["cust"].size + 1))
    order_id = pc.binary_join_element_wise("O", pc.utf8_lpad(pc.cast(order_no, pa.string()), 9, "0"), "")
    purchases = pd.DataFrame(
        base(pu)
        | {
            "amount": pu["amount"].astype(np.float64),
            "order_id": pd.Series(pd.arrays.ArrowStringArray(order_id), dtype="string"),
            "quantity": pu["quantity"].astype(np.float64),
            "channel": _category(P.PURCHASE_CHANNELS, pu["channel"]),
            "category": _category(P.CATEGORIES, pu["category"]),
        }
    )
    del pu
    pe = merged("program_events")
    program_events = pd.DataFrame(
        base(pe)
        | {
            "event_type": _category(KNOWN_EVENT_TYPES, pe["event"]),
            "points": pe["points"].astype(np.float64),
            "tier": _category(TIER_ORDER, pe["tier"]),
        }
    )
    del pe
    si = merged("support_interactions")
    support = pd.DataFrame(
        base(si)
        | {
            "channel": _category(P.SUPPORT_CHANNELS, si["channel"]),
            "topic": _category(P.SUPPORT_TOPICS, si["topic"]),
            "resolved": flag(si["resolved"]),
            "first_contact_resolution": flag(si["fcr"]),
            "handle_minutes": si["handle"].astype(np.float64),
            "complaint": flag(si["complaint"]),
            "csat": si["csat"].astype(np.float64),
            "nps": si["nps"].astype(np.float64),
            "ces": si["ces"].astype(np.float64),
        }
    )
    del si
    cancellations = pd.DataFrame(base(merged("cancellations")))
    return {
        "purchases": purchases,
        "program_events": program_events,
        "support_interactions": support,
        "cancellations": cancellations,
    }
