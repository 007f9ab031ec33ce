"""Purchase features: recency, frequency and monetary value per window, rhythm, trend, refunds.

A *purchase* is a row of ``purchases`` with ``amount >= 0``; rows with a negative amount
are refunds. Spending (``spend_*``) is net of refunds; baskets and counts use purchases
only. Only rows with ``timestamp < cutoff`` are read.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from churnlens.config import FeatureConfig
from churnlens.data.tables import Tables
from churnlens.features.kernels import (
    US_PER_DAY,
    FeatureBlock,
    FloatColumns,
    Segments,
    float_values,
    normalize_cutoff,
    segments_for,
    windowed,
)

FAMILY = "purchases"
TABLE = "purchases"


def _has(tables: Tables, column: str) -> bool:
    return column in tables.purchases.columns


def purchases_feature_names(tables: Tables, config: FeatureConfig = FeatureConfig()) -> list[str]:
    """Names of the purchase features these tables support, in column order."""
    w, wl = config.windows, config.windows[-1]
    names = ["days_since_last_purchase", "days_since_first_purchase"]
    names += [f"purchase_count_{x}d" for x in w]
    names += [f"spend_{x}d" for x in w]
    names += [f"avg_basket_{x}d" for x in w]
    names += [f"refund_share_{x}d" for x in w]
    names += [
        "purchase_count_lifetime",
        "spend_lifetime",
        "purchase_gap_mean_days",
        "purchase_gap_std_days",
        "overdue_ratio",
        *REGULARITY_FEATURES,
    ]
    if len(w) >= 2:
        names += [f"purchase_trend_{w[-2]}d_vs_{wl}d", f"spend_trend_{w[-2]}d_vs_{wl}d"]
    if _has(tables, "category"):
        names.append(f"distinct_categories_{wl}d")
    if _has(tables, "channel"):
        names.append(f"distinct_channels_{wl}d")
    return names


#: How unusual the current gap is under the customer's own gaps (:func:`gap_regularity`). The share
#: of past gaps shorter than the current one was measured too and left out (benchmarks/RESULTS.md).
REGULARITY_FEATURES: tuple[str, ...] = ("current_gap_vs_longest",)

#: Up to this many customers x distinct values, "distinct per customer" is one bincount.
_DENSE_LIMIT = 50_000_000


def text_codes(values: pd.Series) -> tuple[np.ndarray, int]:
    """Integer codes of a text column (-1 for missing) and the number of distinct values.

    A categorical column gives its own codes (no copy); text is dictionary-encoded by Arrow.
    """
    codes, dictionary = dictionary_codes(values)
    return codes, len(dictionary)


def dictionary_codes(values: pd.Series) -> tuple[np.ndarray, list[str]]:
    """Integer codes (-1 for missing) of a text or categorical column and the values they index."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return values.cat.codes.to_numpy(), [str(v) for v in values.cat.categories]
    arr = pa.array(values.array)
    if isinstance(arr, pa.Array):
        arr = pa.chunked_array([arr], type=arr.type)
    encoded = pc.dictionary_encode(arr).unify_dictionaries()
    dictionary = encoded.chunk(0).dictionary.to_pylist() if encoded.num_chunks else []
    indices = pa.chunked_array([c.indices for c in encoded.chunks], type=pa.int32())
    return pc.fill_null(indices, -1).to_numpy().astype(np.int32, copy=False), dictionary


