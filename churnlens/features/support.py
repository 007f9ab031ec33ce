"""Customer support features: contacts, complaints, open issues, resolution, satisfaction.

Read from ``support_interactions`` rows with ``timestamp < cutoff``. "Last" values
(CSAT, NPS) are the latest non-empty answer; ties at one timestamp take the highest.
NPS categories: detractor 0–6, passive 7–8, promoter 9–10. Means are over the non-missing
values (sums in time order, divided by their count); a missing flag counts for nothing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnlens.config import FeatureConfig
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

FAMILY = "support"
TABLE = "support_interactions"

NPS_CATEGORIES: tuple[str, ...] = ("detractor", "passive", "promoter")


def _columns(tables: Tables) -> set[str]:
    t = tables.support_interactions
    return set(t.columns) if t is not None else set()


def support_feature_names(tables: Tables, config: FeatureConfig = FeatureConfig()) -> list[str]:
    """Names of the support features these tables support (empty without the table)."""
    cols = _columns(tables)
    if not cols:
        return []
    w = config.windows
    names = [f"support_contacts_{x}d" for x in w]
    if "complaint" in cols:
        names += [f"support_complaints_{x}d" for x in w]
    optional = [
        ("resolved", "support_open_issues"),
        ("first_contact_resolution", "support_fcr_rate"),
        ("handle_minutes", "support_handle_minutes_mean"),
        ("csat", "csat_last"),
        ("csat", "csat_mean"),
        ("nps", "nps_last"),
        ("nps", "nps_category"),
        ("ces", "ces_mean"),
    ]
    names += [name for col, name in optional if col in cols]
    names.append("days_since_last_contact")
    return names


def nps_category(nps: pd.Series) -> pd.Series:
    """NPS answer -> "detractor" (0–6), "passive" (7–8), "promoter" (9–10); missing stays missing."""
    return pd.Series(nps_categories(nps.to_numpy(dtype="float64", na_value=np.nan)), index=nps.index)


def nps_categories(values: np.ndarray) -> pd.api.extensions.ExtensionArray:
    """:func:`nps_category` of float64 answers (NaN: missing), as a ``string`` array."""
    cat = np.select([values <= 6, values <= 8, values <= 10], list(NPS_CATEGORIES), default="")
    text = cat.astype(object)
    text[np.isnan(values) | (cat == "")] = None
    return pd.array(text, dtype="string")


def build_support_features(
    tables: Tables, cutoff: pd.Timestamp, config: FeatureConfig = FeatureConfig()
) -> pd.DataFrame:
    """Support features of every customer with a support interaction before the cutoff.

    Parameters
    ----------
    tables : Tables
        Validated tables (only ``support_interactions`` is read).
    cutoff : Timestamp or str
        Exclusive.
    config : FeatureConfig

    Returns
    -------
    DataFrame
        Indexed by customer_id, columns :func:`support_feature_names` (``nps_category``
        as text, the snapshot makes it categorical). Empty when the table is absent.
    """
    if not support_feature_names(tables, config):
        return pd.DataFrame(index=pd.Index([], dtype="string", name="customer_id"))
    return support_block(tables, cutoff, config).frame()


def support_block(tables: Tables, cutoff: pd.Timestamp, config: FeatureConfig = FeatureConfig()) -> FeatureBlock:
    """:func:`build_support_features` before it becomes a frame (``support_interactions`` present)."""
    cutoff = normalize_cutoff(cutoff)
    names = support_feature_names(tables, config)
    cols = _columns(tables)
    table = tables.support_interactions
    segs = segments_for(table, cutoff)
    windows = config.windows
    nw = len(windows)
    cut = int(np.datetime64(cutoff.to_datetime64(), "us").astype("int64"))
    flags = {
        c: _flag_codes(table[c]) for c in ("complaint", "resolved", "first_contact_resolution") if c in cols
    }
    numbers = {c: float_values(table[c]) for c in ("handle_minutes", "csat", "nps", "ces") if c in cols}
    out = FloatColumns([name for name in names if name != "nps_category"], segs.index)
    nps_last = np.empty(segs.n)
    for chunk in segs.chunks():
        part = out.rows(chunk.lo, chunk.hi)
        seg, n = chunk.seg, chunk.n
        levels = chunk.levels(cutoff, windows)
        flag = {c: chunk.take(v) for c, v in flags.items()}
        complaint = (
            (flag["complaint"] == 1).astype(np.int8) if "complaint" in flag else np.zeros(len(seg), np.int8)
        )
        (counts,) = windowed(chunk, complaint, 2, levels, nw)
        for j, w in enumerate(windows):
            part[f"support_contacts_{w}d"] = counts[:, 0, j] + counts[:, 1, j]
        if "complaint" in flag:
            for j, w in enumerate(windows):
                part[f"support_complaints_{w}d"] = counts[:, 1, j]
        with np.errstate(invalid="ignore", divide="ignore"):
            if "resolved" in flag:
                part["support_open_issues"] = np.bincount(seg[flag["resolved"] == 0], minlength=n).astype(
                    np.float64
                )
            if "first_contact_resolution" in flag:
                fcr = flag["first_contact_resolution"]
                answered = np.bincount(seg[fcr >= 0], minlength=n)
                part["support_fcr_rate"] = np.where(
                    answered > 0, np.bincount(seg[fcr == 1], minlength=n) / answered, np.nan
                )
            values = {c: chunk.take(v) for c, v in numbers.items()}
            for col, name in (
                ("handle_minutes", "support_handle_minutes_mean"),
                ("csat", "csat_mean"),
                ("ces", "ces_mean"),
            ):
                if col in values:
                    part[name] = _mean(seg, values[col], n)
            for col in ("csat", "nps"):
                if col in values:
                    v = values[col]
                    ok = np.flatnonzero(~np.isnan(v))
                    at = latest_positions(seg[ok], chunk.ts[ok], v[ok], n)
                    last = (
                        np.where(at >= 0, v[ok][np.maximum(at, 0)], np.nan) if len(ok) else np.full(n, np.nan)
                    )
                    last += 0.0  # an answer of -0.0 is 0
                    if col == "nps":
                        nps_last[chunk.lo : chunk.hi] = last
                    part[f"{col}_last"] = last
        latest = chunk.ts[chunk.starts + segs.counts[chunk.lo : chunk.hi] - 1]
        part["days_since_last_contact"] = (cut - latest) / US_PER_DAY
    if "nps" not in cols:
        return FeatureBlock(out, names, {})
    return FeatureBlock(out, names, {"nps_category": nps_categories(nps_last)})


def _flag_codes(values: pd.Series) -> np.ndarray:
    """A flag column as int8: 1 true, 0 false, -1 missing."""
    flags = values.array if values.dtype == "boolean" else values.astype("boolean").array
    return flags.to_numpy(dtype="int8", na_value=-1)


def _mean(seg: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Per segment, the mean of the non-missing values (NaN when none)."""
    ok = ~np.isnan(values)
    count = np.bincount(seg[ok], minlength=n)
    total = np.bincount(seg[ok], weights=values[ok], minlength=n)
    return np.where(count > 0, total / count, np.nan)
