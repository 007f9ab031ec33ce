"""Retention contact features: how often and how lately campaigns reached the customer, and with what.

Read from ``contacts`` rows with ``timestamp < cutoff``. A row of group ``treatment`` is a
contact the customer received; a row of group ``control`` is a campaign that selected the
customer and held them out at random. The features only describe past contacts: nothing
here looks at what happened after a contact, so a treatment or control flag never carries
a label. "Last" values take the latest row; ties at one timestamp take the highest action
name, and a treatment over a control.
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
from churnlens.features.purchases import dictionary_codes

FAMILY = "contacts"
TABLE = "contacts"

#: Group codes of the rows: contacted, held out, anything else (not counted).
_TREATMENT, _CONTROL, _OTHER = 0, 1, 2


def _columns(tables: Tables) -> set[str]:
    return set(tables.contacts.columns) if tables.contacts is not None else set()


def contacts_feature_names(tables: Tables, config: FeatureConfig = FeatureConfig()) -> list[str]:
    """Names of the contact features these tables support (empty without ``contacts``)."""
    cols = _columns(tables)
    if not cols:
        return []
    w = config.windows
    names = [f"campaign_contacts_{x}d" for x in w]
    names.append(f"campaign_holdouts_{w[-1]}d")
    if "cost" in cols:
        names.append(f"campaign_cost_{w[-1]}d")
    names += ["days_since_last_campaign_contact", "last_campaign_action", "last_campaign_holdout"]
    return names


def _group_codes(values: pd.Series) -> np.ndarray:
    """``group`` as int8: 0 treatment, 1 control, 2 anything else (compared ignoring case and spaces)."""
    codes, dictionary = dictionary_codes(values)
    words = [str(v).strip().lower() for v in dictionary]
    lookup = np.array(
        [_TREATMENT if v == "treatment" else _CONTROL if v == "control" else _OTHER for v in words]
        + [_OTHER],
        dtype=np.int8,
    )
    return lookup[codes]  # code -1 (missing) takes the last entry


def build_contacts_features(
    tables: Tables, cutoff: pd.Timestamp, config: FeatureConfig = FeatureConfig()
) -> pd.DataFrame:
    """Contact features of every customer with a ``contacts`` row before the cutoff.

    Parameters
    ----------
    tables : Tables
        Validated tables (only ``contacts`` is read).
    cutoff : Timestamp or str
        Exclusive.
    config : FeatureConfig

    Returns
    -------
    DataFrame
        Indexed by customer_id, columns :func:`contacts_feature_names`:

        - ``campaign_contacts_{w}d``: contacts received (treatment rows) in each window;
        - ``campaign_holdouts_{w}d``: times held out (control rows) in the longest window;
        - ``campaign_cost_{w}d``: cost of the contacts received in the longest window;
        - ``days_since_last_campaign_contact``: since the latest contact received (NaN: none);
        - ``last_campaign_action``: action of the latest contact received (text; the
          snapshot makes it categorical);
        - ``last_campaign_holdout``: 1 when the latest campaign that selected the customer
          held them out, else 0.

        Empty when the table is absent.
    """
    if not contacts_feature_names(tables, config):
        return pd.DataFrame(index=pd.Index([], dtype="string", name="customer_id"))
    return contacts_block(tables, cutoff, config).frame()


def contacts_block(tables: Tables, cutoff: pd.Timestamp, config: FeatureConfig = FeatureConfig()) -> FeatureBlock:
    """:func:`build_contacts_features` before it becomes a frame (``contacts`` present)."""
    cutoff = normalize_cutoff(cutoff)
    names = contacts_feature_names(tables, config)
    cols = _columns(tables)
    table = tables.contacts
    segs = segments_for(table, cutoff)
    windows = config.windows
    nw = len(windows)
    cut = int(np.datetime64(cutoff.to_datetime64(), "us").astype("int64"))
    group_all = _group_codes(table["group"])
    action_all, dictionary = dictionary_codes(table["action"])
    # ties at one timestamp: the highest action name wins (a value order, so row order never matters)
    action_rank = np.argsort(np.argsort(np.array(dictionary, dtype=object))) if dictionary else np.zeros(0)
    cost_all = float_values(table["cost"]) if "cost" in cols else None
    values = np.array(dictionary + [None], dtype=object)
    action = np.empty(segs.n, dtype=object)
    out = FloatColumns([c for c in names if c != "last_campaign_action"], segs.index)
    big = np.iinfo(np.int64).max
    for chunk in segs.chunks():
        part = out.rows(chunk.lo, chunk.hi)
        seg, n, ts = chunk.seg, chunk.n, chunk.ts
        group = chunk.take(group_all)
        levels = chunk.levels(cutoff, windows)
        weights: list[np.ndarray | None] = [None]
        if cost_all is not None:
            weights.append(np.nan_to_num(chunk.take(cost_all), nan=0.0))
        sums = windowed(chunk, group, 3, levels, nw, weights)
        for j, w in enumerate(windows):
            part[f"campaign_contacts_{w}d"] = sums[0][:, _TREATMENT, j]
        part[f"campaign_holdouts_{windows[-1]}d"] = sums[0][:, _CONTROL, nw - 1]
        if cost_all is not None:
            part[f"campaign_cost_{windows[-1]}d"] = sums[1][:, _TREATMENT, nw - 1]
        treated = group == _TREATMENT
        last = np.maximum.reduceat(np.where(treated, ts, -big), chunk.starts)
        part["days_since_last_campaign_contact"] = np.where(last == -big, np.nan, (cut - last) / US_PER_DAY)
        codes = chunk.take(action_all)
        on = np.flatnonzero(treated & (codes >= 0))
        at = latest_positions(seg[on], ts[on], action_rank[codes[on]] if on.size else on, n)
        action[chunk.lo : chunk.hi] = values[
            np.where(at >= 0, codes[on][np.maximum(at, 0)], -1) if on.size else -1
        ]
        selected = np.flatnonzero(group != _OTHER)
        at = latest_positions(seg[selected], ts[selected], (group[selected] == _TREATMENT).astype(np.int8), n)
        held = group[selected][np.maximum(at, 0)] == _CONTROL if selected.size else np.zeros(n, dtype=bool)
        part["last_campaign_holdout"] = np.where(at >= 0, held.astype(np.float64), np.nan)
    return FeatureBlock(out, names, {"last_campaign_action": pd.array(action, dtype="string")})