def _distinct_per_customer(seg: np.ndarray, codes: np.ndarray, n: int, n_values: int) -> np.ndarray:
    """Number of distinct non-negative codes per segment."""
    ok = codes >= 0
    seg, codes = seg[ok].astype(np.int64), codes[ok].astype(np.int64)
    if n * max(n_values, 1) <= _DENSE_LIMIT:
        present = np.bincount(seg * n_values + codes, minlength=n * n_values).reshape(n, n_values) > 0
        return present.sum(axis=1).astype(np.float64)
    pairs = np.unique(seg * n_values + codes)
    return np.bincount(pairs // n_values, minlength=n).astype(np.float64)


def _rhythm(seg: np.ndarray, ts: np.ndarray, n: int) -> dict[str, np.ndarray]:
    """First/last time, count and gap spread of purchases per segment (rows grouped, time-ordered)."""
    out = {k: np.full(n, np.nan) for k in ("first_us", "last_us", "gap_std_days")}
    out["n_purchases"] = np.zeros(n)
    if len(ts) == 0:
        return out
    first = np.empty(len(ts), dtype=bool)
    first[0] = True
    np.not_equal(seg[1:], seg[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    ends = np.r_[starts[1:], len(ts)] - 1
    gaps = np.empty(len(ts), dtype=np.float64)
    gaps[0] = 0.0
    np.subtract(ts[1:], ts[:-1], out=gaps[1:], casting="unsafe")
    gaps /= US_PER_DAY
    gaps[first] = 0.0
    m = (ends - starts).astype(np.float64)  # gaps per customer
    first_us, last_us = ts[starts].astype(np.float64), ts[ends].astype(np.float64)
    total = (last_us - first_us) / US_PER_DAY
    np.multiply(gaps, gaps, out=gaps)
    squares = np.add.reduceat(gaps, starts)
    with np.errstate(invalid="ignore", divide="ignore"):
        var = (squares - total * total / m) / (m - 1)
    who = seg[starts]
    out["first_us"][who] = first_us
    out["last_us"][who] = last_us
    out["n_purchases"][who] = m + 1.0
    out["gap_std_days"][who] = np.where(m >= 2, np.sqrt(np.clip(var, 0.0, None)), np.nan)
    return out


def purchase_rhythm(purchases: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """First and last purchase, purchase count and spread of gaps, per customer, before the cutoff.

    Vectorised (no per-customer loop), in chunks of whole customers: consecutive purchases
    of one customer give a gap; per customer the sum of squared gaps is one ``reduceat`` and
    the sum of gaps is last minus first.

    Parameters
    ----------
    purchases : DataFrame
        ``customer_id``, ``timestamp``, ``amount`` (purchases are rows with amount >= 0);
        any row order (validated tables are sorted, which is fastest).
    cutoff : Timestamp

    Returns
    -------
    DataFrame
        Indexed by customer_id (sorted) for customers with a purchase before the cutoff:
        ``first_us``, ``last_us`` (epoch microseconds, float64), ``n_purchases`` and
        ``gap_std_days`` (ddof=1; NaN below three purchases).
    """
    cutoff = normalize_cutoff(cutoff)
    segs = segments_for(purchases, cutoff)
    rhythm = _rhythm_by_chunk(purchases, segs)
    out = pd.DataFrame(
        {k: rhythm[k] for k in ("first_us", "last_us", "n_purchases", "gap_std_days")}, index=segs.index
    )
    return out[out["n_purchases"] > 0]


def purchase_rhythm_columns(purchases: pd.DataFrame, segs: Segments) -> dict[str, np.ndarray]:
    """:func:`purchase_rhythm`'s columns for every customer of ``segs`` (``n_purchases`` 0 for a
    customer with only refunds), computed once per grouping. Read-only."""
    return _rhythm_by_chunk(purchases, segs)


def _rhythm_by_chunk(purchases: pd.DataFrame, segs: Segments) -> dict[str, np.ndarray]:
    """:func:`_rhythm` of the purchases (amount >= 0) of every customer, chunk by chunk (memoised)."""
    hit = segs.memo.get("rhythm")
    if hit is not None:
        return hit  # type: ignore[return-value]
    amount = float_values(purchases["amount"])
    rhythm = _empty_rhythm(segs.n)
    for chunk in segs.chunks():
        buy = np.flatnonzero(chunk.take(amount) >= 0)
        _store_rhythm(rhythm, chunk.lo, _rhythm(chunk.seg[buy], chunk.ts[buy], chunk.n))
    segs.memo["rhythm"] = rhythm
    return rhythm


def gap_regularity(seg: np.ndarray, ts: np.ndarray, n: int, current_days: np.ndarray) -> dict[str, np.ndarray]:
    """How the current gap (days since the last purchase) compares with the customer's past gaps.

    Past gaps are the days between consecutive distinct purchase days (several orders on
    one day are one visit). Per segment, ``current_gap_vs_longest`` = current gap / longest
    past gap (above 1: the customer never waited this long before); NaN below two purchase days.

    Parameters
    ----------
    seg, ts : ndarray
        Segment and epoch microseconds of each purchase, grouped by segment and time-ordered.
    n : int
        Number of segments.
    current_days : ndarray
        Current gap of each segment, in days.
    """
    longest = np.zeros(n)
    if len(ts) >= 2:
        day = np.floor(ts / US_PER_DAY)
        step = day[1:] - day[:-1]
        gap = (seg[1:] == seg[:-1]) & (step > 0)
        np.maximum.at(longest, seg[1:][gap], step[gap])
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"current_gap_vs_longest": np.where(longest > 0, current_days / longest, np.nan)}


def _empty_rhythm(n: int) -> dict[str, np.ndarray]:
    return {k: np.empty(n) for k in ("first_us", "last_us", "n_purchases", "gap_std_days")}


def _store_rhythm(rhythm: dict[str, np.ndarray], lo: int, part: dict[str, np.ndarray]) -> None:
    for k, values in part.items():
        rhythm[k][lo : lo + len(values)] = values


def purchase_gap_std(purchases: pd.DataFrame, cutoff: pd.Timestamp) -> pd.Series:
    """Standard deviation (ddof=1) of the days between consecutive purchases before the cutoff.

    Only customers with at least three purchases (two gaps) appear. See :func:`purchase_rhythm`.
    """
    std = purchase_rhythm(purchases, cutoff)["gap_std_days"].dropna()
    return std.rename("purchase_gap_std_days")


def build_purchases_features(
    tables: Tables, cutoff: pd.Timestamp, config: FeatureConfig = FeatureConfig()
) -> pd.DataFrame:
    """Purchase features of every customer with a purchase or refund before the cutoff.

    Parameters
    ----------
    tables : Tables
        Validated tables (only ``purchases`` is read).
    cutoff : Timestamp or str
        Exclusive: rows with ``timestamp >= cutoff`` are ignored.
    config : FeatureConfig

    Returns
    -------
    DataFrame
        Indexed by customer_id (sorted), columns :func:`purchases_feature_names`, float64.
    """
    return purchases_block(tables, cutoff, config).frame()


def purchases_block(tables: Tables, cutoff: pd.Timestamp, config: FeatureConfig = FeatureConfig()) -> FeatureBlock:
    """:func:`build_purchases_features` before it becomes a frame."""
    cutoff = normalize_cutoff(cutoff)
    p = tables.purchases
    segs = segments_for(p, cutoff)
    windows = config.windows
    amount_all = float_values(p["amount"])
    texts = [
        (col, name)
        for col, name in (("category", "categories"), ("channel", "channels"))
        if _has(tables, col)
    ]
    codes_all = {col: text_codes(p[col]) for col, _ in texts}
    rhythm = segs.memo.get("rhythm")
    fresh = rhythm is None
    if fresh:
        rhythm = _empty_rhythm(segs.n)
    out = FloatColumns(purchases_feature_names(tables, config), segs.index)
    # features are per customer: computed chunk by chunk of customers, straight into the frame
    for chunk in segs.chunks():
        lo, hi = chunk.lo, chunk.hi
        amount = chunk.take(amount_all)
        key = (amount < 0).view(np.int8)  # 0 purchase, 1 refund, 2 unknown amount
        finite = np.isfinite(amount)
        if not finite.all():
            key = np.where(np.isnan(amount), np.int8(2), key)
            amount = np.nan_to_num(amount, nan=0.0)
        levels = chunk.levels(cutoff, windows)
        counts, sums = windowed(chunk, key, 3, levels, len(windows), (None, amount))
        del amount, finite
        if fresh:
            bought = np.flatnonzero(key == 0)
            _store_rhythm(rhythm, lo, _rhythm(chunk.seg[bought], chunk.ts[bought], chunk.n))
        part = out.rows(lo, hi)
        _fill_features(part, counts, sums, {k: v[lo:hi] for k, v in rhythm.items()}, cutoff, config)
        buy = np.flatnonzero(key == 0)
        regular = gap_regularity(chunk.seg[buy], chunk.ts[buy], chunk.n, part["days_since_last_purchase"])
        for name, values in regular.items():
            part[name] = values
        in_longest = np.flatnonzero((key == 0) & (levels >= 1))
        for col, name in texts:
            codes, n_values = codes_all[col]
            part[f"distinct_{name}_{windows[-1]}d"] = _distinct_per_customer(
                chunk.seg[in_longest], chunk.take(codes)[in_longest], chunk.n, n_values
            )
    if fresh:
        segs.memo["rhythm"] = rhythm
    return FeatureBlock(out, out.names, {})


def _fill_features(
    out: FloatColumns,
    counts: np.ndarray,
    sums: np.ndarray,
    rhythm: dict[str, np.ndarray],
    cutoff: pd.Timestamp,
    config: FeatureConfig,
) -> None:
    """The purchase features of some customers from their windowed counts and sums and rhythm."""
    windows = config.windows
    nw = len(windows)
    cutoff_us = float(np.datetime64(cutoff.to_datetime64(), "us").astype("int64"))
    n = rhythm["n_purchases"]
    out["days_since_last_purchase"] = (cutoff_us - rhythm["last_us"]) / US_PER_DAY
    out["days_since_first_purchase"] = (cutoff_us - rhythm["first_us"]) / US_PER_DAY
    with np.errstate(invalid="ignore", divide="ignore"):
        for j, w in enumerate(windows):
            out[f"purchase_count_{w}d"] = counts[:, 0, j]
        for j, w in enumerate(windows):
            out[f"spend_{w}d"] = sums[:, 0, j] + sums[:, 1, j]
        for j, w in enumerate(windows):
            out[f"avg_basket_{w}d"] = np.where(counts[:, 0, j] > 0, sums[:, 0, j] / counts[:, 0, j], np.nan)
        for j, w in enumerate(windows):
            bought = sums[:, 0, j]
            out[f"refund_share_{w}d"] = np.where(bought > 0, -sums[:, 1, j] / bought, np.nan)
        out["purchase_count_lifetime"] = n
        out["spend_lifetime"] = sums[:, 0, nw] + sums[:, 1, nw]
        mean_gap = (rhythm["last_us"] - rhythm["first_us"]) / US_PER_DAY / (n - 1)
        out["purchase_gap_mean_days"] = np.where(n >= 2, mean_gap, np.nan)
        out["purchase_gap_std_days"] = rhythm["gap_std_days"]
        usual = np.where(n >= 2, mean_gap, float(config.active_window_days))
        out["overdue_ratio"] = out["days_since_last_purchase"] / np.maximum(usual, 1.0)
        if nw >= 2:
            s, lw = windows[-2], windows[-1]
            count_s, count_l = counts[:, 0, nw - 2], counts[:, 0, nw - 1]
            spend_s, spend_l = out[f"spend_{s}d"], out[f"spend_{lw}d"]
            out[f"purchase_trend_{s}d_vs_{lw}d"] = np.where(
                count_l > 0, (count_s / s) / (count_l / lw), np.nan
            )
            out[f"spend_trend_{s}d_vs_{lw}d"] = np.where(spend_l > 0, (spend_s / s) / (spend_l / lw), np.nan)
