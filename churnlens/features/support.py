"""Customer support features: contacts, complaints, open issues, resolution, satisfaction.

Read from ``support_interactions`` rows with ``timestamp < cutoff``. "Last" values
(CSAT, NPS) are the latest non-empty answer; ties at one timestamp take the highest.
NPS categories: detractor 0–6, passive 7–8, promoter 9–10.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from churnlens.config import FeatureConfig
from churnlens.data.tables import Tables
from churnlens.features._engine import days_before, normalize_cutoff, query, sql_ts, window_start

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


def _sql(cols: set[str], cutoff: pd.Timestamp, config: FeatureConfig) -> str:
    out = [f"{days_before(cutoff, 'max(timestamp)')} AS days_since_last_contact"]
    for w in config.windows:
        since = f"timestamp >= {sql_ts(window_start(cutoff, w))}"
        out.append(f"count(*) FILTER (WHERE {since}) AS support_contacts_{w}d")
        if "complaint" in cols:
            out.append(f"count(*) FILTER (WHERE complaint AND {since}) AS support_complaints_{w}d")
    if "resolved" in cols:
        out.append("count(*) FILTER (WHERE NOT resolved) AS support_open_issues")
    if "first_contact_resolution" in cols:
        out.append(
            "avg(CASE WHEN first_contact_resolution THEN 1.0 ELSE 0.0 END)"
            " FILTER (WHERE first_contact_resolution IS NOT NULL) AS support_fcr_rate"
        )
    if "handle_minutes" in cols:
        out.append("avg(handle_minutes) AS support_handle_minutes_mean")
    for col in ("csat", "nps"):
        if col in cols:
            out.append(
                f"max({{'t': timestamp, 'v': {col}}}) FILTER (WHERE {col} IS NOT NULL AND NOT isnan({col})).v"
                f" AS {col}_last"
            )
    if "csat" in cols:
        out.append("avg(csat) FILTER (WHERE NOT isnan(csat)) AS csat_mean")
    if "ces" in cols:
        out.append("avg(ces) FILTER (WHERE NOT isnan(ces)) AS ces_mean")
    return (
        "SELECT customer_id,\n  "
        + ",\n  ".join(out)
        + f"\nFROM support_interactions WHERE timestamp < {sql_ts(cutoff)}"
        + " GROUP BY customer_id ORDER BY customer_id"
    )


def nps_category(nps: pd.Series) -> pd.Series:
    """NPS answer -> "detractor" (0–6), "passive" (7–8), "promoter" (9–10); missing stays missing."""
    values = nps.to_numpy(dtype="float64", na_value=np.nan)
    cat = np.select([values <= 6, values <= 8, values <= 10], list(NPS_CATEGORIES), default="")
    out = pd.Series(cat, index=nps.index, dtype="string")
    return out.mask(np.isnan(values) | (cat == ""))


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
    cutoff = normalize_cutoff(cutoff)
    names = support_feature_names(tables, config)
    if not names:
        return pd.DataFrame(index=pd.Index([], dtype="string", name="customer_id"))
    cols = _columns(tables)
    keep = [
        "customer_id",
        "timestamp",
        "complaint",
        "resolved",
        "first_contact_resolution",
        "handle_minutes",
        "csat",
        "nps",
        "ces",
    ]
    frame = tables.support_interactions[[c for c in keep if c in cols]]
    out = query(_sql(cols, cutoff, config), {"support_interactions": frame})
    if "nps" in cols:
        out["nps_category"] = nps_category(out["nps_last"])
    numeric = [n for n in names if n != "nps_category"]
    out[numeric] = out[numeric].astype("float64")
    return out[names]
