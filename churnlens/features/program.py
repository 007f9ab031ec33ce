"""Loyalty program features: enrolment, points, activity, logins, offers, tier.

Read from ``program_events`` rows with ``timestamp < cutoff``. Points are signed
(earned > 0, redeemed < 0). The tier at a moment is the latest non-empty ``tier`` seen
before it; ranks follow :data:`churnlens.data.TIER_ORDER`.
"""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd

from churnlens.config import FeatureConfig
from churnlens.data.schema import KNOWN_EVENT_TYPES, TIER_ORDER
from churnlens.data.tables import Tables
from churnlens.features.kernels import (
    US_PER_DAY,
    FeatureBlock,
    FloatColumns,
    float_values,
    latest_positions,
    normalize_cutoff,
    segments_for,
    windowed,
)
from churnlens.features.purchases import dictionary_codes

FAMILY = "program"
TABLE = "program_events"

#: Event types that are not the customer's own action (excluded from "last activity").
PASSIVE_EVENTS: tuple[str, ...] = ("offer_received", "tier_changed")
_COUNTED = {
    "logins": "login",
    "offers_received": "offer_received",
    "offers_viewed": "offer_viewed",
    "offers_completed": "offer_completed",
}


def _columns(tables: Tables) -> set[str]:
    return set(tables.program_events.columns) if tables.program_events is not None else set()


def program_feature_names(tables: Tables, config: FeatureConfig = FeatureConfig()) -> list[str]:
    """Names of the program features these tables support (empty without ``program_events``)."""
    cols = _columns(tables)
    if not cols:
        return []
    w = config.windows
    names = ["program_enrolled", "program_enrolment_age_days"]
    if "points" in cols:
        names.append("points_balance")
        names += [f"points_earned_{x}d" for x in w]
        names += [f"points_redeemed_{x}d" for x in w]
        names += [f"redemption_rate_{x}d" for x in w]
    names.append("days_since_last_program_activity")
    for prefix in _COUNTED:
        names += [f"{prefix}_{x}d" for x in w]
    names += [f"offer_completion_rate_{x}d" for x in w]
    names.append(f"program_other_events_{w[-1]}d")
    if "tier" in cols:
        names += ["tier", "tier_rank", f"tier_downgraded_{config.downgrade_window_days}d"]
    return names


