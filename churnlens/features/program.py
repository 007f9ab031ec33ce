"""Loyalty program features: enrolment, points, activity, logins, offers, tier.

Read from ``program_events`` rows with ``timestamp < cutoff``. Points are signed
(earned > 0, redeemed < 0). The tier at a moment is the latest non-empty ``tier`` seen
before it; ranks follow :data:`churnlens.data.TIER_ORDER`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from churnlens.config import FeatureConfig
from churnlens.data.schema import KNOWN_EVENT_TYPES, TIER_ORDER
from churnlens.data.tables import Tables
from churnlens.features._engine import US_PER_DAY, normalize_cutoff, segments_for

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
    arr = pa.array(values.array)
    if isinstance(arr, pa.Array):
        arr = pa.chunked_array([arr], type=arr.type)
    encoded = pc.dictionary_encode(arr).unify_dictionaries()
    dictionary = encoded.chunk(0).dictionary.to_pylist() if encoded.num_chunks else []
    indices = pa.chunked_array([c.indices for c in encoded.chunks], type=pa.int32())
    return pc.fill_null(indices, -1).to_numpy().astype(np.int32, copy=False), dictionary


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


def _latest(seg: np.ndarray, ts: np.ndarray, rank: np.ndarray, n: int) -> np.ndarray:
    """Per segment, the position of the latest row (ties: highest rank); -1 when none."""
    out = np.full(n, -1, dtype=np.int64)
    if len(seg) == 0:
        return out
    # rows come grouped by customer and time-ordered; only ties in time need a sort
    tie = (seg[1:] == seg[:-1]) & (ts[1:] == ts[:-1])
    order = np.lexsort((rank, ts, seg)) if tie.any() else np.arange(len(seg))
    last = np.r_[seg[order][1:] != seg[order][:-1], True]
    out[seg[order][last]] = order[last]
    return out


def tier_rank(tier: pd.Series) -> pd.Series:
    """Rank of tier names in :data:`TIER_ORDER` (case-insensitive); NaN for unknown names."""
    ranks = {name: float(i) for i, name in enumerate(TIER_ORDER)}
    return tier.astype("string").str.strip().str.lower().map(ranks).astype("float64")


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
    cutoff = normalize_cutoff(cutoff)
    names = program_feature_names(tables, config)
    if not names:
        return pd.DataFrame(index=pd.Index([], dtype="string", name="customer_id"))
    cols = _columns(tables)
    events = tables.program_events
    segs = segments_for(events, cutoff)
    windows = config.windows
    nw, n = len(windows), segs.n
    cutoff_us = float(np.datetime64(cutoff.to_datetime64(), "us").astype("int64"))
    levels = segs.levels(cutoff, windows)
    code = {name: i for i, name in enumerate(KNOWN_EVENT_TYPES)}
    n_codes = len(KNOWN_EVENT_TYPES) + 1
    et = _event_codes(events["event_type"])[segs.rows]
    (counts,) = segs.windowed(et, n_codes, levels, nw)
    out: dict[str, np.ndarray] = {"program_enrolled": np.ones(n)}
    ts = segs.ts
    big = np.iinfo(np.int64).max
    if n:
        first_any = ts[segs.starts].astype(np.float64)
        first_enrolled = np.minimum.reduceat(np.where(et == code["enrolled"], ts, big), segs.starts)
        enrolled_at = np.where(first_enrolled == big, first_any, first_enrolled.astype(np.float64))
        own = ~np.isin(et, [code[e] for e in PASSIVE_EVENTS])
        last_own = np.maximum.reduceat(np.where(own, ts, -big), segs.starts)
        last_own = np.where(last_own == -big, np.nan, last_own.astype(np.float64))
    else:
        enrolled_at = last_own = np.zeros(0)
    out["program_enrolment_age_days"] = (cutoff_us - enrolled_at) / US_PER_DAY
    with np.errstate(invalid="ignore", divide="ignore"):
        if "points" in cols:
            points = np.nan_to_num(segs.column(events, "points"), nan=0.0)
            sign = np.where(points > 0, 0, np.where(points < 0, 1, 2)).astype(np.int8)
            (sums,) = segs.windowed(sign, 3, levels, nw, weights=(points,))
            out["points_balance"] = sums[:, 0, nw] + sums[:, 1, nw]
            for j, w in enumerate(windows):
                out[f"points_earned_{w}d"] = sums[:, 0, j]
            for j, w in enumerate(windows):
                out[f"points_redeemed_{w}d"] = -sums[:, 1, j]
            for j, w in enumerate(windows):
                earned = sums[:, 0, j]
                out[f"redemption_rate_{w}d"] = np.where(earned > 0, -sums[:, 1, j] / earned, np.nan)
        out["days_since_last_program_activity"] = (cutoff_us - last_own) / US_PER_DAY
        for prefix, event in _COUNTED.items():
            for j, w in enumerate(windows):
                out[f"{prefix}_{w}d"] = counts[:, code[event], j]
        for j, w in enumerate(windows):
            received = counts[:, code["offer_received"], j]
            completed = counts[:, code["offer_completed"], j]
            out[f"offer_completion_rate_{w}d"] = np.where(received > 0, completed / received, np.nan)
    out[f"program_other_events_{windows[-1]}d"] = counts[:, n_codes - 1, nw - 1]
    frame = pd.DataFrame(out, index=segs.index)
    if "tier" in cols:
        tier_codes, dictionary = _dictionary_codes(events["tier"])
        tier_codes = tier_codes[segs.rows]
        has = np.flatnonzero(tier_codes >= 0)
        rank = np.argsort(np.argsort(np.array(dictionary, dtype=object))) if dictionary else np.zeros(0)
        seg_t, ts_t, code_t = segs.seg[has], ts[has], tier_codes[has]
        rank_t = rank[code_t] if len(code_t) else code_t
        before_us = np.datetime64(
            (cutoff - pd.Timedelta(days=config.downgrade_window_days)).to_datetime64(), "us"
        ).astype("int64")
        values = np.array(dictionary + [None], dtype=object)
        now = _latest(seg_t, ts_t, rank_t, n)
        early = ts_t < before_us
        then = _latest(seg_t[early], ts_t[early], rank_t[early], n)
        now_tier = values[_pick(code_t, now)]
        frame["tier"] = pd.array(now_tier, dtype="string")
        ranks = np.r_[tier_rank(pd.Series(dictionary, dtype="string")).to_numpy(), np.nan]
        rank_now = ranks[_pick(code_t, now)]
        rank_then = ranks[_pick(code_t[early], then)]
        frame["tier_rank"] = rank_now
        frame[f"tier_downgraded_{config.downgrade_window_days}d"] = np.where(rank_now < rank_then, 1.0, 0.0)
    return frame[names]