def _dictionary_codes(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer codes (-1 for missing) and the distinct values they index."""
    return dictionary_codes(values)


def _event_codes(values: pd.Series) -> np.ndarray:
    """Event types as codes: index in KNOWN_EVENT_TYPES, or len(KNOWN_EVENT_TYPES) for others."""
    codes, dictionary = _dictionary_codes(values)
    other = len(KNOWN_EVENT_TYPES)
    lookup = np.array(
        [KNOWN_EVENT_TYPES.index(v) if v in KNOWN_EVENT_TYPES else other for v in dictionary] + [other],
        dtype=np.int8,
    )
    return lookup[codes]  # code -1 (missing) takes the last entry: other


def _pick(codes: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """``codes[positions]`` where positions >= 0, else -1."""
    out = np.full(len(positions), -1, dtype=np.int64)
    ok = positions >= 0
    out[ok] = codes[positions[ok]]
    return out


def tier_rank(tier: pd.Series) -> pd.Series:
    """Rank of tier names in :data:`TIER_ORDER` (case-insensitive); NaN for unknown names."""
    ranks = {name: float(i) for i, name in enumerate(TIER_ORDER)}
    return tier.astype("string").str.strip().str.lower().map(ranks).astype("float64")


@functools.lru_cache(maxsize=256)
def _dictionary_ranks(dictionary: tuple[str, ...]) -> np.ndarray:
    """:func:`tier_rank` of a table's distinct tier names, then NaN (for code -1): the few tier
    sets of posted events are ranked once, not per request. Read-only."""
    ranks = np.r_[tier_rank(pd.Series(list(dictionary), dtype="string")).to_numpy(), np.nan]
    ranks.flags.writeable = False
    return ranks


def build_program_features(
    tables: Tables, cutoff: pd.Timestamp, config: FeatureConfig = FeatureConfig()
) -> pd.DataFrame:
    """Program features of every customer with a program event before the cutoff.

    Parameters
    ----------
    tables : Tables
        Validated tables (only ``program_events`` is read).
    cutoff : Timestamp or str
        Exclusive.
    config : FeatureConfig

    Returns
    -------
    DataFrame
        Indexed by customer_id, columns :func:`program_feature_names` (``tier`` as text,
        the snapshot makes it categorical). Empty when the table is absent.
    """
    if not program_feature_names(tables, config):
        return pd.DataFrame(index=pd.Index([], dtype="string", name="customer_id"))
    return program_block(tables, cutoff, config).frame()


def program_block(tables: Tables, cutoff: pd.Timestamp, config: FeatureConfig = FeatureConfig()) -> FeatureBlock:
    """:func:`build_program_features` before it becomes a frame (``program_events`` present)."""
    cutoff = normalize_cutoff(cutoff)
    names = program_feature_names(tables, config)
    cols = _columns(tables)
    events = tables.program_events
    segs = segments_for(events, cutoff)
    windows = config.windows
    nw = len(windows)
    cutoff_us = float(np.datetime64(cutoff.to_datetime64(), "us").astype("int64"))
    code = {name: i for i, name in enumerate(KNOWN_EVENT_TYPES)}
    n_codes = len(KNOWN_EVENT_TYPES) + 1
    # counted event types get a slot each, "other" the next, the rest (never counted) the last
    counted = {event: i for i, event in enumerate(_COUNTED.values())}
    other = len(counted)
    slot = np.full(n_codes, other + 1, dtype=np.int8)
    for event, i in counted.items():
        slot[code[event]] = i
    slot[n_codes - 1] = other
    et_all = _event_codes(events["event_type"])
    points_all = float_values(events["points"]) if "points" in cols else None
    passive = np.zeros(n_codes, dtype=bool)  # by event code (np.isin costs more than a lookup)
    passive[[code[e] for e in PASSIVE_EVENTS]] = True
    if "tier" in cols:
        tier_codes_all, dictionary = _dictionary_codes(events["tier"])
        rank = np.argsort(np.argsort(np.array(dictionary, dtype=object))) if dictionary else np.zeros(0)
        before_us = np.datetime64(
            (cutoff - pd.Timedelta(days=config.downgrade_window_days)).to_datetime64(), "us"
        ).astype("int64")
        values = np.array(dictionary + [None], dtype=object)
        ranks = _dictionary_ranks(tuple(dictionary))
        tier = np.empty(segs.n, dtype=object)
    out = FloatColumns([c for c in names if c != "tier"], segs.index)
    big = np.iinfo(np.int64).max
    # features are per customer: computed chunk by chunk of customers, straight into the frame
    for chunk in segs.chunks():
        part = out.rows(chunk.lo, chunk.hi)
        et = chunk.take(et_all)
        ts = chunk.ts
        levels = chunk.levels(cutoff, windows)
        (counts,) = windowed(chunk, slot[et], other + 2, levels, nw)
        first_any = ts[chunk.starts].astype(np.float64)
        first_enrolled = np.minimum.reduceat(np.where(et == code["enrolled"], ts, big), chunk.starts)
        enrolled_at = np.where(first_enrolled == big, first_any, first_enrolled.astype(np.float64))
        own = ~passive[et]
        last_own = np.maximum.reduceat(np.where(own, ts, -big), chunk.starts)
        last_own = np.where(last_own == -big, np.nan, last_own.astype(np.float64))
        part["program_enrolled"] = np.ones(chunk.n)
        part["program_enrolment_age_days"] = (cutoff_us - enrolled_at) / US_PER_DAY
        with np.errstate(invalid="ignore", divide="ignore"):
            if points_all is not None:
                points = np.nan_to_num(chunk.take(points_all), nan=0.0)
                sign = np.where(points > 0, 0, np.where(points < 0, 1, 2)).astype(np.int8)
                (sums,) = windowed(chunk, sign, 3, levels, nw, (points,))
                part["points_balance"] = sums[:, 0, nw] + sums[:, 1, nw]
                for j, w in enumerate(windows):
                    part[f"points_earned_{w}d"] = sums[:, 0, j]
                for j, w in enumerate(windows):
                    part[f"points_redeemed_{w}d"] = -sums[:, 1, j]
                for j, w in enumerate(windows):
                    earned = sums[:, 0, j]
                    part[f"redemption_rate_{w}d"] = np.where(earned > 0, -sums[:, 1, j] / earned, np.nan)
            part["days_since_last_program_activity"] = (cutoff_us - last_own) / US_PER_DAY
            for prefix, event in _COUNTED.items():
                for j, w in enumerate(windows):
                    part[f"{prefix}_{w}d"] = counts[:, counted[event], j]
            for j, w in enumerate(windows):
                received = counts[:, counted["offer_received"], j]
                completed = counts[:, counted["offer_completed"], j]
                part[f"offer_completion_rate_{w}d"] = np.where(received > 0, completed / received, np.nan)
        part[f"program_other_events_{windows[-1]}d"] = counts[:, other, nw - 1]
        if "tier" in cols:
            tier_codes = chunk.take(tier_codes_all)
            has = np.flatnonzero(tier_codes >= 0)
            seg_t, ts_t, code_t = chunk.seg[has], ts[has], tier_codes[has]
            rank_t = rank[code_t] if len(code_t) else code_t
            early = ts_t < before_us
            now = _pick(code_t, latest_positions(seg_t, ts_t, rank_t, chunk.n))
            then = _pick(code_t[early], latest_positions(seg_t[early], ts_t[early], rank_t[early], chunk.n))
            tier[chunk.lo : chunk.hi] = values[now]
            rank_now, rank_then = ranks[now], ranks[then]
            part["tier_rank"] = rank_now
            part[f"tier_downgraded_{config.downgrade_window_days}d"] = np.where(
                rank_now < rank_then, 1.0, 0.0
            )
    if "tier" not in cols:
        return FeatureBlock(out, names, {})
    return FeatureBlock(out, names, {"tier": pd.array(tier, dtype="string")})
